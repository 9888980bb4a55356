"""The checkout holds no test output, and the root conftest.py keeps tests from adding any."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_tests_run_in_their_tmp_path_with_a_private_cache(tmp_path):
    assert Path.cwd() == tmp_path
    cache = Path(os.environ["ODQA_CACHE_DIR"])
    assert not cache.is_relative_to(Path.home() / ".cache") and not cache.is_relative_to(ROOT)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_session_that_writes_into_the_working_tree_fails(tmp_path):
    """The root conftest.py, copied into a scratch git checkout, fails a session whose test writes beside itself,
    or into the git-ignored ``odqa-output/`` a user's ``odqa run`` left in the checkout, and passes one whose test
    writes into the current directory (its tmp_path) with that user's output left in place."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    shutil.copy(ROOT / "conftest.py", checkout / "conftest.py")
    (checkout / ".gitignore").write_text("__pycache__/\nodqa-output/\n", encoding="utf-8")
    (checkout / "odqa-output").mkdir()  # the README's main job, run in the checkout before the tests
    (checkout / "odqa-output" / "run.jsonl").write_text("a user's run\n", encoding="utf-8")
    (checkout / "test_writes.py").write_text(
        "from pathlib import Path\n\n\n"
        "def test_default_output_in_the_current_directory():\n"
        "    Path('odqa-output').mkdir()\n"
        "    Path('odqa-output', 'run.jsonl').write_text('x')\n\n\n"
        "def test_output_beside_the_test_file():\n"
        "    (Path(__file__).parent / 'sweep-grid').mkdir()\n"
        "    (Path(__file__).parent / 'sweep-grid' / 'results.csv').write_text('x')\n\n\n"
        "def test_writes_into_the_users_run():\n"
        "    (Path(__file__).parent / 'odqa-output' / 'summary.json').write_text('x')\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "ODQA_TEST_TREE_CHECK"} | {"PYTHONDONTWRITEBYTECODE": "1"}

    def session(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
        return subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=300)

    clean = session("-k", "current_directory")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    dirty = session("-k", "not users_run")
    assert dirty.returncode != 0, dirty.stdout
    assert "the tests changed the working tree (?? sweep-grid/results.csv)" in dirty.stdout
    assert "odqa-output" not in dirty.stdout
    ignored = session("-k", "users_run")
    assert ignored.returncode != 0, ignored.stdout
    assert "the tests changed the working tree (odqa-output" in ignored.stdout
    assert "odqa-output/summary.json" in ignored.stdout
