"""Loading a BM25 index: resident memory and load time of a saved 1M-passage index, odqa against bm25s.

Question answered: "how much memory does a loaded BM25 index hold, how long does it take to open, and does it
grow with work the index already did?" (issue 17 items 2-3). Targets: the resident memory of odqa's loaded index
<= bm25s's (its in-memory load) on the same corpus; the peak while indexing 1M passages <= 2 GB.

Protocol
- Corpus: the seeded synthetic corpus of ``bm25_speed.py --scale`` (``synthetic.generate(N, seed=0)``, Zipf(1.1)
  over 200k terms, 30-80 tokens a passage, as space-joined texts) and its queries (``generate_queries(seed=1)``).
- Build (one subprocess per system): odqa ``bm25`` okapi (k1 1.5, b 0.75, ``regex`` analyzer) indexes the texts as
  documents (``index()``, the text path); bm25s (``method="robertson"``, numba backend) tokenizes them with
  ``bm25s.tokenize`` and indexes. Reported: index time, peak RSS (``ru_maxrss``) and its baseline (the texts held
  before indexing). Then each saves to ``--scratch``: odqa its current store (format 2: the scoring arrays) and, for
  the comparison with the load path before this change, a format-1 store of the same index (the document-major
  counts only, written as format 1 wrote it); bm25s ``save()`` (its CSC arrays and vocabulary, no corpus).
- Load (a fresh subprocess each, after the imports and the query texts, whose RSS is the baseline): odqa format 2
  (the scoring arrays and the document table memory-mapped; a document is parsed when a result names it), odqa
  format 1 (the counts and the document table read, the impacts, bounds and bitmaps recomputed, as every load did
  before), bm25s ``BM25.load(mmap=False)`` and ``BM25.load(mmap=True)``. odqa's load is split as ``load`` runs it:
  open the store (manifest, sizes, checksums), open (format 2) or read (format 1) the document table, load the
  index (``load_state``), warm up (numba's cache). Each odqa load runs twice in a row with the same checksum cache
  (``ODQA_CACHE_DIR`` in ``--scratch``): the first hashes every file, the second finds them verified; format 1 runs
  with an empty cache each time, so that it hashes at every load as odqa did before.
- After the load and after the query pass (all queries, k = 10, one thread; the text path: analyzer + search) the
  process's ``/proc/self/smaps_rollup`` is read (bm25s's first retrieve of 5 queries, where its numba kernels
  compile, is not timed; odqa's warm-up is part of its load): ``Rss``, ``Anonymous`` (private memory: the heap,
  numpy arrays read into memory) and ``Rss - Anonymous`` (pages of mapped files: the page cache, shared by every
  process that maps the same index, and dropped by the kernel under memory pressure).
- odqa's top-10 of format 1 and format 2 are compared (indices and scores, exactly).
- The page cache is warm (the files were just written); a cold start reads the mapped pages from disk as search
  touches them.

Results are printed as a Markdown table and written to ``--out`` as JSON.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SINGLE_THREAD_ENV,
    benchmark_parser,
    current_rss_mb,
    markdown_header,
    markdown_table,
    peak_rss_mb,
    run_header,
    write_json,
    write_text,
)

K1, B, K = 1.5, 0.75, 10
LOADS = ("odqa-v2", "odqa-v1", "bm25s", "bm25s-mmap")
SMAPS_KEYS = ("Rss", "Anonymous", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty")


def smaps_mb() -> dict[str, float]:
    """The process's memory from ``/proc/self/smaps_rollup`` (MB), plus ``File`` = Rss - Anonymous."""
    values = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in SMAPS_KEYS:
            values[key] = int(rest.split()[0]) / 1024
    values["File"] = values["Rss"] - values["Anonymous"]
    return values


def odqa_retriever() -> Any:
    from odqa_sparse.retrievers import BM25Retriever

    return BM25Retriever(variant="okapi", k1=K1, b=B, analyzer="regex")


def save_version_1(retriever: Any, path: Path) -> None:
    """The same index as format 1 stored it: document-major counts, document lengths and vocabulary."""
    from odqa_core.storage import write_store

    embedding = retriever.sparse_embedding
    with write_store(path, kind="retriever", name="bm25", format_version=1, config=retriever.config()) as writer:
        writer.save_documents(retriever.documents)
        embedding.save(writer)
        writer.params.update(
            {
                "analyzer": {"name": retriever.analyzer, "options": retriever.text_analyzer.config()},
                "n_docs": embedding.n_docs,
                "n_empty_docs": 0,
                "n_terms": embedding.n_terms,
                "scoring": retriever.params(),
            }
        )


# ---------------------------------------------------------------------------------------------------- workers


def worker_build(job: dict[str, Any]) -> dict[str, Any]:
    import synthetic

    scratch = Path(job["scratch"])
    corpus = synthetic.generate(job["passages"], seed=0)
    queries = synthetic.generate_queries(corpus, job["queries"], seed=1)
    texts = corpus.texts()
    if job["system"] == "odqa":
        (scratch / "queries.json").write_text(json.dumps(queries.texts()), encoding="utf-8")
    del corpus, queries
    result: dict[str, Any] = {"system": job["system"], "passages": len(texts)}
    if job["system"] == "odqa":
        from odqa_core import Document

        documents = [Document(str(i), t) for i, t in enumerate(texts)]
        del texts
        odqa_retriever().index(documents[:2000])  # numba compile / cache load, not timed
        gc.collect()
        result["baseline_rss_mb"] = current_rss_mb()
        t = time.perf_counter()
        retriever = odqa_retriever()
        retriever.index(documents)
        result["index_s"] = time.perf_counter() - t
        result["index_peak_rss_mb"] = peak_rss_mb()
        gc.collect()
        result["indexed_rss_mb"] = current_rss_mb()
        impacts = retriever._impacts
        arrays = {name: getattr(impacts, name).nbytes for name in impacts.ARRAYS}
        embedding = retriever.sparse_embedding
        arrays["t_counts"] = embedding.postings()[2].nbytes
        arrays["doc_lengths"] = embedding.doc_lengths.nbytes
        result["arrays_bytes"] = arrays
        result["n_terms"], result["n_postings"] = embedding.n_terms, len(impacts.t_docs)
        result["n_bitmaps"] = int((impacts.b_slot >= 0).sum())
        t = time.perf_counter()
        retriever.save(scratch / "odqa-v2")
        result["save_s"] = time.perf_counter() - t
        del documents
        save_version_1(retriever, scratch / "odqa-v1")
    else:
        import bm25s

        tokenize = bm25s.tokenize
        gc.collect()
        result["baseline_rss_mb"] = current_rss_mb()
        t = time.perf_counter()
        tokens = tokenize(texts, stopwords=None, lower=True, show_progress=False)
        model = bm25s.BM25(k1=K1, b=B, method="robertson", backend="numba")
        model.index(tokens, show_progress=False)
        result["index_s"] = time.perf_counter() - t
        result["index_peak_rss_mb"] = peak_rss_mb()
        del tokens, texts
        gc.collect()
        result["indexed_rss_mb"] = current_rss_mb()
        model.save(str(scratch / "bm25s"), show_progress=False)
    return result


def worker_load(job: dict[str, Any]) -> dict[str, Any]:
    system = job["system"]
    scratch = Path(job["scratch"])
    queries = json.loads((scratch / "queries.json").read_text(encoding="utf-8"))
    result: dict[str, Any] = {"system": system}
    if system.startswith("odqa"):
        import numpy as np
        from odqa_sparse import embedding, kernels, retrievers, weighting  # noqa: F401 - before the baseline

        from odqa_core.storage import open_store

        gc.collect()
        result["baseline"] = smaps_mb()
        t0 = time.perf_counter()
        reader = open_store(scratch / system, kind="retriever", name="bm25")
        t1 = time.perf_counter()
        documents = retrievers.BM25Retriever._stored_documents(reader)  # as load() does: read on demand (format 2)
        t2 = time.perf_counter()
        result["after_documents"] = smaps_mb()
        retriever = retrievers.BM25Retriever.load_state(reader, documents)
        t3 = time.perf_counter()
        retriever.warm_up()
        t4 = time.perf_counter()
        result.update(open_s=t1 - t0, documents_s=t2 - t1, index_s=t3 - t2, warm_s=t4 - t3, load_s=t4 - t0)
        result["after_load"] = smaps_mb()
        vocabulary = retriever.sparse_embedding.term_ids
        result["vocabulary_mb"] = (
            sys.getsizeof(vocabulary) + sum(sys.getsizeof(term) for term in vocabulary)
        ) / 2**20 + sys.getsizeof(retriever.sparse_embedding.vocabulary) / 2**20
        t = time.perf_counter()
        found = retriever.search(queries, K)
        result["query_s"] = time.perf_counter() - t
        result["after_queries"] = smaps_mb()
        np.save(scratch / f"top-{system}.npy", np.stack([found.indices.astype(np.float64), found.scores]))
        result["counts_built"] = retriever.sparse_embedding._counts is not None
        if system == "odqa-v2":  # parts of load_state, timed again on their own after the measurements
            t = time.perf_counter()
            embedding.load_vocabulary(reader, "vocabulary")
            result["vocabulary_s"] = time.perf_counter() - t
            t = time.perf_counter()
            weighting._ids_below(reader, "t_docs", retriever._impacts.t_docs, len(documents))
            result["doc_id_check_s"] = time.perf_counter() - t
    else:
        import bm25s

        gc.collect()
        result["baseline"] = smaps_mb()
        t0 = time.perf_counter()
        model = bm25s.BM25.load(str(scratch / "bm25s"), mmap=system.endswith("mmap"), show_progress=False)
        result["load_s"] = time.perf_counter() - t0
        result["after_load"] = smaps_mb()
        warm = bm25s.tokenize(queries[:5], stopwords=None, lower=True, show_progress=False, return_ids=False)
        model.retrieve(warm, k=K, n_threads=1, show_progress=False)  # numba compiles on the first retrieve
        t = time.perf_counter()
        tokens = bm25s.tokenize(queries, stopwords=None, lower=True, show_progress=False, return_ids=False)
        model.retrieve([q or ["\x00"] for q in tokens], k=K, n_threads=1, show_progress=False)
        result["query_s"] = time.perf_counter() - t
        result["after_queries"] = smaps_mb()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_worker(job: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = Path(job["scratch"]) / f"result-{job['tag']}.json"
    command = [sys.executable, __file__, "--worker", json.dumps(job), "--worker-out", str(out)]
    subprocess.run(command, check=True, env={**os.environ, **SINGLE_THREAD_ENV, **(env or {})})
    return json.loads(out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------- report


def fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def report(builds: dict[str, Any], loads: dict[str, list[dict[str, Any]]], n: int) -> str:
    lines = [f"Build: synthetic {n:,} passages (text path)\n"]
    rows = [
        [s, fmt(r["index_s"], 1), fmt(r["baseline_rss_mb"]), fmt(r["index_peak_rss_mb"]), fmt(r["indexed_rss_mb"])]
        for s, r in builds.items()
    ]
    lines.append(
        markdown_table(["system", "index (s)", "baseline RSS (MB)", "peak RSS (MB)", "RSS after (MB)"], rows)
    )
    header = [
        "load",
        "run",
        "load (s)",
        "RSS after load (MB): total / anon / file",
        "RSS after queries: total / anon / file",
        "peak RSS (MB)",
        "queries/s",
    ]
    rows = []
    for system, runs in loads.items():
        for i, r in enumerate(runs, 1):
            base, after, done = r["baseline"], r["after_load"], r["after_queries"]
            rows.append(
                [
                    system,
                    i,
                    fmt(r["load_s"], 3),
                    " / ".join(fmt(after[k] - base[k]) for k in ("Rss", "Anonymous", "File")),
                    " / ".join(fmt(done[k] - base[k]) for k in ("Rss", "Anonymous", "File")),
                    fmt(r["peak_rss_mb"]),
                    fmt(len_queries(r) / r["query_s"]),
                ]
            )
    title = "Load (fresh process; memory above the baseline of imports + query texts)"
    lines.append(f"\n{title}\n\n{markdown_table(header, rows)}")
    split = [
        [
            s,
            i,
            fmt(r["open_s"], 3),
            fmt(r["documents_s"], 3),
            fmt(r["index_s"], 3),
            fmt(r["warm_s"], 3),
            fmt(r["after_documents"]["Anonymous"] - r["baseline"]["Anonymous"]),
            fmt(r["after_load"]["Anonymous"] - r["after_documents"]["Anonymous"]),
            fmt(r["vocabulary_mb"]),
        ]
        for s, runs in loads.items()
        if s.startswith("odqa")
        for i, r in enumerate(runs, 1)
    ]
    lines.append(
        "\nodqa's load, step by step\n\n"
        + markdown_table(
            [
                "load",
                "run",
                "open + checksums (s)",
                "document table (s)",
                "index (s)",
                "warm-up (s)",
                "document table anon (MB)",
                "index anon (MB)",
                "vocabulary dict + list (MB)",
            ],
            split,
        )
    )
    return "\n".join(lines)


_N_QUERIES = 0


def len_queries(_: dict[str, Any]) -> int:
    return _N_QUERIES


def korquad_retrieve(args: Any) -> None:
    """``odqa retrieve`` on KorQuAD (top 100, regex, okapi) from a format-1 store (impacts recomputed and every file
    hashed at each load, as before this change) and from a format-2 store of the same index (mapped, checksums
    remembered), in fresh processes, alternating, median of ``--reps``; the two run files compared byte for byte."""
    import statistics

    from _common import require_korquad

    korquad = require_korquad(args.korquad)
    if korquad is None:
        return
    scratch = Path(args.scratch) / "korquad"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = {**os.environ, **SINGLE_THREAD_ENV, "ODQA_PROGRESS": "0"}
    odqa = str(Path(sys.executable).with_name("odqa"))
    index = [odqa, "index", "--retriever", "bm25", "--corpus", str(korquad), "--split-words", "30"]
    subprocess.run([*index, "--index-dir", str(scratch / "v2")], check=True, env=env)
    from odqa_sparse.retrievers import BM25Retriever

    save_version_1(BM25Retriever.load(scratch / "v2"), scratch / "v1")
    time.sleep(2.5)  # past the checksum cache's racy window
    times: dict[str, list[float]] = {"v1": [], "v2": []}
    for rep in range(args.reps + 1):  # the first round warms numba's cache and the page cache: not counted
        for version in ("v1", "v2"):
            cache = scratch / ("cache-v2" if version == "v2" else f"cache-v1-{rep}")
            command = [odqa, "retrieve", "--index-dir", str(scratch / version), "--questions", str(korquad)]
            command += ["--top-k", "100", "--output", str(scratch / f"run-{version}.jsonl")]
            t = time.perf_counter()
            subprocess.run(command, check=True, env={**env, "ODQA_CACHE_DIR": str(cache)}, stdout=subprocess.DEVNULL)
            if rep:
                times[version].append(time.perf_counter() - t)
    same = (scratch / "run-v1.jsonl").read_bytes() == (scratch / "run-v2.jsonl").read_bytes()
    medians = {version: statistics.median(runs) for version, runs in times.items()}
    print(
        f"`odqa retrieve` KorQuAD top-100, median of {args.reps} (s): format 1 {medians['v1']:.3f}, "
        f"format 2 {medians['v2']:.3f}; runs {times}; identical run files: {same}"
    )
    shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    global _N_QUERIES
    parser = benchmark_parser(__doc__, out="bm25-memory")
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--scratch", default="/tmp/odqa-bm25-memory", help="where the indexes are saved (deleted)")
    parser.add_argument("--runs", type=int, default=2, help="loads of each system, each in a fresh process")
    parser.add_argument("--worker", default=None, help=argparse_hidden())
    parser.add_argument("--worker-out", default=None, help=argparse_hidden())
    parser.add_argument("--korquad", default=None, help="with --korquad-retrieve: KorQuAD 1.0 dev JSON")
    parser.add_argument("--korquad-retrieve", action="store_true", help="time `odqa retrieve` (format 1 vs 2) only")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.korquad_retrieve:
        korquad_retrieve(args)
        return
    if args.worker:
        job = json.loads(args.worker)
        result = (worker_build if job["kind"] == "build" else worker_load)(job)
        Path(args.worker_out).write_text(json.dumps(result), encoding="utf-8")
        return
    header = run_header("plugins/odqa-sparse/odqa_sparse", "numpy", "numba", "bm25s")
    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    _N_QUERIES = args.queries
    try:
        builds = {}
        for system in ("odqa", "bm25s"):
            print(f"== build {system}", flush=True)
            job = {"kind": "build", "tag": f"build-{system}", "system": system, "scratch": str(scratch)}
            builds[system] = run_worker({**job, "passages": args.passages, "queries": args.queries})
        time.sleep(2.5)  # past the checksum cache's racy window: the first load may remember the files it hashed
        loads: dict[str, list[dict[str, Any]]] = {system: [] for system in LOADS}
        for run in range(args.runs):
            for system in LOADS:  # interleaved: A B C D A B C D
                print(f"== load {system} (run {run + 1})", flush=True)
                cache = scratch / ("cache-v2" if system == "odqa-v2" else f"cache-{system}-{run}")
                job = {"kind": "load", "tag": f"load-{system}-{run}", "system": system, "scratch": str(scratch)}
                loads[system].append(run_worker(job, {"ODQA_CACHE_DIR": str(cache)}))
        import numpy as np

        v1, v2 = np.load(scratch / "top-odqa-v1.npy"), np.load(scratch / "top-odqa-v2.npy")
        identical = bool(np.array_equal(v1, v2))
        sizes = {p.name: p.stat().st_size for p in sorted((scratch / "odqa-v2").iterdir())}
        bm25s_sizes = {p.name: p.stat().st_size for p in sorted((scratch / "bm25s").iterdir())}
    finally:
        shutil.rmtree(scratch / "odqa-v1", ignore_errors=True)
        shutil.rmtree(scratch / "odqa-v2", ignore_errors=True)
        shutil.rmtree(scratch / "bm25s", ignore_errors=True)
    text = report(builds, loads, args.passages)
    for i, r in enumerate(loads["odqa-v2"], 1):
        text += f"\nodqa-v2 run {i}: vocabulary.json read + dict {r['vocabulary_s']:.3f} s, "
        text += f"doc id range check (streamed) {r['doc_id_check_s']:.3f} s"
    text += f"\n\nodqa format 1 and format 2 loads: identical top-{K} (indices and scores): {identical}\n"
    text += f"odqa format 2 files (bytes): {sizes}\nbm25s files (bytes): {bm25s_sizes}\n"
    text += f"odqa arrays after indexing (bytes): {builds['odqa']['arrays_bytes']}\n"
    print(text)
    summary = {"header": header, "builds": builds, "loads": loads, "identical": identical, "files": sizes}
    write_json(args.out, "bm25_memory.json", summary)
    write_text(args.out, "bm25_memory.md", markdown_header(header) + text)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
