"""The hooks a plugin implements. Each hook hands the plugin a ``register`` callable.

A plugin module writes::

    import odqa_core

    @odqa_core.hookimpl
    def register_retrievers(register):
        register(MyRetriever)              # registered under MyRetriever.name
        register(MyRetriever, name="alias")
        register("my_plugin.retrievers:MyRetriever", name="mine")   # by reference: imported on first use

and declares the module in ``[project.entry-points.odqa]`` of its ``pyproject.toml`` (docs/plugins.md has a complete
plugin, one example of each kind).

Registering by reference — ``"package.module:ClassName"`` with its ``name`` — keeps the module unimported until the
component is used (``odqa index --retriever mine``, :func:`odqa_core.plugins.create`): ``odqa --help`` and ``odqa
plugins`` list the name without importing it, which is what keeps them fast when a component module imports numpy
or torch at the top. The class is checked on first use (a subclass of the kind, nothing abstract left), and a
reference that fails there is an error naming the plugin; ``odqa_core.plugins.load_components("my-plugin")`` in
the plugin's tests imports and checks every reference at once. Commands have the same form:
``cli.add_command(odqa_core.plugins.lazy_command("my_plugin.cli:train", name="train-mine", help="Train ..."))``.

``register`` refuses what odqa could not use: a class that is not a subclass of the hook's kind, one that leaves
abstract members unimplemented, one without a name, a reference that is not ``"package.module:ClassName"`` or
that comes without its name. Such a registration, a hook that raises, or a module that
fails to import makes the plugin *broken*: it is skipped as a whole (none of its components or commands is
registered), reported in one warning line and listed by ``odqa plugins`` with its error (see
:mod:`odqa_core.plugins`). Hooks run when odqa starts, for every command and ``--help``: import heavy libraries in
the components, at first use, never at registration — registering by reference does that for you.
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

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``. Or
        ``register("package.module:ClassName", name=...)``: the class is imported on first use.
    """


@hookspec
def register_fusers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Fuser` subclasses.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``. Or
        ``register("package.module:ClassName", name=...)``: the class is imported on first use.
    """


@hookspec
def register_readers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Reader` subclasses.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``. Or
        ``register("package.module:ClassName", name=...)``: the class is imported on first use.
    """


@hookspec
def register_postprocessors(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Postprocessor` subclasses.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``. Or
        ``register("package.module:ClassName", name=...)``: the class is imported on first use.
    """


@hookspec
def register_analyzers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Analyzer` subclasses (text → tokens, used by sparse retrievers).

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``. Or
        ``register("package.module:ClassName", name=...)``: the class is imported on first use.
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register :class:`odqa_core.interfaces.Trainer` subclasses (what ``odqa sweep`` trains a component's model
    with), each under the name of the component it trains.

    :param register: ``register(cls, name=None)``; ``name`` defaults to ``cls.name``. Or
        ``register("package.module:ClassName", name=...)``: the class is imported on first use.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``odqa`` click group: ``cli.add_command(cmd)``, or under ``odqa train`` with
    ``cli.commands["train"].add_command(cmd)``. Commands raise :class:`odqa_core.OdqaError` subclasses for bad
    input, which the group prints as one ``Error:`` line.

    This hook runs at every start, ``odqa --help`` included: a command whose module imports numpy or torch is best
    added by reference, ``cli.add_command(odqa_core.plugins.lazy_command("package.module:command", name="x",
    help="The first paragraph of its help."))``, imported only when ``odqa x`` runs or shows its own help.

    :param cli: the root :class:`click.Group`.
    """
