from __future__ import annotations

from pathlib import Path

import pytest

from odqa_core import plugins
from odqa_core.testing import FakePlugin, registered_plugin, run_cli, write_toy_files

KORQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev.json"


@pytest.fixture
def fake_plugins():
    """Register the fake components as a throwaway plugin for one test."""
    with registered_plugin(FakePlugin(), "odqa-fakes") as plugin:
        yield plugin


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A plugin manager rebuilt from scratch (for tests that change the loading environment)."""
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture(scope="session")
def korquad_path() -> Path:
    if not KORQUAD.is_file():
        pytest.skip(f"KorQuAD dev set not found at {KORQUAD}")
    return KORQUAD


@pytest.fixture
def odqa():
    """Run the CLI in-process: ``odqa(f"index --retriever bm25 --corpus {path}")`` → click ``Result``."""
    return run_cli


@pytest.fixture
def toy_files(tmp_path):
    """The toy corpus and questions as files: ``corpus, questions = toy_files``."""
    return write_toy_files(tmp_path)
