from __future__ import annotations

import pytest

from odqa_core import plugins
from odqa_core.testing import fake_plugins, odqa, toy_files, toy_index  # noqa: F401 - fixtures shared with the plugins' tests


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A plugin manager rebuilt from scratch (for tests that change the loading environment)."""
    plugins.reset()
    yield
    plugins.reset()
