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
by adding the constant are broken as a single index breaks them.

Engines: ``local`` builds the shards in this process, or in a pool of ``workers`` processes, and searches them in
this process; ``ray`` (the optional ``odqa[ray]`` extra) builds them as Ray tasks and searches them with one Ray
actor per shard, which loads its shard once. The shards are written to the index directory by whichever worker
built them, so on a cluster of several machines it must be on storage they share. Nothing needs Ray to read a
sharded index.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odqa_core.errors import IndexFormatError, UsageError
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


# --------------------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------------------


def _shard_statistics(name: str, config: Mapping[str, Any], documents: Sequence[Document]) -> Any:
    """The map step, run wherever the engine runs it (a pool process, a Ray task)."""
    from odqa_core import plugins

    retriever = plugins.create("retriever", name, dict(config))
    return retriever.shard_statistics(documents)  # type: ignore[attr-defined]


def _build_shard(
    name: str,
    config: Mapping[str, Any],
    documents: Sequence[Document],
    statistics: Any,
    path: str,
    info: Mapping[str, Any],
) -> str:
    """Index one shard and write it as an ordinary store at ``path`` (run wherever the engine runs it); returns its
    manifest's sha256."""
    from odqa_core import plugins

    return _write_shard(plugins.create("retriever", name, dict(config)), documents, statistics, path, info)


def _write_shard(
    retriever: Retriever, documents: Sequence[Document], statistics: Any, path: str, info: Mapping[str, Any]
) -> str:
    """:func:`_build_shard` with the shard's retriever given (in this process it may keep what its
    ``shard_statistics`` computed, e.g. the shard's token counts, so that indexing does not analyse it again)."""
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


def _run_local(function: Any, calls: list[tuple[Any, ...]], workers: int) -> list[Any]:
    """``function(*call)`` for every call, in order: here, or in a pool of ``workers`` processes."""
    if workers <= 1 or len(calls) <= 1:
        return [function(*call) for call in calls]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent may hold threads (numba, BLAS) that a forked child would inherit mid-lock.
    with ProcessPoolExecutor(min(workers, len(calls)), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(function, *zip(*calls)))


def build_sharded_index(
    retriever: Retriever,
    documents: Sequence[Document],
    path: str | Path,
    n_shards: int,
    *,
    engine: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
) -> None:
    """Index ``documents`` with ``retriever``'s kind and options as ``n_shards`` contiguous shards at ``path``.

    The corpus-wide statistics are computed first (map per shard, then reduce), every shard is indexed with them
    and written as an ordinary store, and the top manifest is written last; the directory replaces ``path`` only
    when complete. ``engine`` ``local`` runs the shards here (``workers`` > 1: a process pool), ``ray`` as Ray
    tasks (``ray_address``: an existing cluster, else a local ``ray.init()``).
    """
    from odqa_core import plugins
    from odqa_core.outputs import atomic_directory, output_lock, recover_interrupted_write
    from odqa_core.storage import check_store_target

    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"--workers must be an integer >= 1, got {workers!r}")
    if engine != "ray" and ray_address is not None:
        raise UsageError("--ray-address needs --engine ray")
    documents = list(documents)
    ranges = shard_ranges(len(documents), n_shards)
    name, config = retriever.name, retriever.config()
    parts = [documents[a:b] for a, b in ranges]
    build_id = uuid.uuid4().hex
    run = _run_local
    if engine == "ray":
        from odqa_core import _ray_engine

        run = _ray_engine.task_runner(ray_address)
    in_process = engine == "local" and workers <= 1
    with output_lock(path):
        recover_interrupted_write(path)
        check_store_target(path)
        with atomic_directory(path) as tmp:
            statistics = None
            summary: dict[str, Any] = {}
            # In this process each shard keeps one retriever from its statistics to its store (the map's analysis
            # is reused); elsewhere a task gets the names and options and makes its own.
            kept = [plugins.create("retriever", name, dict(config)) for _ in parts] if in_process else []
            if hasattr(retriever, "shard_statistics"):
                if in_process:
                    partial = [r.shard_statistics(part) for r, part in zip(kept, parts)]  # type: ignore[attr-defined]
                else:
                    partial = run(_shard_statistics, [(name, config, part) for part in parts], workers)
                statistics = retriever.merge_shard_statistics(partial)  # type: ignore[attr-defined]
                summary = retriever.statistics_summary(statistics)  # type: ignore[attr-defined]
            infos = [
                {"build_id": build_id, "index": i, "of": n_shards, "start": a, "stop": b}
                for i, (a, b) in enumerate(ranges)
            ]
            paths = [str(tmp / shard_name(i)) for i in range(n_shards)]
            if in_process:
                digests = []
                for i, part in enumerate(parts):
                    digests.append(_write_shard(kept[i], part, statistics, paths[i], infos[i]))
                    kept[i] = None  # type: ignore[call-overload] # its index is on disk now: free it
            else:
                calls = [(name, config, part, statistics, paths[i], infos[i]) for i, part in enumerate(parts)]
                digests = run(_build_shard, calls, workers)
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

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.retriever, method)(*args)


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
    local engine the shards are searched in this process; with Ray (``load(..., {"engine": "ray"})``, or
    ``-o engine=ray [-o ray_address=ADDR]`` on the command line) one actor per shard loads it once and the shards
    are searched in parallel.
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
            shards = [_LocalShard(shard_class.load(shard_dir, options or None)) for shard_dir in dirs]
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
            answers = self._fan_out("search_prepared", [(prepared, n) for n in ks])
            parts = [a[0] for a in answers]
            constants = answers[0][1]
        else:
            parts = self._fan_out("search", [(queries, n) for n in ks])
        indices, scores = merge_top_k(parts, self.offsets, k)
        if constants is not None and np.any(constants != 0):
            add_constants(indices, scores, constants)
        return RankedResults(indices, scores, self._documents)

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        import numpy as np

        queries = list(queries)
        return np.concatenate(self._fan_out("score_all", [(queries,)] * len(self.shards)), axis=1)

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
        if self.engine == "ray":
            from odqa_core import _ray_engine

            answers = _ray_engine.gather(
                [self.shards[i].submit("score", [queries[int(r)] for r in rows], local) for i, rows, _, local in work]
            )
        else:
            answers = [
                self.shards[i].retriever.score([queries[int(r)] for r in rows], local) for i, rows, _, local in work
            ]
        for (_, rows, inside, _), scores in zip(work, answers):
            out[rows] = np.where(inside, scores, out[rows])
        return out

    def score_documents(
        self, queries: Sequence[str], documents: Sequence[Document], candidates: np.ndarray
    ) -> np.ndarray:
        return self.shards[0].call("score_documents", queries, documents, candidates)
