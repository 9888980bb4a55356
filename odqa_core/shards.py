"""Sharded indexes: a corpus split into N contiguous shards, each an ordinary store, searched as one index.

A sharded index directory::

    manifest.json        an ordinary store manifest (kind, retriever name, config) with ``"layout": "sharded"``;
                         it lists ``shards.json`` only, and is written last
    shards.json          build id, shard names, document ranges [start, stop), each shard manifest's sha256 and
                         the corpus-wide statistics the shards were weighed with (a summary)
    shard-0000/ ...      one ordinary store per shard (own manifest, checksums, format version); its manifest's
                         ``params.shard`` repeats the build id and its range

The whole directory is assembled under a temporary name and renamed into place (:func:`odqa_core.outputs.
atomic_directory`), so an interrupted build leaves the previous index or nothing.

Building (:func:`build_sharded_index`) is map-reduce: a retriever whose scores depend on corpus-wide statistics
(BM25's document frequencies, N and mean length) implements the optional hooks below, so that every shard is
weighed with the statistics of the whole corpus and the sharded index ranks exactly as the single index:

- ``shard_statistics(documents) -> part``: the statistics of one shard (the map, run per shard);
- ``merge_shard_statistics(parts) -> statistics``: the corpus-wide statistics (the reduce, in shard order);
- ``index_shard(documents, statistics)``: index one shard with them;
- ``statistics_summary(statistics) -> dict``: what the top manifest records of them (JSON).

A retriever without them (its scores depend on the document alone, as a bi-encoder's) indexes each shard with
``index``. Searching (:class:`ShardedRetriever`) sends each batch of questions to every shard and merges the top
k exactly: by score, descending, then by global document position, which is how a single index breaks ties.
Optional search hooks let a shard analyse the questions once for all shards (``prepare_queries``) and return its
ranking before a per-question constant that is added after the merge (``search_prepared``), so that ties created
by adding the constant are broken as a single index breaks them; a ``search_prepared`` that takes ``floor`` (one
score per question) returns only the documents scoring above it, padded with index -1 and score -inf, which lets
the local engine seed each shard with the k-th best score of the shards searched before it.

Engines: ``local`` builds the shards in this process, or in a pool of ``workers`` processes, and searches them in
this process; ``ray`` (the optional ``odqa[ray]`` extra) builds them on ``workers`` Ray actors and searches them
with one Ray actor per shard, which loads its shard once. Either way a shard belongs to one build worker from its
map step to its store: its documents are sent to it once and analysed once. The shards are written to the index
directory by whichever worker built them, so on a cluster of several machines it must be on storage they share.
Nothing needs Ray to read a sharded index.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odqa_core.errors import IndexFormatError, OdqaError, UsageError
from odqa_core.interfaces import Retriever, check_candidates
from odqa_core.types import Document, RankedResults

if TYPE_CHECKING:
    import numpy as np

    from odqa_core.storage import StoreReader, StoreWriter

__all__ = [
    "SHARDS_FILE",
    "ShardedRetriever",
    "build_sharded_index",
    "is_sharded",
    "iter_stored_documents",
    "merge_top_k",
    "shard_ranges",
]

SHARDS_FILE = "shards.json"
SHARDS_FORMAT = "odqa-shards"
SHARDS_VERSION = 1
LAYOUT = "sharded"
ENGINES = ("local", "ray")


def shard_name(i: int) -> str:
    return f"shard-{i:04d}"


def shard_ranges(n_documents: int, n_shards: int) -> list[tuple[int, int]]:
    """``n_shards`` contiguous ``[start, stop)`` ranges covering ``n_documents``, sizes differing by at most one."""
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise UsageError(f"the number of shards must be an integer >= 1, got {n_shards!r}")
    if n_shards > n_documents:
        raise UsageError(f"{n_shards} shards for a corpus of {n_documents} documents; give at most {n_documents}")
    base, extra = divmod(n_documents, n_shards)
    ranges, start = [], 0
    for i in range(n_shards):
        stop = start + base + (i < extra)
        ranges.append((start, stop))
        start = stop
    return ranges


def is_sharded(path: str | Path) -> bool:
    """Whether ``path`` holds a sharded index (its manifest says so); False for anything else."""
    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("layout") == LAYOUT


def connect_ray(address: str | None = None) -> Any:
    """The ``ray`` module, connected as ``--engine ray`` connects: to the cluster at ``address`` (refused at once,
    in one line, when it does not answer), or to a local instance started now. For plugins that run on the same
    engine (``odqa serve --engine ray``); a missing Ray is a one-line :class:`~odqa_core.errors.UsageError`."""
    from odqa_core import _ray_engine

    return _ray_engine.init(address)


# --------------------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------------------


class _PackedDocuments:
    """A shard's documents as columns of plain values, the form in which they travel to a worker process or a Ray
    actor: it pickles several times faster than the documents themselves, and documents without metadata (whose
    empty mapping is read-only, which pickle refuses) travel too."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self.ids = [d.id for d in documents]
        self.texts = [d.text for d in documents]
        titles = [d.title for d in documents]
        self.titles = titles if any(titles) else None
        metadata = [dict(d.metadata) if d.metadata else None for d in documents]
        self.metadata = metadata if any(m is not None for m in metadata) else None

    def unpack(self) -> list[Document]:
        n = len(self.ids)
        titles = self.titles or [""] * n
        metadata = self.metadata or [None] * n
        return [
            Document(id=i, text=t, title=h, metadata=m) if m is not None else Document(id=i, text=t, title=h)
            for i, t, h, m in zip(self.ids, self.texts, titles, metadata)
        ]


def _unpacked(documents: Sequence[Document] | _PackedDocuments) -> Sequence[Document]:
    return documents.unpack() if isinstance(documents, _PackedDocuments) else documents


class _ShardBuilder:
    """The shards one build worker owns, from the map step to their stores. Each shard's documents arrive once (with
    its first step) and are analysed once: the retriever that computes a shard's statistics keeps its analysis (e.g.
    the sparse retrievers' token counts) and indexes the shard with it. Runs in this process, in a pool process
    (:func:`_pool_worker`) or as a Ray actor (:mod:`odqa_core._ray_engine`)."""

    def __init__(self, factory: type[Retriever], config: Mapping[str, Any]) -> None:
        self.factory = factory
        self.config = dict(config)
        self.documents: dict[int, Sequence[Document]] = {}
        self.retrievers: dict[int, Retriever] = {}

    def _retriever(self, shard: int) -> Retriever:
        if shard not in self.retrievers:
            self.retrievers[shard] = self.factory.from_options(dict(self.config))
        return self.retrievers[shard]

    def statistics(self, shard: int, documents: Sequence[Document] | _PackedDocuments) -> Any:
        """The map step of one shard, whose documents this worker keeps for its index step."""
        documents = self.documents[shard] = _unpacked(documents)
        return self._retriever(shard).shard_statistics(documents)  # type: ignore[attr-defined]

    def build(
        self,
        shard: int,
        statistics: Any,
        path: str,
        info: Mapping[str, Any],
        documents: Sequence[Document] | _PackedDocuments | None = None,
    ) -> str:
        """Index one shard (its documents given now or with its map step) and write its store; the worker lets go
        of the shard then. Returns the store manifest's sha256."""
        documents = self.documents[shard] if documents is None else _unpacked(documents)
        retriever = self._retriever(shard)
        self.documents.pop(shard, None)
        self.retrievers.pop(shard, None)
        return _write_shard(retriever, documents, statistics, path, info)


#: ``(shard, method, args)``: one step of one shard, run by the worker that owns the shard.
ShardCall = tuple[int, str, tuple[Any, ...]]


class _InProcessBuilders:
    """Every shard built in this process, one after the other."""

    def __init__(self, factory: type[Retriever], config: Mapping[str, Any]) -> None:
        self.builder = _ShardBuilder(factory, config)

    def share(self, value: Any) -> Any:
        return value

    @staticmethod
    def pack(documents: Sequence[Document]) -> Any:
        return documents

    def run(self, calls: Sequence[ShardCall]) -> list[Any]:
        return [getattr(self.builder, method)(shard, *args) for shard, method, args in calls]

    def close(self) -> None:
        self.builder = None  # type: ignore[assignment]


def _pool_worker(connection: Any, factory: type[Retriever], config: Mapping[str, Any]) -> None:
    """A pool process: a :class:`_ShardBuilder` answering ``(shard, method, args)`` messages until told to stop."""
    builder = _ShardBuilder(factory, config)
    while True:
        try:
            message = connection.recv()
        except EOFError:  # the driver went away
            return
        if message is None:
            return
        shard, method, args = message
        try:
            reply: tuple[str, Any] = ("ok", getattr(builder, method)(shard, *args))
        except BaseException as exc:  # sent back whole; the driver raises it
            reply = ("error", exc)
        try:
            connection.send(reply)
        except Exception as exc:  # e.g. an exception that does not pickle: its type and first line instead
            connection.send(("error", RuntimeError(f"{type(exc).__name__}: {_first_line(reply[1])}")))


def _first_line(value: Any) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


def _exit_status(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _ProcessBuilders:
    """A pool of ``workers`` processes, each owning the shards ``i % workers == its number`` from their map step to
    their store, so that a shard's documents are sent once and analysed once (a ``ProcessPoolExecutor`` cannot send
    a shard's second step to the process that holds its first). A process that dies fails the build with one line
    naming the shard it was building."""

    def __init__(self, factory: type[Retriever], config: Mapping[str, Any], workers: int, n_shards: int) -> None:
        import multiprocessing

        # spawn, not fork: the parent may hold threads (numba, BLAS) that a forked child would inherit mid-lock
        context = multiprocessing.get_context("spawn")
        self.n_shards = n_shards
        self.connections: list[Any] = []
        self.processes: list[Any] = []
        self.busy: dict[int, int] = {}  # worker -> the position of the call it is running
        for _ in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(target=_pool_worker, args=(theirs, factory, dict(config)), daemon=True)
            process.start()
            theirs.close()
            self.connections.append(ours)
            self.processes.append(process)

    def share(self, value: Any) -> Any:
        return value

    pack = _PackedDocuments

    def run(self, calls: Sequence[ShardCall]) -> list[Any]:
        from multiprocessing.connection import wait

        workers = len(self.processes)
        queues: list[list[int]] = [[] for _ in range(workers)]
        for position, (shard, _, _) in enumerate(calls):
            queues[shard % workers].append(position)
        results: list[Any] = [None] * len(calls)
        busy = self.busy

        def send_next(worker: int) -> None:
            if queues[worker]:
                position = queues[worker].pop(0)
                # one message at a time per worker (never two sends racing its reply through a full pipe)
                self.connections[worker].send(calls[position])
                busy[worker] = position

        for worker in range(workers):
            send_next(worker)
        while busy:
            watched = {self.connections[w]: w for w in busy} | {self.processes[w].sentinel: w for w in busy}
            for ready in wait(list(watched)):
                worker = watched[ready]
                if worker not in busy:
                    continue
                connection, position = self.connections[worker], busy[worker]
                try:
                    has_reply = connection.poll()
                    reply = connection.recv() if has_reply else None
                except (EOFError, OSError):
                    reply = None
                if reply is None:  # the process died without answering
                    self.processes[worker].join(timeout=5)
                    raise OdqaError(
                        f"shard {calls[position][0]} of {self.n_shards} failed: its worker process "
                        f"(pid {self.processes[worker].pid}) died ({_exit_status(self.processes[worker].exitcode)}) "
                        "while building it; nothing was written, run the build again"
                    )
                del busy[worker]
                status, value = reply
                if status == "error":
                    raise value
                results[position] = value
                send_next(worker)
        return results

    def close(self) -> None:
        """Stop every process and wait for it: one still at work (the build failed elsewhere) at once, since it
        must not write into a directory that is being removed; an idle one by asking it to."""
        for worker, (connection, process) in enumerate(zip(self.connections, self.processes)):
            if worker in self.busy:
                process.kill()
            else:
                with contextlib.suppress(OSError):  # already gone
                    connection.send(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for connection in self.connections:
            connection.close()


def _write_shard(
    retriever: Retriever, documents: Sequence[Document], statistics: Any, path: str, info: Mapping[str, Any]
) -> str:
    """Index one shard with ``retriever`` (which may keep what its ``shard_statistics`` computed, e.g. the shard's
    token counts, so that indexing does not analyse it again) and write it as an ordinary store at ``path``;
    returns its manifest's sha256. Runs wherever the shard's worker runs."""
    from odqa_core.storage import MANIFEST, sha256_file, write_store

    retriever.warm_up()
    if statistics is not None and hasattr(retriever, "index_shard"):
        retriever.index_shard(documents, statistics)
    else:
        retriever.index(documents)
    with write_store(
        path,
        kind=retriever.kind,
        name=retriever.name,
        format_version=retriever.format_version,
        config=retriever.config(),
    ) as writer:
        writer.save_documents(retriever.documents)
        retriever.save_state(writer)
        writer.params["shard"] = dict(info)
    return sha256_file(Path(path) / MANIFEST)


def build_sharded_index(
    retriever: Retriever,
    documents: Sequence[Document],
    path: str | Path,
    n_shards: int,
    *,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
) -> None:
    """Index ``documents`` with ``retriever``'s kind and options as ``n_shards`` contiguous shards at ``path``.

    The corpus-wide statistics are computed first (map per shard, then reduce), every shard is indexed with them
    and written as an ordinary store, and the top manifest is written last; the directory replaces ``path`` only
    when complete. Each shard's documents go to one worker once, which analyses them once and keeps the analysis
    from the map step to the shard's store.

    ``engine`` ``local`` builds the shards in this process, or (``workers`` > 1) in a pool of that many processes;
    ``ray`` in one Ray actor per worker (``workers``, default: the cluster's CPUs, at most one per shard, one CPU
    each) on ``ray_address`` (an existing cluster, else a local ``ray.init()``). A worker that dies fails the build
    with one line naming the shard; ``path`` keeps what it held.
    """
    from odqa_core.outputs import atomic_directory, output_lock, recover_interrupted_write
    from odqa_core.storage import check_store_target

    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UsageError(f"--workers must be an integer >= 1, got {workers!r}")
    if engine != "ray" and ray_address is not None:
        raise UsageError("--ray-address needs --engine ray")
    documents = list(documents)
    ranges = shard_ranges(len(documents), n_shards)
    factory, config = type(retriever), retriever.config()
    parts = [documents[a:b] for a, b in ranges]
    build_id = uuid.uuid4().hex
    with output_lock(path):
        recover_interrupted_write(path)
        check_store_target(path)
        with atomic_directory(path) as tmp:
            if engine == "ray":
                from odqa_core import _ray_engine

                builders: Any = _ray_engine.ShardBuilders(
                    _ShardBuilder, _PackedDocuments, factory, config, workers, n_shards, ray_address
                )
            elif workers is not None and workers > 1 and n_shards > 1:
                builders = _ProcessBuilders(factory, config, min(workers, n_shards), n_shards)
            else:
                builders = _InProcessBuilders(factory, config)
            try:
                statistics = None
                summary: dict[str, Any] = {}
                if hasattr(retriever, "shard_statistics"):
                    partial = builders.run(
                        [(i, "statistics", (builders.pack(part),)) for i, part in enumerate(parts)]
                    )
                    statistics = retriever.merge_shard_statistics(partial)  # type: ignore[attr-defined]
                    summary = retriever.statistics_summary(statistics)  # type: ignore[attr-defined]
                infos = [
                    {"build_id": build_id, "index": i, "of": n_shards, "start": a, "stop": b}
                    for i, (a, b) in enumerate(ranges)
                ]
                shared = builders.share(statistics)  # sent to every shard's worker, stored once where it can be
                calls: list[ShardCall] = []
                for i, part in enumerate(parts):
                    # the documents again only where no map step took them
                    extra = () if statistics is not None else (builders.pack(part),)
                    calls.append((i, "build", (shared, str(tmp / shard_name(i)), infos[i], *extra)))
                digests = builders.run(calls)
            finally:
                builders.close()  # before the temporary directory goes: no worker may still write into it
            _write_top(tmp, retriever, ranges, digests, build_id, summary)


def _write_top(
    root: Path, retriever: Retriever, ranges: list[tuple[int, int]], digests: list[str], build_id: str, summary: Any
) -> None:
    """``shards.json`` then the top ``manifest.json`` (last: a directory without it is no index)."""
    from odqa_core.storage import FORMAT, LAYOUT_VERSION, MANIFEST, sha256_file

    shards = {
        "format": SHARDS_FORMAT,
        "version": SHARDS_VERSION,
        "build_id": build_id,
        "n_docs": ranges[-1][1],
        "statistics": summary,
        "shards": [
            {"name": shard_name(i), "start": a, "stop": b, "manifest_sha256": digest}
            for i, ((a, b), digest) in enumerate(zip(ranges, digests))
        ],
    }
    (root / SHARDS_FILE).write_text(json.dumps(shards, ensure_ascii=False, indent=1), encoding="utf-8")
    manifest = {
        "format": FORMAT,
        "layout_version": LAYOUT_VERSION,
        "layout": LAYOUT,
        "kind": retriever.kind,
        "name": retriever.name,
        "format_version": retriever.format_version,
        "config": retriever.config(),
        "params": {"shards": len(ranges), "n_docs": ranges[-1][1], "build_id": build_id},
        "files": {
            SHARDS_FILE: {"bytes": (root / SHARDS_FILE).stat().st_size, "sha256": sha256_file(root / SHARDS_FILE)}
        },
    }
    (root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------------------------


def _shard_table(path: Path, reader: StoreReader) -> dict[str, Any]:
    """``shards.json``, checked: names, contiguous ranges from 0, digests."""
    table = reader.load_json("shards")
    bad = None
    if not isinstance(table, dict) or table.get("format") != SHARDS_FORMAT:
        bad = "not a shard table"
    elif table.get("version") != SHARDS_VERSION:
        bad = f"shard table version {table.get('version')!r}, this odqa reads {SHARDS_VERSION}"
    elif (
        not isinstance(table.get("shards"), list) or not table["shards"] or not isinstance(table.get("build_id"), str)
    ):
        bad = "no shard list or build id"
    else:
        start = 0
        for i, shard in enumerate(table["shards"]):
            if (
                not isinstance(shard, dict)
                or shard.get("name") != shard_name(i)
                or shard.get("start") != start
                or not isinstance(shard.get("stop"), int)
                or shard["stop"] <= start
                or not isinstance(shard.get("manifest_sha256"), str)
            ):
                bad = f"malformed entry {i} of the shard list"
                break
            start = shard["stop"]
        else:
            if table.get("n_docs") != start:
                bad = "shard ranges that do not cover its documents"
    if bad:
        raise IndexFormatError(f"{path / SHARDS_FILE}: {bad}; rebuild the index")
    return table


def _open_shards(path: str | Path, *, kind: str = "retriever") -> tuple[StoreReader, dict[str, Any], list[Path]]:
    """The top store, its shard table and the shard directories, each shard's manifest checked against the table
    (present, unchanged since the build, of this build and range)."""
    from odqa_core.storage import MANIFEST, open_store, sha256_file

    root = Path(path)
    reader = open_store(root, kind=kind)
    if reader.manifest.get("layout") != LAYOUT:
        raise IndexFormatError(f"{root}: not a sharded index")
    table = _shard_table(root, reader)
    dirs = []
    for i, entry in enumerate(table["shards"]):
        shard = root / entry["name"]
        manifest = shard / MANIFEST
        if not manifest.is_file():
            raise IndexFormatError(f"{shard}: shard {i} of {root} is missing; rebuild the index")
        if sha256_file(manifest) != entry["manifest_sha256"]:
            try:
                info = json.loads(manifest.read_text(encoding="utf-8"))["params"]["shard"]["build_id"]
            except (OSError, ValueError, KeyError, TypeError):
                info = None
            what = (
                f"comes from another build ({info}, the index is {table['build_id']})"
                if isinstance(info, str) and info != table["build_id"]
                else "was modified since the index was built"
            )
            raise IndexFormatError(f"{shard}: shard {i} of {root} {what}; rebuild the index")
        dirs.append(shard)
    return reader, table, dirs


def iter_stored_documents(path: str | Path) -> Iterator[Document]:
    """The document table of a stored retriever index, single or sharded, one document at a time."""
    from odqa_core.storage import open_store

    if not is_sharded(path):
        yield from open_store(path, kind="retriever").iter_documents()
        return
    _, _, dirs = _open_shards(path)
    for shard in dirs:
        yield from open_store(shard, kind="retriever").iter_documents()


# --------------------------------------------------------------------------------------------------------------
# Searching
# --------------------------------------------------------------------------------------------------------------


def merge_top_k(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], offsets: Sequence[int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of each row over shard rankings ``(indices, scores)`` (shard-local rows, ``offsets`` added):
    by score descending, then global position ascending, as a single index ranks.

    Each shard's ranking breaks its ties by position and the shards come in position order, so within a run of
    equal scores the concatenation is already in position order: a stable sort by score alone keeps it."""
    import numpy as np

    indices = np.concatenate([p[0] + np.int64(off) for p, off in zip(parts, offsets)], axis=1)
    scores = np.concatenate([p[1] for p in parts], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(indices, order, 1), np.take_along_axis(scores, order, 1)


def add_constants(indices: np.ndarray, scores: np.ndarray, constants: np.ndarray) -> None:
    """Add each row's constant to its scores (float32, in place), then restore position order inside runs of
    scores that the addition made equal (a single index does the same after adding the constant)."""
    import numpy as np

    scores += constants.astype(np.float32)[:, None]
    if scores.shape[1] < 2:
        return
    for row in np.flatnonzero((np.diff(scores, axis=1) == 0).any(axis=1)):
        s, ids = scores[row], indices[row]
        a = 0
        while a < len(s):
            b = a + 1
            while b < len(s) and s[b] == s[a]:
                b += 1
            ids[a:b] = np.sort(ids[a:b])
            a = b


class _ConcatDocuments(Sequence[Document]):
    """The shards' document tables as one (global positions), each read as its shard reads it."""

    def __init__(self, tables: Sequence[Sequence[Document]], offsets: Sequence[int]) -> None:
        self._tables = list(tables)
        self._offsets = list(offsets)
        self._n = self._offsets[-1] + len(self._tables[-1]) if self._tables else 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        import bisect

        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        shard = bisect.bisect_right(self._offsets, i) - 1
        return self._tables[shard][i - self._offsets[shard]]

    def __iter__(self) -> Iterator[Document]:
        for table in self._tables:
            yield from table


class _LocalShard:
    """A shard searched in this process: its retriever."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.documents = retriever.documents
        self.prepares = hasattr(retriever, "prepare_queries")
        # whether search_prepared takes a score floor (see ShardedRetriever._search_seeded)
        self.floors = self.prepares and _takes_keyword(retriever.search_prepared, "floor")  # type: ignore[attr-defined]
        # whether the shard scores prepared questions too (score_all / score without encoding them again per shard)
        self.scores_prepared = self.prepares and hasattr(retriever, "score_prepared")

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.retriever, method)(*args)


def _takes_keyword(function: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _seed_floor(scores: np.ndarray, k: int) -> np.ndarray | None:
    """Each question's k-th best score merged so far (float64), or None while fewer than k hits are merged or no
    question's k-th score is positive (a floor <= 0 is no floor: documents scoring 0 may still belong)."""
    if k == 0 or scores.shape[1] < k:
        return None
    floor = scores[:, k - 1].astype("float64")
    return floor if bool((floor > 0).any()) else None


def _merge_running(
    indices: np.ndarray, scores: np.ndarray, part: tuple[np.ndarray, np.ndarray], offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of a running merge ``(indices, scores)`` (global positions, best first) and a later shard's
    ranking ``part`` (shard-local rows; a seeded shard pads its rows with index -1, score -inf).

    The running hits come first, so a stable sort by score alone breaks ties by position; the padding sorts last
    and never reaches the top k, which the running merge already fills with real hits whenever a floor was used.
    Only the columns holding hits are merged (a seeded shard usually returns few)."""
    import numpy as np

    part_i, part_s = part
    width = int((part_i >= 0).sum(axis=1).max()) if part_i.size else 0
    if width == 0 and scores.shape[1] >= k:
        return indices, scores
    part_i, part_s = part_i[:, :width], part_s[:, :width]
    all_i = np.concatenate([indices, np.where(part_i >= 0, part_i + np.int64(offset), -1)], axis=1)
    all_s = np.concatenate([scores, part_s], axis=1)
    order = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(all_i, order, 1), np.take_along_axis(all_s, order, 1)


def _search_arrays(retriever: Retriever, method: str, *args: Any) -> Any:
    """A shard retriever's answer as plain arrays (what a Ray actor sends back)."""
    if method == "search":
        results = retriever.search(*args)
        return results.indices, results.scores
    if method == "search_prepared":
        results, constants = retriever.search_prepared(*args)  # type: ignore[attr-defined]
        return (results.indices, results.scores), constants
    return getattr(retriever, method)(*args)


class ShardedRetriever(Retriever):
    """A sharded index searched as one: the shards are ordinary retrievers of one kind; results point into the
    concatenation of their document tables. Open with :meth:`load` (or :func:`odqa_core.pipeline.load_retriever`).

    Each batch of questions goes to every shard and the top k are merged exactly (:func:`merge_top_k`). With the
    local engine the shards are searched in this process, one after the other, each seeded with the k-th best
    score merged from the shards before it when its retriever takes a ``floor`` (:meth:`_search_seeded`); with
    Ray (``load(..., {"engine": "ray"})``, or ``-o engine=ray [-o ray_address=ADDR]`` on the command line) one
    actor per shard loads it once and the shards are searched in parallel, unseeded: a shard searched at the same
    time as the others cannot wait for their scores.
    """

    def __init__(self, shards: Sequence[Any], *, path: str | Path | None = None, engine: str = "local") -> None:
        if not shards:
            raise UsageError("a sharded retriever needs at least one shard")
        backends = [_LocalShard(s) if isinstance(s, Retriever) else s for s in shards]
        first = type(backends[0].retriever) if isinstance(backends[0], _LocalShard) else backends[0].cls
        self.shards = backends
        self.engine = engine
        self.name = first.name  # type: ignore[misc]
        self.format_version = first.format_version  # type: ignore[misc]
        self.runtime_options = first.runtime_options | {"engine", "ray_address"}  # type: ignore[misc]
        self.scores_unindexed = first.scores_unindexed  # type: ignore[misc]
        self.path = path
        offsets, start = [], 0
        for shard in self.shards:
            offsets.append(start)
            start += len(shard.documents)
        self.offsets = offsets
        self._documents = _ConcatDocuments([s.documents for s in self.shards], offsets)

    # --- the retriever of the shards --------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return self.shards[0].call("config")

    def resolved_config(self) -> dict[str, Any]:
        return self.shards[0].call("resolved_config")

    def warm_up(self) -> None:
        self._fan_out("warm_up", [()] * len(self.shards))

    @property
    def documents(self) -> Sequence[Document]:
        return self._documents

    def index(self, documents: Sequence[Document]) -> None:
        raise UsageError("a sharded index is built with build_sharded_index ('odqa index --shards N')")

    def save_state(self, writer: StoreWriter) -> None:
        raise UsageError("a sharded index is written by build_sharded_index ('odqa index --shards N')")

    @classmethod
    def load_state(cls, reader: StoreReader, documents: list[Document]) -> Retriever:
        raise UsageError("open a sharded index with ShardedRetriever.load")

    @classmethod
    def load(cls, path: str | Path, options: Mapping[str, Any] | None = None) -> ShardedRetriever:
        """Open a sharded index: the top manifest, then every shard (checked against it) through its class.

        ``options`` are the shards' runtime options, plus ``engine`` (``local`` or ``ray``) and ``ray_address``.
        """
        from odqa_core import plugins

        options = dict(options or {})
        engine = options.pop("engine", "local")
        ray_address = options.pop("ray_address", None)
        if engine not in ENGINES:
            raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if engine != "ray" and ray_address is not None:
            raise UsageError("option 'ray_address' needs engine=ray")
        reader, table, dirs = _open_shards(path)
        shard_class = plugins.get_component_class("retriever", reader.manifest["name"])
        if engine == "ray":
            from odqa_core import _ray_engine

            shards = _ray_engine.shard_actors(shard_class, dirs, options or None, ray_address, _search_arrays)
        else:
            retrievers = [shard_class.load(shard_dir, options or None) for shard_dir in dirs]
            if hasattr(shard_class, "share_resources"):
                # shards in one process share what they may (a dense index: one copy of the model, not one per shard)
                for retriever in retrievers[1:]:
                    retriever.share_resources(retrievers[0])
            shards = [_LocalShard(retriever) for retriever in retrievers]
        for entry, shard_dir, shard in zip(table["shards"], dirs, shards):
            if len(shard.documents) != entry["stop"] - entry["start"]:
                raise IndexFormatError(
                    f"{shard_dir}: {len(shard.documents)} documents, the shard table says "
                    f"{entry['stop'] - entry['start']}; rebuild the index"
                )
        return cls(shards, path=path, engine=engine)

    # --- search and scoring -----------------------------------------------------------------------------------

    def _fan_out(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``method(*args[i])`` on every shard i: one after the other here, all at once on Ray actors."""
        if self.engine == "ray":
            from odqa_core import _ray_engine

            return _ray_engine.gather([shard.submit(method, *a) for shard, a in zip(self.shards, args)])
        return [_search_arrays(shard.retriever, method, *a) for shard, a in zip(self.shards, args)]

    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        import numpy as np

        if isinstance(queries, str):
            raise UsageError("search() takes a list of queries, got a single string")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise UsageError(f"k must be an integer >= 0, got {k!r}")
        queries = list(queries)
        k = min(int(k), len(self._documents))
        ks = [min(k, len(shard.documents)) for shard in self.shards]
        constants = None
        if self.shards[0].prepares:
            # analysed once (the shards share the corpus's vocabulary), ranked before the per-question constant
            prepared = self.shards[0].call("prepare_queries", queries)
            if self.engine == "local":
                indices, scores, constants = self._search_seeded(prepared, ks, k)
            else:
                answers = self._fan_out("search_prepared", [(prepared, n) for n in ks])
                constants = answers[0][1]
                indices, scores = merge_top_k([a[0] for a in answers], self.offsets, k)
        else:
            indices, scores = merge_top_k(self._fan_out("search", [(queries, n) for n in ks]), self.offsets, k)
        if constants is not None and np.any(constants != 0):
            add_constants(indices, scores, constants)
        return RankedResults(indices, scores, self._documents)

    def _search_seeded(self, prepared: Any, ks: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """The local engine's search: the shards one after the other, in order, each seeded (``floor``) with every
        question's k-th best score merged from the shards before it, so that a later shard prunes as the single
        index does instead of finding its own top k.

        Exact: a later shard's documents come after the k merged ones, so one scoring exactly the floor loses the
        tie to them, and one scoring less is beaten by k; the shard returns every document scoring above it (its
        pruning keeps whatever may reach the floor, with the kernel's float32 slack). The Ray engine searches the
        shards in parallel instead, where no shard can wait for the others' scores: it merges full top-k lists.
        """
        indices = scores = constants = None
        for shard, n, offset in zip(self.shards, ks, self.offsets):
            floor = _seed_floor(scores, k) if scores is not None and shard.floors else None
            if floor is None:
                results, shard_constants = shard.retriever.search_prepared(prepared, n)
            else:
                results, shard_constants = shard.retriever.search_prepared(prepared, n, floor=floor)
            if scores is None:
                constants = shard_constants
                indices, scores = results.indices + offset, results.scores
            else:
                indices, scores = _merge_running(indices, scores, (results.indices, results.scores), offset, k)
        return indices, scores, constants

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        import numpy as np

        queries = list(queries)
        if self.shards[0].scores_prepared:
            # the questions prepared once (a dense index: encoded once) for every shard
            prepared = self.shards[0].call("prepare_queries", queries)
            parts = self._fan_out("score_all_prepared", [(prepared,)] * len(self.shards))
        else:
            parts = self._fan_out("score_all", [(queries,)] * len(self.shards))
        return np.concatenate(parts, axis=1)

    def score(self, queries: Sequence[str], candidates: np.ndarray) -> np.ndarray:
        import numpy as np

        candidates = check_candidates(candidates, len(queries), len(self._documents), self.name)
        out = np.zeros(candidates.shape, np.float32)
        work = []
        for i, (shard, start) in enumerate(zip(self.shards, self.offsets)):
            inside = (candidates >= start) & (candidates < start + len(shard.documents))
            rows = np.flatnonzero(inside.any(axis=1))
            if len(rows):
                work.append((i, rows, inside[rows], np.where(inside[rows], candidates[rows] - start, 0)))
        if self.shards[0].scores_prepared and work:
            # prepared once for every shard: an array with a row per question (a dense index: the question vectors)
            prepared = self.shards[0].call("prepare_queries", list(queries))
            method, calls = "score_prepared", [(i, (prepared[rows], local)) for i, rows, _, local in work]
        else:
            method, calls = "score", [(i, ([queries[int(r)] for r in rows], local)) for i, rows, _, local in work]
        if self.engine == "ray":
            from odqa_core import _ray_engine

            answers = _ray_engine.gather([self.shards[i].submit(method, *args) for i, args in calls])
        else:
            answers = [self.shards[i].call(method, *args) for i, args in calls]
        for (_, rows, inside, _), scores in zip(work, answers):
            out[rows] = np.where(inside, scores, out[rows])
        return out

    def score_documents(
        self, queries: Sequence[str], documents: Sequence[Document], candidates: np.ndarray
    ) -> np.ndarray:
        return self.shards[0].call("score_documents", queries, documents, candidates)
