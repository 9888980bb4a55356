from __future__ import annotations

import pytest

from odqa_core import plugins
from odqa_core.testing import FakePlugin


@pytest.fixture(scope="session", autouse=True)
def _quiet(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODQA_PROGRESS", "0")
        mp.setenv("ODQA_CACHE_DIR", str(tmp_path_factory.mktemp("odqa-cache")))
        yield


@pytest.fixture
def fake_plugins():
    """The core's fake components (retriever ``fake``, fuser ``fake-sum``) as a throwaway plugin."""
    pm = plugins.get_plugin_manager()
    plugin = FakePlugin()
    pm.register(plugin, name="odqa-fakes")
    plugins.invalidate()
    yield plugin
    pm.unregister(plugin)
    plugins.invalidate()
