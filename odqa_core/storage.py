"""Index and checkpoint directories: ``manifest.json`` plus plain arrays, written atomically, checked on load.

A stored component is a directory::

    manifest.json        format, layout version, component kind/name/version, config, params, file checksums
    documents.jsonl      the document table (retrievers), one JSON object per line
    *.npy / *.json ...   whatever the component writes through the :class:`StoreWriter`

The directory is assembled under a temporary name beside the target and renamed into place only when complete, so
a crash leaves the previous version or nothing, never half of one. No pickle: arrays go through
``np.save(allow_pickle=False)`` and are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core.errors import IndexFormatError, UsageError
from odqa_core.types import Document

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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file through a temporary sibling and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write_lines(path: str | Path) -> Iterator[Any]:
    """Yield a text handle; the file appears at ``path`` only if the block finishes without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class StoreWriter:
    """Collects the files of a store being written into a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.params: dict[str, Any] = {}

    def path(self, name: str) -> Path:
        """A path for a file the component writes itself (e.g. a faiss index); it is checksummed like the rest."""
        if "/" in name or name in (MANIFEST, "") or name.startswith("."):
            raise ValueError(f"invalid store file name {name!r}")
        return self.root / name

    def save_array(self, name: str, array: np.ndarray) -> None:
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
    ``path`` (a file, a non-store directory) is refused rather than overwritten.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and ((path / MANIFEST).exists() or not any(path.iterdir()))):
        raise UsageError(f"{path} exists and is not an odqa store; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
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
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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
        if name not in self.manifest["files"]:
            raise IndexFormatError(f"{self.root}: the manifest lists no file {name!r}; the store is incomplete")
        return self.root / name

    def load_array(self, name: str, mmap: bool = False) -> np.ndarray:
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
        file = self.path(DOCUMENTS)
        with open(file, encoding="utf-8") as fh:
            return [Document.from_dict(json.loads(line)) for line in fh]


def open_store(
    path: str | Path,
    *,
    kind: str | None = None,
    name: str | None = None,
    format_version: int | None = None,
    verify: bool = True,
) -> StoreReader:
    """Open a store, checking format, versions, kind/name when given, file sizes and (``verify``) checksums.

    Every failure is an :class:`IndexFormatError` naming what is wrong.
    """
    root = Path(path)
    manifest_path = root / MANIFEST
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
        file = root / file_name
        if not file.is_file():
            raise IndexFormatError(f"{root}: missing file {file_name!r}")
        size = file.stat().st_size
        if size != meta.get("bytes"):
            raise IndexFormatError(
                f"{file}: {size} bytes, the manifest says {meta.get('bytes')} (truncated or modified)"
            )
        if verify and sha256_file(file) != meta.get("sha256"):
            raise IndexFormatError(f"{file}: checksum mismatch (corrupted or modified)")
    return StoreReader(root, manifest)
