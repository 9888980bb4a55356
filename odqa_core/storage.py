"""Index and checkpoint directories: ``manifest.json`` plus plain arrays, written atomically, checked on load.

A stored component is a directory::

    manifest.json        format, layout version, component kind/name/version, config, params, file checksums
    documents.jsonl      the document table (retrievers), one JSON object per line
    *.npy / *.json ...   whatever the component writes through the :class:`StoreWriter`

The directory is assembled under a temporary name beside the target and renamed into place only when complete
(:func:`odqa_core.outputs.atomic_directory`), so a crash leaves the previous version or nothing, never half of one.
No pickle: arrays go through ``np.save(allow_pickle=False)`` and are read with ``allow_pickle=False``. A manifest
names files inside its own directory only: absolute paths, ``..``, path separators and symlinks leading out are
refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odqa_core.errors import IndexFormatError, OutputInUseError, UsageError
from odqa_core.outputs import (
    abandoned_temporaries,
    atomic_directory,
    is_plain_name,
    output_lock,
    recover_interrupted_write,
    resolve_output_path,
)
from odqa_core.types import Document

if TYPE_CHECKING:
    import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: writes stay atomic, but concurrent writers are not detected
    fcntl = None  # type: ignore[assignment]

FORMAT = "odqa-store"
LAYOUT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_store_target(path: str | Path) -> None:
    """``path`` is free for a store: nothing there, an empty directory, or a store (replaced). Anything else (a
    file, a device, a directory of other files) is refused with a one-line :class:`UsageError`."""
    target = resolve_output_path(path)
    if not os.path.lexists(target):
        return
    if target.is_dir() and ((target / MANIFEST).is_file() or not any(target.iterdir())):
        return
    raise UsageError(f"{path} exists and is not an odqa store; refusing to overwrite it")


class StoreWriter:
    """Collects the files of a store being written into a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.params: dict[str, Any] = {}

    def path(self, name: str) -> Path:
        """A path for a file the component writes itself (e.g. a faiss index); it is checksummed like the rest."""
        if not is_plain_name(name) or name == MANIFEST or name.startswith("."):
            raise ValueError(f"invalid store file name {name!r}")
        return self.root / name

    def save_array(self, name: str, array: np.ndarray) -> None:
        import numpy as np  # here, not at import: the CLI's --help and listing commands never load numpy

        array = np.asarray(array)
        if array.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only plain numeric/string arrays are stored")
        with open(self.path(f"{name}.npy"), "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    def save_json(self, name: str, obj: Any) -> None:
        self.path(f"{name}.json").write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")

    def save_documents(self, documents: Iterable[Document]) -> None:
        with open(self.path(DOCUMENTS), "w", encoding="utf-8") as fh:
            for doc in documents:
                fh.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")


@contextlib.contextmanager
def write_store(
    path: str | Path, *, kind: str, name: str, format_version: int, config: Mapping[str, Any]
) -> Iterator[StoreWriter]:
    """Write a store atomically: yields a :class:`StoreWriter` on a temporary directory, then renames it to ``path``.

    An existing store at ``path`` is replaced only after the new one is complete. Anything else already at
    ``path`` (a file, a device, a non-store directory) is refused rather than overwritten. A symlink's target is
    written (the link is kept). Another odqa process writing the same path at the same time gets an
    :class:`OutputInUseError`.
    """
    with output_lock(path):
        recover_interrupted_write(path)
        check_store_target(path)
        with atomic_directory(path) as tmp:
            writer = StoreWriter(tmp)
            yield writer
            files = {}
            for file in sorted(tmp.iterdir()):
                files[file.name] = {"bytes": file.stat().st_size, "sha256": sha256_file(file)}
            manifest = {
                "format": FORMAT,
                "layout_version": LAYOUT_VERSION,
                "kind": kind,
                "name": name,
                "format_version": format_version,
                "config": dict(config),
                "params": writer.params,
                "files": files,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


class StoreReader:
    """An opened, verified store. Create with :func:`open_store`."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest.get("config", {}))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.manifest.get("params", {}))

    def path(self, name: str) -> Path:
        files = self.manifest.get("files")
        if not isinstance(files, dict) or name not in files:
            raise IndexFormatError(f"{self.root}: the manifest lists no file {name!r}; the store is incomplete")
        return store_file(self.root, name)

    def load_array(self, name: str, mmap: bool = False) -> np.ndarray:
        import numpy as np

        file = self.path(f"{name}.npy")
        try:
            return np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise IndexFormatError(f"{file}: unreadable array ({exc})") from None

    def load_json(self, name: str) -> Any:
        file = self.path(f"{name}.json")
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise IndexFormatError(f"{file}: unreadable JSON ({exc})") from None

    def load_documents(self) -> list[Document]:
        return list(self.iter_documents())

    def iter_documents(self) -> Iterator[Document]:
        """The document table one document at a time: a caller that stops early reads no further (whether an
        index holds the bundled sample is known from its first document that is not the sample's)."""
        file = self.path(DOCUMENTS)
        read = 0
        try:
            with open(file, encoding="utf-8") as fh:
                for line in fh:
                    document = _document(json.loads(line))
                    read += 1
                    yield document
        except UnicodeDecodeError:  # decoded in blocks: the line is not known
            raise IndexFormatError(f"{file}: not UTF-8 text (after {read} documents)") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexFormatError(
                f"{file} line {read + 1}: not a stored document ({exc.__class__.__name__}: {exc})"
            ) from None


def _document(row: Any) -> Document:
    if not isinstance(row, dict):
        raise TypeError(f"expected a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("text"), str):
        raise TypeError("'text' is missing or not a string")
    if not isinstance(row.get("metadata") or {}, dict):
        raise TypeError("'metadata' is not an object")
    return Document.from_dict(row)


def store_file(root: Path, name: Any) -> Path:
    """The path of a file a store's manifest lists, refusing any that reaches outside the store: an absolute path,
    ``..``, a path separator, or a symlink leading out of the directory (loading would otherwise stat, hash and
    disclose any file the manifest names)."""
    if not is_plain_name(name):
        raise IndexFormatError(
            f"{root}: the manifest lists {name!r}, which is not a file inside the store; refusing to read it"
        )
    file = root / name
    if file.is_symlink():
        real_root = Path(os.path.realpath(root))
        real = Path(os.path.realpath(file))
        if real_root not in real.parents:
            raise IndexFormatError(f"{file}: a symlink leading out of the store (to {real}); refusing to read it")
    return file


def _restore_before_reading(root: Path) -> None:
    """A writer killed between the two renames of a swap left only ``.<name>.old-*``: put it back, as the next
    writer would (readers of a read-only location just see the index as missing)."""
    target = resolve_output_path(root)
    if not abandoned_temporaries(target, ("old",)):
        return
    with contextlib.suppress(OutputInUseError, OSError):
        recover_interrupted_write(target)


def open_store(
    path: str | Path,
    *,
    kind: str | None = None,
    name: str | None = None,
    format_version: int | None = None,
    verify: bool = True,
) -> StoreReader:
    """Open a store, checking format, versions, kind/name when given, file sizes and (``verify``) checksums; a file
    an earlier load verified and that has not changed since is not hashed again (:func:`_verify_checksums`).

    Every failure is an :class:`IndexFormatError` naming what is wrong.
    """
    root = Path(path)
    manifest_path = root / MANIFEST
    if not os.path.lexists(root):
        _restore_before_reading(root)
    if not root.is_dir():
        raise IndexFormatError(f"{root}: no such index directory")
    if not manifest_path.is_file():
        raise IndexFormatError(f"{root}: not an odqa index (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise IndexFormatError(f"{manifest_path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{manifest_path}: not an odqa manifest")
    if manifest.get("layout_version") != LAYOUT_VERSION:
        raise IndexFormatError(
            f"{root}: store layout version {manifest.get('layout_version')!r}, this odqa reads {LAYOUT_VERSION}"
        )
    for key in ("kind", "name"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise IndexFormatError(f"{manifest_path}: the manifest has no {key!r} (got {manifest.get(key)!r})")
    for key in ("config", "params"):
        if not isinstance(manifest.get(key, {}), dict):
            raise IndexFormatError(f"{manifest_path}: the manifest's {key!r} is not an object")
    if kind is not None and manifest.get("kind") != kind:
        raise IndexFormatError(f"{root}: holds a {manifest.get('kind')!r}, expected a {kind!r}")
    if name is not None and manifest.get("name") != name:
        raise IndexFormatError(f"{root}: built by {manifest.get('name')!r}, expected {name!r}")
    if format_version is not None and manifest.get("format_version") != format_version:
        raise IndexFormatError(
            f"{root}: {manifest.get('name')} index format version {manifest.get('format_version')!r}, "
            f"this version reads {format_version}; rebuild it with 'odqa index'"
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise IndexFormatError(f"{manifest_path}: manifest has no file list")
    for file_name, meta in files.items():
        file = store_file(root, file_name)
        if not isinstance(meta, dict):
            raise IndexFormatError(f"{manifest_path}: the entry of {file_name!r} is not an object")
        if not file.is_file():
            raise IndexFormatError(f"{root}: missing file {file_name!r}")
        size = file.stat().st_size
        if size != meta.get("bytes"):
            raise IndexFormatError(
                f"{file}: {size} bytes, the manifest says {meta.get('bytes')} (truncated or modified)"
            )
    if verify:
        _verify_checksums(root, files)
    return StoreReader(root, manifest)


#: A file changed less than this long before it was verified is not remembered as verified: file timestamps come
#: from a coarse clock (a few milliseconds on Linux, 2 s on FAT), and a change within the same tick as the one
#: recorded would keep its timestamps (git's "racily clean" entries).
RACY_WINDOW_NS = 2_000_000_000


def cache_dir() -> Path:
    """Where odqa caches what it builds (``ODQA_CACHE_DIR``, else ``$XDG_CACHE_HOME/odqa`` or ``~/.cache/odqa``)."""
    if os.environ.get("ODQA_CACHE_DIR"):
        return Path(os.environ["ODQA_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "odqa"


def verified_cache_dir() -> Path:
    """Where loads remember the store files whose checksums they verified (``verified-stores/`` of
    :func:`cache_dir`)."""
    return cache_dir() / "verified-stores"


def _file_identity(file: Path, sha256: Any) -> list[Any]:
    info = file.stat()
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, sha256]


def _verify_checksums(root: Path, files: dict[str, Any]) -> None:
    """Check every file's sha256 against the manifest, skipping the files this user's earlier loads verified and
    that have not changed since: same device, inode, size, modification time and inode change time, and the same
    expected checksum. The change time (ctime) is set by the kernel on every write, rename or ``utime`` and cannot
    be set back, so a file rewritten in place with its mtime restored is hashed again. What goes unnoticed is a
    change that bypasses the file system's timestamps (bit rot on the medium, writes to the raw device, the clock
    set back by root): ``verify=True`` hashes a file on the first load after its identity changes, no longer at
    every load, which read the whole index each time.

    The record lives in the user's cache directory, never in the store (read-only index locations work); a cache
    that cannot be read or written only means hashing every time.
    """
    record = verified_cache_dir() / f"{hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:32]}.json"
    try:
        known = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    verified: dict[str, list[Any]] = {}
    started = time.time_ns()
    for file_name, meta in files.items():
        file = store_file(root, file_name)
        identity = _file_identity(file, meta.get("sha256"))
        if known.get(file_name) == identity:
            verified[file_name] = identity
            continue
        if sha256_file(file) != meta.get("sha256"):
            raise IndexFormatError(f"{file}: checksum mismatch (corrupted or modified)")
        after = _file_identity(file, meta.get("sha256"))  # changed while being hashed: not remembered
        if after == identity and max(identity[3], identity[4]) < started - RACY_WINDOW_NS:
            verified[file_name] = identity
    if verified != known:
        temporary = record.with_name(f".{record.name}.{os.getpid()}.tmp")
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(verified), encoding="utf-8")
            os.replace(temporary, record)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
