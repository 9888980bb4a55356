"""``model=sample``: where a reader's demo model comes from — a hook, light to import.

The readers plugin module (:mod:`odqa_readers.plugin`) fills it with the bundled sample's demo readers
(:func:`odqa_readers.sample.sample_model`, imported when a demo model is first asked for), and
:func:`odqa_readers.base.resolve_model` reads it. It lives apart from :mod:`odqa_readers.base` so that loading the
plugin imports neither the base class (numpy) nor the sample's training; and the base class trains nothing: a demo
model is trained by :mod:`odqa_readers.training`, which builds on the base class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

#: ``provider(reader name)`` → the directory of that reader's demo model; ``None`` until the plugin is loaded.
_provider: Callable[[str], Path] | None = None


def provide_demo_models(provider: Callable[[str], Path]) -> None:
    """Make ``provider(reader name)`` the source of ``model=sample``'s demo model directories."""
    global _provider
    _provider = provider


def demo_models() -> Callable[[str], Path] | None:
    """The provider of ``model=sample``'s demo model directories, ``None`` when the readers plugin is not loaded."""
    return _provider
