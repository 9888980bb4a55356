"""Every output odqa writes, written so that a failure never loses or half-writes anything.

- files (:func:`atomic_write_text`, :func:`atomic_write_lines`, :func:`atomic_write_bytes`) through a temporary
  beside the target and a rename; ``"-"`` is standard output; character devices and FIFOs (``/dev/null``, a pipe)
  and ``/dev/stdout``-like paths are written in place, never renamed over; a symlink's target is replaced and the
  link kept;
- directories (:func:`atomic_directory`, and the index stores of :mod:`odqa_core.storage`) through a temporary
  sibling swapped into place, under a lock (:func:`output_lock`) so that a second odqa process writing the same
  path is told so;
- a command's output directory (:func:`write_output_dir`, ``odqa run --output-dir``) as one unit listed in
  ``odqa-output.json``.

Temporaries are named ``.<name>.tmp-<pid>-<random>`` (``.old-`` for a previous version moved aside): the next
writer of the same path removes those whose process is gone, and puts an ``.old-`` version back when its writer
died between the two renames of a swap.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from odqa_core.errors import OutputInUseError, UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: writes stay atomic, but concurrent writers are not detected
    fcntl = None  # type: ignore[assignment]

#: ``path`` given to the file writers for standard output (``odqa retrieve --output -``).
STDOUT = "-"


def is_plain_name(name: object) -> bool:
    """Whether ``name`` names an entry directly inside a directory: not empty, ``.`` or ``..``, not absolute, no
    path separator (either kind) and no NUL."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(sep in name for sep in ("/", "\\", "\0", os.sep, os.altsep or "/"))
        and not os.path.isabs(name)
    )


# --- temporaries: recognisable, and removed once their writer is gone ---------------------------------------------

_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<tag>tmp|old)-(?P<pid>\d{1,10})-[0-9a-f]{8}$")


def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """``.<name>.<tag>-<pid>-<random>`` beside ``path``: the next writer of ``path`` recognises it as odqa's and,
    from the pid, whether the process that made it is still running."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (this process included; another user's counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or a pid no process can have)
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _nobody_holds(path: str) -> bool:
    """Whether no process holds a lock on ``path``: writers keep their temporary locked while they fill it, so this
    tells a live writer in another pid namespace (whose pid means nothing here) from a dead one."""
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def abandoned_temporaries(path: str | Path, tags: tuple[str, ...] = ("tmp", "old")) -> list[Path]:
    """The temporaries of ``path`` (``.<name>.<tag>-<pid>-<random>`` beside it) whose writing process is gone,
    oldest first."""
    path = Path(path)
    found = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or match["target"] != path.name or match["tag"] not in tags or entry.is_symlink():
            continue
        if not pid_alive(int(match["pid"])) and _nobody_holds(entry.path):
            with contextlib.suppress(FileNotFoundError):  # another process removed it meanwhile
                found.append((entry.stat(follow_symlinks=False).st_ctime, Path(entry.path)))
    return [p for _, p in sorted(found)]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_abandoned_temporaries(path: str | Path) -> None:
    """Remove the ``.tmp-`` temporaries a killed writer of ``path`` left (a writer that caches rather than replaces
    ``path`` calls this before making its own :func:`temporary_sibling`)."""
    for stale in abandoned_temporaries(path, ("tmp",)):
        _remove(stale)


def recover_interrupted_write(path: str | Path) -> Path | None:
    """Tidy up after a writer of ``path`` that was killed: remove its abandoned temporaries and, when it died between
    the two renames of a swap (the previous version moved aside to ``.<name>.old-*``, the new one not yet in
    place), put the previous version back. Returns the ``.old-*`` path it restored from, else None.

    Runs under :func:`output_lock`, so it never touches what a live odqa process is writing.
    """
    target = resolve_output_path(path)
    if _owned(target):
        return None
    with output_lock(target):
        restored = None
        old = abandoned_temporaries(target, ("old",))
        if old and not os.path.lexists(target):
            restored = old.pop()  # the most recently moved aside: the last complete version
            os.replace(restored, target)
        for stale in [*old, *abandoned_temporaries(target, ("tmp",))]:
            _remove(stale)
        return restored


# --- locks: one odqa process writes a path at a time ---------------------------------------------------------------

_held_locks: dict[Path, int] = {}
#: Temporary directories this process is filling: nobody else writes under them, so no lock is needed there.
_owned_roots: set[Path] = set()
_registry_guard = threading.Lock()


def resolve_output_path(path: str | Path) -> Path:
    """The path a write of ``path`` replaces: absolute, and a symlink's final target (the link itself is kept)."""
    absolute = Path(os.path.abspath(path))
    if absolute.is_symlink():
        absolute = Path(os.path.realpath(absolute))
        if absolute.is_symlink():
            raise UsageError(f"{path} is a symlink loop; refusing to write it")
    return absolute


def _owned(path: Path) -> bool:
    return any(root == path or root in path.parents for root in _owned_roots)


@contextlib.contextmanager
def _owning(path: Path) -> Iterator[None]:
    with _registry_guard:
        _owned_roots.add(path)
    try:
        yield
    finally:
        with _registry_guard:
            _owned_roots.discard(path)


def _lock_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def _acquire(lock: Path, target: Path) -> int:
    """Open and lock ``lock`` (non-blocking), write our pid into it; an :class:`OutputInUseError` if it is held."""
    assert fcntl is not None
    for _ in range(20):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise OutputInUseError(
                f"{target} is being written by another odqa process{holder}; wait for it to finish or write elsewhere"
            ) from None
        # Its holder removes the lock file before unlocking it: a file we opened before that is not the lock any more.
        try:
            current = os.stat(lock)
            same = (current.st_ino, current.st_dev) == (os.fstat(fd).st_ino, os.fstat(fd).st_dev)
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)
    raise OutputInUseError(f"{target} is being written by other odqa processes; wait for them or write elsewhere")


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``path`` while this process writes ``path``.

    Another odqa process that wants to write ``path`` meanwhile gets a one-line :class:`OutputInUseError` naming
    our pid instead of both writing and the last one silently winning. Re-entrant within a process; a no-op inside
    a temporary directory this process is filling. The lock file is removed on release.
    """
    target = resolve_output_path(path)
    if fcntl is None or _owned(target):
        yield
        return
    lock = target.with_name(f".{target.name}.lock")
    with _registry_guard:
        depth = _held_locks.get(lock, 0)
        if depth:
            _held_locks[lock] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _registry_guard:
                _held_locks[lock] -= 1
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(lock, target)
    with _registry_guard:
        _held_locks[lock] = 1
    try:
        yield
    finally:
        with _registry_guard:
            del _held_locks[lock]
        lock.unlink(missing_ok=True)
        os.close(fd)


# --- files ---------------------------------------------------------------------------------------------------------


def output_mode(path: str | Path) -> str:
    """How a file output at ``path`` is written.

    ``"stdout"`` for the string ``"-"``; ``"in place"`` for a character device or FIFO (``/dev/null``, a terminal,
    a pipe) and for ``/dev/stdout``, ``/dev/fd/N`` and ``/proc`` paths, which a rename would replace by a regular
    file (as root, ``/dev/null`` itself) or leave unread; ``"atomic"`` otherwise: a temporary beside the target
    (a symlink's target: see :func:`resolve_output_path`) renamed over it. A directory, block device or socket is
    refused.
    """
    if isinstance(path, str) and path == STDOUT:
        return "stdout"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "atomic"
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path} is a directory; give a file to write")
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "in place"
    if not stat.S_ISREG(mode):
        what = "block device" if stat.S_ISBLK(mode) else "socket" if stat.S_ISSOCK(mode) else "special file"
        raise UsageError(f"{path} is a {what}; refusing to write an output onto it")
    absolute = os.path.abspath(path)
    if absolute.startswith(("/dev/fd/", "/proc/")) or absolute in ("/dev/stdout", "/dev/stderr"):
        return "in place"  # a descriptor of this process: replacing the file it points to would lose the output
    return "atomic"


@contextlib.contextmanager
def _stdout_text() -> Iterator[TextIO]:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    handle = io.TextIOWrapper(buffer, encoding="utf-8")  # run files are UTF-8 whatever the locale
    try:
        yield handle
    finally:
        handle.detach()  # flushes; sys.stdout keeps its buffer


@contextlib.contextmanager
def atomic_write_lines(path: str | Path) -> Iterator[TextIO]:
    """Yield a text handle; the file appears at ``path`` only if the block finishes without an exception.

    See :func:`output_mode` for ``"-"``, devices, FIFOs and symlinks; abandoned temporaries of ``path`` left by a
    killed writer are removed first.
    """
    mode = output_mode(path)
    if mode == "stdout":
        with _stdout_text() as handle:
            yield handle
        return
    with _written_then_renamed(path, mode, binary=False) as handle:
        yield handle


@contextlib.contextmanager
def atomic_write_bytes(path: str | Path) -> Iterator[BinaryIO]:
    """:func:`atomic_write_lines` for binary files: yield a binary handle (``"-"``: standard output's buffer)."""
    mode = output_mode(path)
    if mode == "stdout":
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with _written_then_renamed(path, mode, binary=True) as handle:
        yield handle


@contextlib.contextmanager
def _written_then_renamed(path: str | Path, mode: str, *, binary: bool) -> Iterator[Any]:
    """A handle on a temporary beside ``path`` renamed over it when the block finishes (``mode`` "atomic"), or on
    ``path`` itself ("in place": a device or FIFO)."""
    if mode == "in place":
        with open(path, "wb") if binary else open(path, "w", encoding="utf-8") as handle:
            yield handle
        return
    target = resolve_output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temporaries(target)
    tmp = temporary_sibling(target)
    try:
        with open(tmp, "xb") if binary else open(tmp, "x", encoding="utf-8") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # held while writing: the file is not abandoned
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file through a temporary sibling and an atomic rename (see :func:`atomic_write_lines`)."""
    with atomic_write_lines(path) as handle:
        handle.write(text)


# --- directories ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _temporary_dir(tmp: Path, keep_on_commit: bool = False) -> Iterator[Any]:
    """Create ``tmp``, keep it locked (not abandoned) and owned (no locks needed below it); remove it on the way out
    unless it was renamed away. With ``keep_on_commit``, yields a function to call once a commit from ``tmp``
    begins: from then on ``tmp`` is left for :func:`_recover_output_dir` rather than removed."""
    tmp.mkdir()
    fd = os.open(tmp, os.O_RDONLY)
    committing = False

    def commit() -> None:
        nonlocal committing
        committing = True

    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        with _owning(tmp):
            yield commit if keep_on_commit else tmp
    finally:
        os.close(fd)
        if tmp.exists() and not committing:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = None
    if os.path.lexists(target):
        old = temporary_sibling(target, "old")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        _remove(old)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; when the block finishes it replaces ``path`` (whatever
    was there is removed), else it is removed. Held under :func:`output_lock`, after tidying up what a killed
    writer left (:func:`recover_interrupted_write`)."""
    target = resolve_output_path(path)
    with output_lock(target):
        recover_interrupted_write(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _temporary_dir(temporary_sibling(target)) as tmp:
            yield tmp
            _swap_into_place(tmp, target)


# --- a command's output directory as one unit ----------------------------------------------------------------------

OUTPUT_MANIFEST = "odqa-output.json"
OUTPUT_FORMAT = "odqa-output"
#: What ``odqa run`` wrote before output directories had a manifest: such a directory (recognised by its
#: summary.json) is an odqa output too, and these are its entries.
LEGACY_RUN_ENTRIES = ("run.jsonl", "summary.json", "predictions.json", "nbest_predictions.json", "index")
#: Our temporaries inside an output directory: ``.odqa-output.tmp-<pid>-<random>`` (the new output, staged) and
#: ``.odqa-output.old-<pid>-<random>`` (the entries it replaces, on their way out).
_STAGING = "odqa-output"
#: Inside a staging directory: the entries of the previous output, which the new one replaces or removes.
_JOURNAL = ".odqa-replaces.json"


def _output_entries(root: Path) -> list[str]:
    return sorted(n for n in os.listdir(root) if not n.startswith(f".{_STAGING}."))


def _read_output_manifest(path: Path) -> list[str] | None:
    """The entries an ``odqa-output.json`` lists, or None when it is not one (unreadable, another format, or an
    entry that is not a plain name inside the directory)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != OUTPUT_FORMAT:
        return None
    entries = data.get("entries")
    if not isinstance(entries, list) or not all(is_plain_name(e) and e != OUTPUT_MANIFEST for e in entries):
        return None
    return entries


def _legacy_run_entries(root: Path, names: list[str]) -> list[str] | None:
    try:
        summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or not {"retrievers", "retrieval", "n_questions"} <= summary.keys():
        return None
    return [n for n in names if n in LEGACY_RUN_ENTRIES]


def previous_output(path: str | Path, *, overwrite: bool = False) -> list[str]:
    """The entries of the odqa output at ``path`` (empty when there is none, or nothing there); a one-line
    :class:`UsageError` for a non-empty directory that is not an odqa output, unless ``overwrite``."""
    root = resolve_output_path(path)
    if not os.path.lexists(root):
        return []
    if not root.is_dir():
        raise UsageError(f"output directory {path} exists and is not a directory")
    names = _output_entries(root)
    if OUTPUT_MANIFEST in names:
        entries = _read_output_manifest(root / OUTPUT_MANIFEST)
        if entries is not None:
            return [e for e in entries if e in names]
    else:
        legacy = _legacy_run_entries(root, names)
        if legacy is not None:
            return legacy
    if names and not overwrite:
        raise UsageError(
            f"output directory {path} is not empty and is not an odqa output ({len(names)} entries, e.g. "
            f"{names[0]!r}); choose another directory, or pass --overwrite to write into it (files of the same "
            "names are replaced, the others kept)"
        )
    return []


def _commit_output(staging: Path, root: Path) -> None:
    """Move a complete staging directory's entries into ``root``: the previous output's entries and those the new one
    replaces go to the paired ``.old-`` directory, the new ones move in, ``odqa-output.json`` last. Each step is
    skipped when already done, so the next writer finishes a commit whose process was killed."""
    trash = staging.with_name(staging.name.replace(".tmp-", ".old-", 1))
    if (staging / OUTPUT_MANIFEST).exists():
        new = set(_read_output_manifest(staging / OUTPUT_MANIFEST) or ())
        previous = set(json.loads((staging / _JOURNAL).read_text(encoding="utf-8")))
        trash.mkdir(exist_ok=True)
        for name in sorted(previous | new):
            if name in new and not os.path.lexists(staging / name):
                continue  # the new entry already moved in
            if os.path.lexists(root / name):
                os.replace(root / name, trash / name)
        for name in sorted(new):
            if os.path.lexists(staging / name):
                os.replace(staging / name, root / name)
        os.replace(staging / OUTPUT_MANIFEST, root / OUTPUT_MANIFEST)
    _remove(staging)
    _remove(trash)


def _recover_output_dir(root: Path) -> None:
    """Finish what a killed writer of the output directory ``root`` left: a commit that had begun (its ``.old-``
    directory exists) is completed; a staged output that was never committed is removed, with leftovers beside."""
    for stale in abandoned_temporaries(root, ("tmp", "old")):
        _remove(stale)
    if not root.is_dir():
        return
    staged = root / _STAGING
    leftovers = abandoned_temporaries(staged, ("tmp", "old"))
    for stale in leftovers:
        if stale.name.startswith(f".{_STAGING}.tmp-"):
            if stale.with_name(stale.name.replace(".tmp-", ".old-", 1)).exists():
                _commit_output(stale, root)
            else:
                _remove(stale)
    for stale in abandoned_temporaries(staged, ("old",)):
        _remove(stale)


def recover_output_dir(path: str | Path) -> None:
    """Finish what a killed writer of the output directory ``path`` left (see :func:`write_output_dir`, which does
    this first): a commit that had begun is completed, an output that was never committed is removed."""
    root = resolve_output_path(path)
    with output_lock(root):
        _recover_output_dir(root)


@contextlib.contextmanager
def write_output_dir(path: str | Path, *, overwrite: bool = False, command: str = "run") -> Iterator[Path]:
    """Write a command's outputs into the directory ``path`` as one unit.

    Yields an empty staging directory; when the block finishes, its entries replace those of the previous output
    at ``path`` (which ``odqa-output.json`` lists), entries of the previous output that the new one lacks are
    removed, and ``odqa-output.json`` then lists the new ones. Other files in ``path`` are left alone. A failure
    inside the block leaves the previous output as it was. Checked on entry, before anything is computed: a
    non-empty directory that is not an odqa output is refused unless ``overwrite``, and another odqa process
    writing ``path`` is an :class:`OutputInUseError`.

    ``path`` itself is kept (its permissions, a mount point, a shell's working directory): the new output is staged
    inside it (``.odqa-output.tmp-*``), or beside it when it does not exist yet, and moved in by renames. A process
    killed during those renames leaves a commit that the next writer completes.
    """
    root = resolve_output_path(path)
    with output_lock(root):
        _recover_output_dir(root)
        previous = previous_output(path, overwrite=overwrite)
        exists = root.is_dir()
        staging = temporary_sibling(root / _STAGING) if exists else temporary_sibling(root)
        with _temporary_dir(staging, keep_on_commit=True) as commit:
            yield staging
            entries = sorted(n for n in os.listdir(staging) if n not in (OUTPUT_MANIFEST, _JOURNAL))
            (staging / _JOURNAL).write_text(json.dumps(previous), encoding="utf-8")
            manifest = {"format": OUTPUT_FORMAT, "version": 1, "command": command, "entries": entries}
            (staging / OUTPUT_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
            if not exists:
                (staging / _JOURNAL).unlink()
                os.replace(staging, root)
                return
            # From here on a failure (even Ctrl-C) keeps the staging directory: the next writer completes the commit.
            commit()
            _commit_output(staging, root)
