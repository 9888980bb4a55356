from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from odqa_core import plugins
from odqa_core.testing import FakePlugin

KORQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev.json"


@pytest.fixture
def fake_plugins():
    """Register the fake components as a throwaway plugin for one test."""
    pm = plugins.get_plugin_manager()
    plugin = FakePlugin()
    pm.register(plugin, name="odqa-fakes")
    plugins.invalidate()
    yield plugin
    pm.unregister(plugin)
    plugins.invalidate()


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
    from odqa_core.cli import cli

    runner = CliRunner()

    def invoke(command: str) -> Result:
        return runner.invoke(cli, shlex.split(command))

    return invoke


def assert_one_line_error(result: Result, code: int | None = None, contains: str = "") -> None:
    """Bad input: a non-zero exit, and one line saying what is wrong — never a traceback."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert contains in lines[0], lines[0]
