"""The hooks a plugin implements. Each hook hands the plugin a ``register`` callable.

A plugin module writes::

    import odqa_core

    @odqa_core.hookimpl
    def register_retrievers(register):
        register(MyRetriever)              # registered under MyRetriever.name
        register(MyRetriever, name="alias")

and declares the module in ``[project.entry-points.odqa]`` of its ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("odqa")
hookimpl = pluggy.HookimplMarker("odqa")

Register = Callable[..., None]


@hookspec
def register_retrievers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Retriever` subclasses.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``.
    """


@hookspec
def register_fusers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Fuser` subclasses.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``.
    """


@hookspec
def register_readers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Reader` subclasses.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``.
    """


@hookspec
def register_postprocessors(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Postprocessor` subclasses.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``.
    """


@hookspec
def register_analyzers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Analyzer` subclasses (text → tokens, used by sparse retrievers).

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``.
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Trainer` subclasses (what ``odqa sweep`` trains a component's model
    with), each under the name of the component it trains.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``odqa`` click group (e.g. ``odqa train``).

    :param cli: the root :class:`click.Group`.
    """
