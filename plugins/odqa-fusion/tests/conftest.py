from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _quiet(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODQA_PROGRESS", "0")
        mp.setenv("ODQA_CACHE_DIR", str(tmp_path_factory.mktemp("odqa-cache")))
        yield
