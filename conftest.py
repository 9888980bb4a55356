"""Keeps every test session of the repository, core and plugin tests alike, from writing outside its temporary
directories.

- Each test runs with its own ``tmp_path`` as the current directory, so that default outputs (``odqa-output/``,
  ``sweep-<grid>/``) land there and never in the checkout.
- ``ODQA_CACHE_DIR`` points into the session's temporary directory (the sample's demo models and other caches),
  never ``~/.cache/odqa``.
- In a git checkout, ``git status`` is taken when the session starts and again when it ends: a path that a test
  created or changed in the working tree fails the session, naming the paths. The outputs git ignores at the root
  (``odqa-output/``, ``sweep-*/``) are compared too, file by file: one the session created or changed fails it,
  while one that was there before (the README's ``odqa run`` in the checkout) and stays untouched does not.
  ``ODQA_TEST_TREE_CHECK=0`` turns this off, e.g. for a run while files are being edited by hand.

It also gives every test the ``korquad_path`` fixture (a test that needs the KorQuAD dev set skips cleanly without
it). It lives at the repository root (pytest's rootdir) so that it applies to ``tests/`` and to every plugin's tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
KORQUAD = ROOT.parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev.json"


def working_tree_status(root: Path = ROOT) -> set[str] | None:
    """The entries of ``git status`` (modified, added, deleted and untracked paths, ignored ones excepted) under
    ``root``; ``None`` when there is no git or ``root`` is not in a checkout."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(root), "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "."],
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return {entry for entry in done.stdout.decode("utf-8", "replace").split("\0") if entry}


def root_outputs(root: Path = ROOT) -> set[str]:
    """The files (with their size and modification time) of the outputs odqa writes by default into the current
    directory, at ``root``: ``odqa-output/`` and ``sweep-*/``. git ignores them, so ``git status`` cannot tell a
    user's run in the checkout from a test's."""
    found = set()
    for top in root.iterdir():
        if top.name != "odqa-output" and not top.name.startswith("sweep-"):
            continue
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            try:
                info = path.lstat()
            except OSError:
                continue
            found.add(f"{path.relative_to(root)} ({info.st_size} bytes, mtime {info.st_mtime_ns})")
    return found


@pytest.fixture(scope="session", autouse=True)
def _working_tree_unchanged():
    """Fail the session when the tests left new or changed paths in the working tree."""
    enabled = os.environ.get("ODQA_TEST_TREE_CHECK", "1").strip().lower() not in ("0", "false", "no", "off")
    before = working_tree_status() if enabled else None
    outputs_before = root_outputs() if enabled else None
    yield
    if outputs_before is None:
        return
    changed = sorted((working_tree_status() or set()) - (before or set()))
    # The ignored outputs git status cannot see (one it shows, e.g. an unignored sweep-*/, is named once, above).
    shown_by_git = {entry[3:].split("/")[0] for entry in changed}
    changed += sorted(e for e in root_outputs() - outputs_before if e.split("/")[0].split(" ")[0] not in shown_by_git)
    if changed:
        shown = ", ".join(entry.strip() for entry in changed[:10])
        more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        pytest.fail(
            f"the tests changed the working tree ({shown}{more}); tests must write under tmp_path only "
            "(set ODQA_TEST_TREE_CHECK=0 if these are your own edits made during the run)",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Caches (``ODQA_CACHE_DIR``) in the session's temporary directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ODQA_CACHE_DIR", str(tmp_path_factory.mktemp("odqa-cache")))
        yield


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """The current directory of every test is its own ``tmp_path``."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def korquad_path() -> Path:
    """The KorQuAD 1.0 dev set beside the checkout (never copied into it); the test is skipped without it."""
    if not KORQUAD.is_file():
        pytest.skip(f"KorQuAD dev set not found at {KORQUAD}")
    return KORQUAD
