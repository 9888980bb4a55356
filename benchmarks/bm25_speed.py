"""BM25 speed and memory: odqa's bm25 (okapi) against rank-bm25 and bm25s, on the same tokens, in one run.

Question answered: "how much faster is odqa's BM25 than what I use now (rank-bm25, bm25s), and how much memory
does it need?" Targets: odqa >= 2x the queries/s of bm25s (numba backend) and >= 1,000x rank-bm25, single-threaded;
1M passages indexed (tokenization included) in < 2 minutes with < 4 GB peak RSS.

Protocol
- Every system gets the SAME token lists (corpus and queries), built once per corpus the same way: KorQuAD
  passages (30-word windows, ``\\w+`` lowercased tokens, the odqa ``regex`` analyzer's defaults) and its 5,774
  questions; and a seeded synthetic Zipf corpus (``synthetic.py``) with its queries.
- Timings (index time, queries/s, and so the ratios) come from one subprocess holding every system, with the
  repetitions interleaved (A B C A B C ...; median of ``--reps``), so that load changes on a shared machine hit
  all systems alike.
- Memory: each system also runs alone in its own subprocess (back to back, in this one command) so that its peak
  RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the token lists are built before the system is imported
  and their RSS is reported as the baseline. That run's queries/s is shown too ("own process"), as a check.
- Single-threaded: NUMBA_NUM_THREADS=OMP/MKL/OPENBLAS_NUM_THREADS=1, odqa ``threads=1``, bm25s ``n_threads=1``.
- Warm-up excluded: numba-based systems (odqa, bm25s-numba) index and search once before timing (JIT compile).
  A query pass shorter than 0.5 s is repeated within a repetition. k = 10.
- rank-bm25 is slow (a Python loop over every document per query), so it is timed on ``--rank-queries`` queries;
  queries/s is what is compared. The top-10 of odqa (and bm25s) on those queries is checked against rank-bm25's
  full score vectors: "identical up to exact ties" means the scores (under rank-bm25) of the returned ten equal
  rank-bm25's ten best scores.
- Scoring parameters: k1 = 1.5, b = 0.75 everywhere. odqa ``variant="okapi"``; rank-bm25 ``BM25Okapi``
  (idf = log((N-df+0.5)/(df+0.5)), negative idf replaced by 0.25 x mean idf); bm25s ``method="robertson"``, the
  same idf and tf formula except that negative idf (df > N/2) is clamped to 0 and the tf part lacks the constant
  (k1+1) factor (rank-preserving). So bm25s can disagree with rank-bm25 on queries holding a term in more than
  half the passages. The row ``odqa-eps0`` is odqa okapi with ``epsilon=0`` (negative idf floored at 0), i.e.
  bm25s robertson's scoring exactly; its top-10 is checked against bm25s's full score vectors. The row
  ``odqa-exhaustive`` is odqa okapi searched with ``search_exhaustive`` (every matching document scored, no
  dynamic pruning): the cost or benefit of pruning.
- ``--scale N`` (default 1,000,000; 0 skips): odqa's full text path (texts -> regex analyzer -> index) and the
  equivalent bm25s path (``bm25s.tokenize`` -> index, numba backend), index time and peak RSS, plus queries/s.

- The peers part (``--peers``; ``--corpora none --scale 0`` runs it alone): odqa okapi (as above), odqa
  ``lucene`` with tantivy's constants (k1 = 1.2, b = 0.75), bm25s-numba (robertson, as above) and tantivy (see
  :class:`Tantivy`: whitespace tokenizer over the space-joined tokens, one writer thread, on disk, ``count=False``
  so that block-max WAND prunes; its index time includes its own tokenization of the joined strings and the
  Python loop that joins them). Query sets: ``zipf`` (the synthetic queries above: mostly very frequent terms),
  ``natural`` (``synthetic.generate_natural_queries``: 3-8 distinct terms of a random passage drawn with
  probability proportional to idf², mostly rare terms) and, on KorQuAD, its questions. Per query set, in one
  process: batched queries/s (interleaved repetitions; tantivy has no batch API, so a batch is a loop of
  searches), then one query per call for every query, each query sent to every system in turn with the order
  rotating (p50 / p99 latency; queries/s = queries / summed latencies), the median document frequency of the
  query terms, tantivy's top-10 overlap with odqa lucene's (tantivy quantizes document lengths to one byte, so a
  few near-ties differ), and odqa's pruned search against its exhaustive search (rows and scores). The token
  lists are exempted from garbage collection (``gc.freeze``) before timing. Each system also indexes alone in its
  own process: index time, RSS held after indexing and searching and peak RSS, both above the RSS of the token
  lists, and tantivy's index size on disk (its files are memory-mapped: the pages read count in its RSS).
  Targets: odqa okapi >= 5x bm25s-numba batched at 1M, >= 3x one query per call; odqa >= tantivy on every set.

Results are printed as tables and written to ``--out`` (default /tmp/odqa-bench) as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
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
    header_lines,
    markdown_header,
    markdown_table,
    median,
    peak_rss_mb,
    require_korquad,
    run_header,
    single_thread_env,
    write_json,
    write_text,
)

SYSTEMS = ("odqa", "odqa-eps0", "odqa-exhaustive", "bm25s-numba", "bm25s-numpy", "rank-bm25")
K1, B = 1.5, 0.75
TARGET_VS_BM25S = 2.0
TARGET_VS_RANK = 1000.0
TARGET_SCALE_SECONDS = 120.0
TARGET_SCALE_MB = 4096.0
#: The peers part (``--peers``): odqa okapi and lucene, bm25s-numba and tantivy on several query sets.
PEERS = ("odqa", "odqa-lucene", "bm25s-numba", "tantivy")
TANTIVY_K1 = 1.2  # tantivy's BM25 constants (src/query/bm25.rs): k1 = 1.2, b = 0.75 (= B)
TARGET_SINGLE_VS_BM25S = 3.0
TARGET_BATCH_VS_BM25S_1M = 5.0

# --------------------------------------------------------------------------------------------------- corpora


def load_tokens(spec: dict[str, Any]) -> tuple[list[list[str]], list[list[str]], dict[str, Any]]:
    """(corpus token lists, query token lists, description) for a corpus spec."""
    if spec["corpus"] == "korquad":
        from odqa_core.data import load_corpus, load_questions

        passages = load_corpus(spec["path"], split_words=30)
        questions = load_questions(spec["path"])
        findall = re.compile(r"\w+").findall
        corpus = [findall(p.text.lower()) for p in passages]
        queries = [findall(q.text.lower()) for q in questions]
        desc = {"name": "KorQuAD 1.0 dev, 30-word passages", "tokens": "regex \\w+ lowercased"}
    else:
        import synthetic

        c = synthetic.generate(spec["passages"], seed=spec.get("seed", 0))
        q = synthetic.generate_queries(c, spec["queries"], seed=spec.get("seed", 0) + 1)
        corpus, queries = c.token_lists(), q.token_lists()
        desc = {"name": f"synthetic {spec['passages']:,}", "tokens": "Zipf(1.1) over 200k terms, 30-80 per passage"}
    if spec.get("max_queries"):
        queries = queries[: spec["max_queries"]]
    desc.update(passages=len(corpus), queries=len(queries), corpus_tokens=sum(map(len, corpus)))
    return corpus, queries, desc


# --------------------------------------------------------------------------------------------------- systems


def odqa_retriever(threads: int = 1, epsilon: float = 0.25, variant: str = "okapi", k1: float = K1) -> Any:
    from odqa_core import plugins

    return plugins.create(
        "retriever",
        "bm25",
        {"variant": variant, "k1": k1, "b": B, "epsilon": epsilon, "analyzer": "regex", "threads": threads},
    )


class System:
    """index(corpus tokens) then search(query tokens, k) -> (Q, k) int array of passage rows."""

    warm_up = True

    def index(self, corpus: list[list[str]]) -> None:
        raise NotImplementedError

    def search(self, queries: list[list[str]], k: int) -> Any:
        raise NotImplementedError

    def drop(self) -> None:
        self.state = None


class Odqa(System):
    def __init__(self, epsilon: float = 0.25, exhaustive: bool = False, variant: str = "okapi", k1: float = K1):
        self.epsilon = epsilon
        self.exhaustive = exhaustive
        self.variant = variant
        self.k1 = k1

    def index(self, corpus):
        self.state = odqa_retriever(epsilon=self.epsilon, variant=self.variant, k1=self.k1)
        self.state.index_tokens(corpus)

    def search(self, queries, k):
        if self.exhaustive:
            return self.state.search_exhaustive(queries, k).indices
        return self.state.search_tokens(queries, k).indices

    def search_one(self, query, k):
        return self.state.search_tokens([query], k)

    def hits(self, queries, k):
        """(rows, scores) of the top k; rows scoring 0 (matching no query term) are dropped (-1)."""
        r = self.state.search_tokens(queries, k)
        rows = r.indices.copy()
        rows[r.scores <= 0] = -1
        return rows, r.scores


class Bm25s(System):
    def __init__(self, backend: str):
        self.backend = backend
        self.warm_up = backend == "numba"

    def index(self, corpus):
        import bm25s

        self.state = bm25s.BM25(k1=K1, b=B, method="robertson", backend=self.backend)
        self.state.index(corpus, show_progress=False)

    def search(self, queries, k):
        # bm25s rejects an empty token list; a token it does not know scores nothing, as in the other systems.
        queries = [q or ["\x00"] for q in queries]
        docs, _ = self.state.retrieve(queries, k=k, n_threads=1, show_progress=False)
        return docs

    def scores(self, query):
        import numpy as np

        return np.asarray(self.state.get_scores(query or ["\x00"]))

    def search_one(self, query, k):
        return self.state.retrieve([query or ["\x00"]], k=k, n_threads=1, show_progress=False)


#: tantivy's indexing memory budget (one writer thread): large enough for 1M passages to stay in few segments.
TANTIVY_HEAP = 1_000_000_000


class Tantivy(System):
    """tantivy (Rust; block-max WAND) over the same tokens: one text field, ``whitespace`` tokenizer (no lowercasing
    or stemming: the tokens are indexed as they are) over the space-joined tokens, term frequencies without
    positions (``index_option="freq"``), plus a fast integer field holding the row (only read to check agreement).

    Indexed on disk (a scratch directory under ``--out``, deleted afterwards) by one writer thread; the Python loop
    that joins each passage's tokens and hands it over runs beside it. A query is the disjunction (``Should``) of
    one ``TermQuery`` per query token, so a repeated token counts once per occurrence, like the query-term counts
    of the other systems. Searched with ``count=False`` so that block-max WAND pruning is on. tantivy's BM25 is
    Lucene's: k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)), document lengths quantized to one
    byte (``fieldnorm``). There is no batch API: a batch is a Python loop of searches.
    """

    warm_up = False

    def __init__(self, scratch: str | None = None):
        self.scratch = scratch
        self.directory: str | None = None
        self.state = None

    def index(self, corpus):
        import tempfile

        import tantivy

        self.drop()
        self.directory = tempfile.mkdtemp(prefix="tantivy-", dir=self.scratch)
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
        builder.add_integer_field("row", fast=True)
        self.schema = builder.build()
        index = tantivy.Index(self.schema, path=self.directory)
        writer = index.writer(heap_size=TANTIVY_HEAP, num_threads=1)
        document = tantivy.Document
        for row, tokens in enumerate(corpus):
            writer.add_document(document(body=" ".join(tokens), row=row))
        writer.commit()
        writer.wait_merging_threads()
        del writer
        index.reload()
        self.state = index
        self.searcher = index.searcher()

    def query(self, tokens):
        import tantivy

        term = tantivy.Query.term_query
        should = tantivy.Occur.Should
        return tantivy.Query.boolean_query(
            [(should, term(self.schema, "body", t, index_option="freq")) for t in tokens]
        )

    def search_one(self, query, k):
        return self.searcher.search(self.query(query), limit=k, count=False).hits

    def search(self, queries, k):
        search, query = self.searcher.search, self.query
        return [search(query(q), limit=k, count=False).hits for q in queries]

    def hits(self, queries, k):
        import numpy as np

        rows = np.full((len(queries), k), -1, np.int64)
        scores = np.zeros((len(queries), k), np.float32)
        for i, hits in enumerate(self.search(queries, k)):
            if hits:
                rows[i, : len(hits)] = self.searcher.fast_field_values("row", [a for _, a in hits])
                scores[i, : len(hits)] = [s for s, _ in hits]
        return rows, scores

    def disk_mb(self) -> float:
        return sum(f.stat().st_size for f in Path(self.directory).iterdir()) / 2**20 if self.directory else 0.0

    def drop(self):
        import shutil

        self.state = self.searcher = None
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


class RankBm25(System):
    warm_up = False

    def index(self, corpus):
        from rank_bm25 import BM25Okapi

        self.state = BM25Okapi(corpus, k1=K1, b=B)

    def scores(self, query):
        import numpy as np

        return np.asarray(self.state.get_scores(query))

    def search(self, queries, k):
        import numpy as np

        out = np.empty((len(queries), k), np.int64)
        for i, q in enumerate(queries):
            s = self.scores(q)
            top = np.argpartition(-s, k - 1)[:k]
            out[i] = top[np.lexsort((top, -s[top]))]
        return out


def make_system(name: str, scratch: str | None = None) -> System:
    return {
        "odqa": Odqa,
        "odqa-eps0": lambda: Odqa(epsilon=0.0),
        "odqa-exhaustive": lambda: Odqa(exhaustive=True),
        "odqa-lucene": lambda: Odqa(variant="lucene", k1=TANTIVY_K1),
        "bm25s-numba": lambda: Bm25s("numba"),
        "bm25s-numpy": lambda: Bm25s("numpy"),
        "rank-bm25": RankBm25,
        "tantivy": lambda: Tantivy(scratch),
    }[name]()


# --------------------------------------------------------------------------------------------------- workers


def worker_tokens(job: dict[str, Any]) -> dict[str, Any]:
    """One system on one corpus: index and query timings, peak RSS, top-k rows of the agreement queries."""
    import numpy as np

    t0 = time.perf_counter()
    corpus, queries, desc = load_tokens(job["spec"])
    gc.collect()
    result: dict[str, Any] = {"system": job["system"], "corpus": desc, "load_s": time.perf_counter() - t0}
    result["baseline_rss_mb"] = current_rss_mb()
    result["baseline_peak_mb"] = peak_rss_mb()
    system = make_system(job["system"])
    k, reps = job["k"], job["reps"]
    timed_queries = queries[: job["query_limit"]] if job.get("query_limit") else queries
    agree_queries = queries[: job["agree_queries"]]

    if system.warm_up:
        system.index(corpus)
        system.search(queries[:50], k)
        system.search(timed_queries, k)
        system.drop()
        gc.collect()

    index_times = []
    for _ in range(reps):
        system.drop()
        gc.collect()
        t = time.perf_counter()
        system.index(corpus)
        index_times.append(time.perf_counter() - t)
    result["index_peak_rss_mb"] = peak_rss_mb()

    # A pass over the queries that takes under 0.5 s is repeated within each repetition (timer resolution, noise).
    t = time.perf_counter()
    system.search(timed_queries, k)
    first = time.perf_counter() - t
    inner = max(1, int(0.5 / max(first, 1e-6)) + 1) if first < 0.5 else 1
    query_times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            system.search(timed_queries, k)
        query_times.append((time.perf_counter() - t) / inner)
    result.update(
        index_s=median(index_times),
        index_runs_s=index_times,
        timed_queries=len(timed_queries),
        query_passes_per_rep=inner,
        query_s=median(query_times),
        query_runs_s=query_times,
        qps=len(timed_queries) / median(query_times),
        peak_rss_mb=peak_rss_mb(),
    )
    top = np.asarray(system.search(agree_queries, k), dtype=np.int64)
    np.save(job["top_file"], top)
    if isinstance(system, RankBm25) or job["system"] == "bm25s-numba":
        np.save(job["scores_file"], np.stack([system.scores(q) for q in agree_queries]).astype(np.float64))
    return result


def worker_interleaved(job: dict[str, Any]) -> dict[str, Any]:
    """All systems in one process, repetitions interleaved (A B C A B C ...): the timings the ratios come from.

    A load change on the shared machine then hits every system alike instead of whichever ran at that moment.
    """
    corpus, queries, desc = load_tokens(job["spec"])
    k, reps = job["k"], job["reps"]
    systems = {name: make_system(name) for name in job["systems"]}
    timed = {n: queries[: job["rank_queries"]] if n == "rank-bm25" else queries for n in systems}
    for name, system in systems.items():
        if system.warm_up:
            system.index(corpus)
            system.search(timed[name], k)
    index_times: dict[str, list[float]] = {n: [] for n in systems}
    for _ in range(reps):
        for name, system in systems.items():
            system.drop()
            gc.collect()
            t = time.perf_counter()
            system.index(corpus)
            index_times[name].append(time.perf_counter() - t)
    inner = {}
    for name, system in systems.items():
        t = time.perf_counter()
        system.search(timed[name], k)
        first = time.perf_counter() - t
        inner[name] = max(1, int(0.5 / max(first, 1e-6)) + 1) if first < 0.5 else 1
    query_times: dict[str, list[float]] = {n: [] for n in systems}
    for _ in range(reps):
        for name, system in systems.items():
            t = time.perf_counter()
            for _ in range(inner[name]):
                system.search(timed[name], k)
            query_times[name].append((time.perf_counter() - t) / inner[name])
    return {
        "corpus": desc,
        "systems": {
            n: {
                "index_s": median(index_times[n]),
                "index_runs_s": index_times[n],
                "timed_queries": len(timed[n]),
                "query_passes_per_rep": inner[n],
                "query_runs_s": query_times[n],
                "qps": len(timed[n]) / median(query_times[n]),
            }
            for n in systems
        },
    }


def worker_scale(job: dict[str, Any]) -> dict[str, Any]:
    """The text path at scale: texts -> tokens -> index (timed together), then queries/s; peak RSS."""
    import numpy as np
    import synthetic

    t0 = time.perf_counter()
    c = synthetic.generate(job["passages"], seed=0)
    q = synthetic.generate_queries(c, job["queries"], seed=1)
    texts, query_texts = c.texts(), q.texts()
    del c, q
    system = job["system"]
    if system == "odqa":
        from odqa_core import Document

        documents = [Document(str(i), t) for i, t in enumerate(texts)]
        del texts
    gc.collect()
    result: dict[str, Any] = {"system": system, "passages": job["passages"], "load_s": time.perf_counter() - t0}
    result["baseline_rss_mb"] = current_rss_mb()
    result["baseline_peak_mb"] = peak_rss_mb()

    # Warm-up (JIT) on a small slice, then the timed full build(s).
    if system == "odqa":

        def build(docs):
            r = odqa_retriever()
            r.index(docs)
            return r

        def search(r, qs):
            return r.search(qs, job["k"]).indices

        small = documents[:2000]
        full = documents
    else:
        import bm25s

        def build(txts):
            tokens = bm25s.tokenize(txts, stopwords=None, lower=True, show_progress=False)
            r = bm25s.BM25(k1=K1, b=B, method="robertson", backend="numba")
            r.index(tokens, show_progress=False)
            return r

        def search(r, qs):
            tokens = bm25s.tokenize(qs, stopwords=None, lower=True, show_progress=False)
            return r.retrieve(tokens, k=job["k"], n_threads=1, show_progress=False)[0]

        small = texts[:2000]
        full = texts
    search(build(small), query_texts[:20])
    gc.collect()
    result["warm_peak_rss_mb"] = peak_rss_mb()
    times = []
    index = None
    for _ in range(job["reps"]):
        index = None
        gc.collect()
        t = time.perf_counter()
        index = build(full)
        times.append(time.perf_counter() - t)
    result["index_peak_rss_mb"] = peak_rss_mb()
    search(index, query_texts[:20])
    qtimes = []
    for _ in range(job["reps"]):
        t = time.perf_counter()
        top = search(index, query_texts)
        qtimes.append(time.perf_counter() - t)
    result.update(
        index_s=median(times),
        index_runs_s=times,
        query_s=median(qtimes),
        qps=len(query_texts) / median(qtimes),
        queries=len(query_texts),
        peak_rss_mb=peak_rss_mb(),
        top_shape=list(np.asarray(top).shape),
    )
    return result


# --------------------------------------------------------------------------------------------------- peers part


def load_peer_tokens(spec: dict[str, Any]) -> tuple[list[list[str]], dict[str, list[list[str]]], dict[str, Any]]:
    """(corpus token lists, {query set: query token lists}, description) for the peers part."""
    if spec["corpus"] == "korquad":
        corpus, queries, desc = load_tokens(spec)
        return corpus, {"korquad-questions": queries}, desc
    import synthetic

    c = synthetic.generate(spec["passages"], seed=0)
    sets = {}
    for name in spec["query_sets"]:
        if name == "zipf":
            sets[name] = synthetic.generate_queries(c, spec["queries"], seed=1).token_lists()
        elif name == "natural":
            sets[name] = synthetic.generate_natural_queries(c, spec["queries"], seed=2).token_lists()
        else:
            raise ValueError(f"unknown query set {name!r}")
    corpus = c.token_lists()
    desc = {
        "name": f"synthetic {spec['passages']:,}",
        "tokens": "Zipf(1.1) over 200k terms, 30-80 per passage",
        "passages": len(corpus),
        "corpus_tokens": c.n_tokens,
    }
    return corpus, sets, desc


def query_term_dfs(retriever: Any, queries: list[list[str]]) -> Any:
    """Document frequency of every distinct known term of every query (pooled over the queries)."""
    import numpy as np

    emb = retriever.sparse_embedding
    ids = emb.term_ids
    terms = [ids[t] for q in queries for t in set(q) if t in ids]
    return emb.doc_freqs[np.asarray(terms, np.int64)]


def worker_peers(job: dict[str, Any]) -> dict[str, Any]:
    """The peers in one process: index time, batched queries/s (repetitions interleaved A B C A B C ...) and the
    latency of one query per call (each query sent to every system in turn, the order rotating), per query set."""
    import numpy as np

    corpus, sets, desc = load_peer_tokens(job["spec"])
    k, reps = job["k"], job["reps"]
    systems = {name: make_system(name, job["scratch"]) for name in job["systems"]}
    names = list(systems)
    for system in systems.values():  # JIT compilation on a slice (numba compiles per type, not per size)
        if system.warm_up:
            system.index(corpus[:5000])
            for queries in sets.values():
                system.search(queries[:50], k)
                system.search_one(queries[0], k)
            system.drop()
    gc.collect()
    index_times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(job["index_reps"]):
        for name in names:
            systems[name].drop()
            gc.collect()
            t = time.perf_counter()
            systems[name].index(corpus)
            index_times[name].append(time.perf_counter() - t)
    result: dict[str, Any] = {
        "corpus": desc,
        "index_s": {n: median(index_times[n]) for n in names},
        "index_runs_s": index_times,
        "sets": {},
    }
    if "tantivy" in systems:
        result["tantivy_segments"] = systems["tantivy"].searcher.num_segments
    # The token lists are millions of Python objects: a full garbage collection during the latency loop would
    # stall whichever system ran then (tens of ms at 1M). A serving process holds none of them: exempt them.
    gc.collect()
    gc.freeze()
    dfs_from = next((systems[n] for n in names if n.startswith("odqa")), None)
    for set_name, queries in sets.items():
        queries = queries[: job["queries"]] if job.get("queries") else queries
        entry: dict[str, Any] = {"queries": len(queries), "systems": {n: {} for n in names}}
        if dfs_from is not None:
            dfs = query_term_dfs(dfs_from.state, queries)
            entry["median_df"] = float(np.median(dfs)) if len(dfs) else float("nan")
            entry["mean_query_terms"] = len(dfs) / max(1, len(queries))
        # Batched: a pass under 0.5 s is repeated within a repetition; the first pass also warms caches.
        inner = {}
        for name in names:
            t = time.perf_counter()
            systems[name].search(queries, k)
            first = time.perf_counter() - t
            inner[name] = max(1, int(0.5 / max(first, 1e-6)) + 1) if first < 0.5 else 1
        runs: dict[str, list[float]] = {n: [] for n in names}
        for _ in range(reps):
            for name in names:
                t = time.perf_counter()
                for _ in range(inner[name]):
                    systems[name].search(queries, k)
                runs[name].append((time.perf_counter() - t) / inner[name])
        # One query per call, every system in turn (rotating which goes first).
        latency = {n: np.empty(len(queries)) for n in names}
        perf = time.perf_counter
        for j, query in enumerate(queries):
            for i in range(len(names)):
                name = names[(i + j) % len(names)]
                search_one = systems[name].search_one
                t = perf()
                search_one(query, k)
                latency[name][j] = perf() - t
        for name in names:
            lat = latency[name]
            entry["systems"][name] = {
                "batch_qps": len(queries) / median(runs[name]),
                "batch_runs_s": runs[name],
                "batch_passes_per_rep": inner[name],
                "single_qps": len(queries) / float(lat.sum()),
                "p50_us": float(np.percentile(lat, 50) * 1e6),
                "p99_us": float(np.percentile(lat, 99) * 1e6),
                "mean_us": float(lat.mean() * 1e6),
            }
        # Agreement: tantivy's top-k against odqa lucene's (same formula; tantivy quantizes document lengths), and
        # odqa's pruned search against its exhaustive one (identical rows and scores expected).
        check = queries[: job["agree_queries"]]
        if "tantivy" in systems and "odqa-lucene" in systems:
            entry["tantivy_vs_odqa_lucene"] = overlap(
                systems["tantivy"].hits(check, k)[0], systems["odqa-lucene"].hits(check, k)[0]
            )
        for name in names:
            if isinstance(systems[name], Odqa):
                pruned = systems[name].state.search_tokens(check, k)
                full = systems[name].state.search_exhaustive(check, k)
                entry["systems"][name]["pruned_equals_exhaustive"] = int(
                    sum(
                        np.array_equal(a, b) and np.array_equal(c, d)
                        for a, b, c, d in zip(pruned.indices, full.indices, pruned.scores, full.scores)
                    )
                )
                entry["systems"][name]["checked_queries"] = len(check)
        result["sets"][set_name] = entry
    for system in systems.values():
        system.drop()
    return result


def overlap(rows_a: Any, rows_b: Any) -> dict[str, Any]:
    """Mean top-k overlap |A ∩ B| / max(|A|, |B|) of two (Q, k) row arrays (-1 = no hit), and identical sets."""
    total, same = 0.0, 0
    for a, b in zip(rows_a, rows_b):
        sa, sb = set(a[a >= 0].tolist()), set(b[b >= 0].tolist())
        size = max(len(sa), len(sb))
        total += len(sa & sb) / size if size else 1.0
        same += sa == sb
    n = len(rows_a)
    return {"queries": n, "mean_overlap": total / max(n, 1), "identical_sets": same}


def worker_peer_memory(job: dict[str, Any]) -> dict[str, Any]:
    """One peer alone in its process: index time, RSS held after indexing and peak RSS (over the RSS of the token
    lists), and for tantivy the size of its index on disk."""
    corpus, sets, desc = load_peer_tokens(job["spec"])
    gc.collect()
    result: dict[str, Any] = {"system": job["system"], "corpus": desc}
    result["baseline_rss_mb"] = current_rss_mb()
    result["baseline_peak_mb"] = peak_rss_mb()
    system = make_system(job["system"], job["scratch"])
    if system.warm_up:
        system.index(corpus[:2000])
        system.search(next(iter(sets.values()))[:20], job["k"])
        system.drop()
        gc.collect()
    result["warm_rss_mb"] = current_rss_mb()
    t = time.perf_counter()
    system.index(corpus)
    result["index_s"] = time.perf_counter() - t
    gc.collect()
    result["after_index_rss_mb"] = current_rss_mb()
    for queries in sets.values():
        system.search(queries, job["k"])
        system.search_one(queries[0], job["k"])
    gc.collect()
    result["after_search_rss_mb"] = current_rss_mb()
    result["peak_rss_mb"] = peak_rss_mb()
    if isinstance(system, Tantivy):
        result["disk_mb"] = system.disk_mb()
        result["segments"] = system.searcher.num_segments
    if isinstance(system, Odqa):
        result["scoring_arrays_mb"] = system.state._impacts.nbytes / 2**20
    system.drop()
    return result


def report_peers(name: str, inter: dict[str, Any], memory: dict[str, dict[str, Any]], k: int) -> tuple[str, list]:
    """Markdown tables of the peers part for one corpus, and the target lines."""
    desc = inter["corpus"]
    n_docs = desc["passages"]
    title = f"{name}: {n_docs:,} passages, {desc['corpus_tokens']:,} tokens"
    header = [
        "system",
        "index s (interleaved)",
        "index s (own process)",
        "RSS held after indexing and searching, over the tokens and warm-up MB",
        "peak RSS over the tokens MB",
        "index arrays / files MB",
    ]
    rows = []
    for system, index_s in inter["index_s"].items():
        m = memory.get(system, {})
        size = m.get("disk_mb", m.get("scoring_arrays_mb", float("nan")))
        rows.append(
            [
                system,
                fmt(index_s, 2),
                fmt(m.get("index_s", float("nan")), 2),
                fmt(m.get("after_search_rss_mb", float("nan")) - m.get("warm_rss_mb", float("nan"))),
                fmt(m.get("peak_rss_mb", float("nan")) - m.get("baseline_rss_mb", float("nan"))),
                fmt(size),
            ]
        )
    parts = [title, markdown_table(header, rows)]
    header = [
        "query set",
        "median df of query terms (% of passages)",
        "system",
        "batched q/s",
        "one query per call q/s",
        "p50 µs",
        "p99 µs",
        "odqa okapi / this (batched)",
        "odqa okapi / this (one per call)",
        "odqa lucene / this (one per call)",
    ]
    rows = []
    lines = []
    for set_name, entry in inter["sets"].items():
        res = entry["systems"]
        okapi, lucene = res.get("odqa", {}), res.get("odqa-lucene", {})
        df = entry.get("median_df", float("nan"))
        for system, r in res.items():
            rows.append(
                [
                    set_name,
                    f"{df:,.0f} ({100 * df / n_docs:.3g} %)",
                    system,
                    fmt(r["batch_qps"]),
                    fmt(r["single_qps"]),
                    fmt(r["p50_us"]),
                    fmt(r["p99_us"]),
                    f"{okapi['batch_qps'] / r['batch_qps']:.2f}x" if okapi else "-",
                    f"{okapi['single_qps'] / r['single_qps']:.2f}x" if okapi else "-",
                    f"{lucene['single_qps'] / r['single_qps']:.2f}x" if lucene else "-",
                ]
            )
        bm = res.get("bm25s-numba")
        if okapi and bm:
            ratio_b = okapi["batch_qps"] / bm["batch_qps"]
            ratio_s = okapi["single_qps"] / bm["single_qps"]
            ratio_p = bm["p50_us"] / okapi["p50_us"]
            verdict = "met" if ratio_b >= TARGET_BATCH_VS_BM25S_1M else "not met"
            if n_docs < 1_000_000:
                verdict = "stated for 1M"
            lines.append(
                f"{set_name}: odqa okapi / bm25s-numba = {ratio_b:.2f}x batched (target >= "
                f"{TARGET_BATCH_VS_BM25S_1M:g}x at 1M: {verdict}), "
                f"{ratio_s:.2f}x one query per call, {ratio_p:.2f}x at p50 (target >= {TARGET_SINGLE_VS_BM25S:g}x: "
                f"{'met' if min(ratio_s, ratio_p) >= TARGET_SINGLE_VS_BM25S else 'not met'})"
            )
        tv = res.get("tantivy")
        if tv:
            for label, o in (("odqa okapi", okapi), ("odqa lucene", lucene)):
                if o:
                    rb, rs = o["batch_qps"] / tv["batch_qps"], o["single_qps"] / tv["single_qps"]
                    lines.append(
                        f"{set_name}: {label} / tantivy = {rb:.2f}x batched, {rs:.2f}x one query per call "
                        f"(target >= 1x: {'met' if min(rb, rs) >= 1 else 'not met'})"
                    )
        if "tantivy_vs_odqa_lucene" in entry:
            a = entry["tantivy_vs_odqa_lucene"]
            lines.append(
                f"{set_name}: tantivy top-{k} vs odqa lucene (k1 1.2, b 0.75): mean overlap {a['mean_overlap']:.3f}, "
                f"identical sets {a['identical_sets']}/{a['queries']}"
            )
        for system, r in res.items():
            if "pruned_equals_exhaustive" in r:
                lines.append(
                    f"{set_name}: {system} pruned = exhaustive (rows and scores) on "
                    f"{r['pruned_equals_exhaustive']}/{r['checked_queries']} queries"
                )
    parts.append(markdown_table(header, rows))
    if "tantivy_segments" in inter:
        lines.append(f"tantivy segments after commit and merges: {inter['tantivy_segments']}")
    if "odqa" in memory and "tantivy" in memory:
        o, t = memory["odqa"], memory["tantivy"]
        held_o = o["after_search_rss_mb"] - o["warm_rss_mb"]
        held_t = t["after_search_rss_mb"] - t["warm_rss_mb"]
        lines.append(
            f"memory held odqa / tantivy = {held_o:,.0f} / {held_t:,.0f} MB = {held_o / held_t:.2f}x "
            f"(tantivy index files {t['disk_mb']:,.0f} MB; odqa scoring arrays {o['scoring_arrays_mb']:,.0f} MB)"
        )
    return "\n\n".join(parts), lines


def run_worker(job: dict[str, Any], out: Path, timeout: float) -> dict[str, Any] | None:
    job_file = out / f"job-{job['tag']}.json"
    res_file = out / f"result-{job['tag']}.json"
    job_file.write_text(json.dumps(job))
    res_file.unlink(missing_ok=True)
    env = {**os.environ, **SINGLE_THREAD_ENV}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(job_file)]
    print(f"  [{time.strftime('%H:%M:%S')}] {job['tag']} ...", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        print(f"    timed out after {timeout:.0f} s")
        return None
    if proc.returncode != 0 or not res_file.exists():
        print(f"    failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return None
    result = json.loads(res_file.read_text())
    print(f"    done in {time.perf_counter() - t0:.1f} s", flush=True)
    return result


# --------------------------------------------------------------------------------------------------- report


def agreement(top: Any, ref_scores: Any, k: int) -> dict[str, Any]:
    """How often a top-k list equals rank-bm25's: exactly (same rows, same order) and up to exact ties."""
    import numpy as np

    exact = tie_equal = 0
    for row, scores in zip(top, ref_scores):
        valid = row[row >= 0]
        best = np.sort(scores)[::-1][:k]
        got = np.sort(np.concatenate([scores[valid], np.zeros(k - len(valid))]))[::-1]
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        exact += int(len(valid) == k and np.array_equal(valid, order))
        tie_equal += int(len(set(valid.tolist())) == len(valid) and np.allclose(got, best, rtol=1e-5, atol=1e-6))
    n = len(top)
    return {"queries": n, "exact": exact, "up_to_ties": tie_equal}


def fmt(x: float, digits: int = 1) -> str:
    if x != x:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def report_tokens(
    name: str, results: dict[str, dict[str, Any]], agree: dict[str, dict[str, Any]], agree_bm25s: dict[str, Any]
) -> str:
    desc = next(iter(results.values()))["corpus"]
    header = [
        "system",
        "index s",
        "queries timed",
        "queries/s",
        "odqa q/s / this q/s",
        "q/s in own process",
        "peak RSS MB",
        "RSS over tokens MB",
        "top-10 = rank-bm25 (up to ties)",
        "top-10 = bm25s (up to ties)",
    ]
    rows = []
    odqa_qps = results.get("odqa", {}).get("qps", float("nan"))
    for system in SYSTEMS:
        r = results.get(system)
        if r is None:
            continue
        a = agree.get(system)
        a2 = agree_bm25s.get(system)
        rows.append(
            [
                system,
                fmt(r["index_s"], 2),
                r["timed_queries"],
                fmt(r["qps"]),
                "1" if system == "odqa" else f"{odqa_qps / r['qps']:,.2f}x",
                fmt(r.get("own_process", {}).get("qps", float("nan"))),
                fmt(r["peak_rss_mb"]),
                fmt(r["peak_rss_mb"] - r["baseline_rss_mb"]),
                f"{a['up_to_ties']}/{a['queries']} (exact order {a['exact']})"
                if a
                else "(reference)"
                if system == "rank-bm25"
                else "-",
                f"{a2['up_to_ties']}/{a2['queries']}" if a2 else "(reference)" if system == "bm25s-numba" else "-",
            ]
        )
    title = (
        f"{name}: {desc['passages']:,} passages, {desc['corpus_tokens']:,} tokens, "
        f"{desc['queries']:,} queries ({desc['tokens']})"
    )
    return title + "\n\n" + markdown_table(header, rows)


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name in ("odqa", "odqa-eps0"):
        o = results.get(name)
        if o is None:
            continue
        for peer, target in (("bm25s-numba", TARGET_VS_BM25S), ("rank-bm25", TARGET_VS_RANK)):
            if peer not in results:
                continue
            ratio = o["qps"] / results[peer]["qps"]
            verdict = (
                "met"
                if ratio >= target
                else f"missed: {ratio / target:.3f} of the target, {target / ratio:.1f}x short"
            )
            spread = ""
            if "query_runs_s" in o and "query_runs_s" in results[peer] and "query_passes_per_rep" in o:
                # Repetition i of every system ran back to back: the ratio within each repetition shows the noise.
                per_rep = [
                    (o["timed_queries"] / a) / (results[peer]["timed_queries"] / b)
                    for a, b in zip(o["query_runs_s"], results[peer]["query_runs_s"])
                ]
                spread = f"; per repetition {min(per_rep):,.2f}x to {max(per_rep):,.2f}x"
            lines.append(f"{name} / {peer} queries/s = {ratio:,.2f}x{spread} (target >= {target:,g}x: {verdict})")
    return lines


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="")
    parser.add_argument("--corpora", default="korquad,synthetic", help="comma list of korquad, synthetic, none")
    parser.add_argument("--passages", type=int, default=100_000, help="synthetic corpus size")
    parser.add_argument("--queries", type=int, default=1_000, help="synthetic queries")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (timings, ratios)")
    parser.add_argument(
        "--isolated-reps", type=int, default=1, help="repetitions in each system's own process (RSS, top-10; >= 1)"
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rank-queries", type=int, default=20, help="queries timed for rank-bm25 (synthetic)")
    parser.add_argument("--rank-queries-korquad", type=int, default=200, help="queries timed for rank-bm25 (KorQuAD)")
    parser.add_argument("--scale", type=int, default=1_000_000, help="passages of the text-path scale run; 0 skips")
    parser.add_argument("--scale-systems", default="odqa,bm25s")
    parser.add_argument("--scale-reps", type=int, default=1)
    parser.add_argument(
        "--peers", default=",".join(PEERS), help="systems of the peers part (query sets, latency); 'none' skips"
    )
    parser.add_argument("--peer-corpora", default="korquad,synthetic", help="corpora of the peers part")
    parser.add_argument("--peer-sizes", default="100000", help="synthetic sizes of the peers part, comma list")
    parser.add_argument("--query-sets", default="zipf,natural", help="synthetic query sets of the peers part")
    parser.add_argument("--peer-queries", type=int, default=1_000, help="synthetic queries per set (peers part)")
    parser.add_argument("--index-reps", type=int, default=1, help="interleaved index repetitions (peers part)")
    parser.add_argument("--agree-queries", type=int, default=200, help="queries checked for agreement (peers)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per worker subprocess")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Every repetition count feeds a median, so 0 leaves nothing to report; the own-process runs (--isolated-reps)
    # are also where the peak RSS and the top-10 agreement come from. (--scale 0 is what skips a part of the run.)
    for option in ("reps", "isolated_reps", "scale_reps", "index_reps"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")

    if args.worker:
        single_thread_env()
        job = json.loads(Path(args.worker).read_text())
        kinds = {
            "scale": worker_scale,
            "tokens": worker_tokens,
            "interleaved": worker_interleaved,
            "peers": worker_peers,
            "peer-memory": worker_peer_memory,
        }
        result = kinds[job["kind"]](job)
        Path(args.worker.replace("job-", "result-")).write_text(json.dumps(result))
        return

    out = Path(args.out) / "bm25_speed"
    out.mkdir(parents=True, exist_ok=True)
    packages = ("odqa", "odqa-sparse", "bm25s", "rank-bm25", "tantivy", "numba", "numpy", "scipy")
    info = run_header("plugins/odqa-sparse/odqa_sparse", *packages)
    print(header_lines(info), flush=True)
    systems = [s for s in args.systems.split(",") if s]
    summary: dict[str, Any] = {"info": info, "corpora": {}, "scale": {}}
    tables = []

    specs = []
    for name in [c for c in args.corpora.split(",") if c and c != "none"]:
        if name == "korquad":
            path = require_korquad(args.korquad)
            if path is None:
                continue
            specs.append(("korquad", {"corpus": "korquad", "path": str(path)}, args.rank_queries_korquad))
        elif name == "synthetic":
            specs.append(
                (
                    f"synthetic-{args.passages}",
                    {"corpus": "synthetic", "passages": args.passages, "queries": args.queries},
                    args.rank_queries,
                )
            )
        else:
            parser.error(f"unknown corpus {name!r}")

    import numpy as np

    for name, spec, rank_queries in specs:
        print(f"== {name}", flush=True)
        results: dict[str, dict[str, Any]] = {}
        for system in systems:
            tag = f"{name}-{system}"
            job = {
                "kind": "tokens",
                "tag": tag,
                "system": system,
                "spec": spec,
                "k": args.k,
                "reps": args.isolated_reps,
                "query_limit": rank_queries if system == "rank-bm25" else None,
                "agree_queries": rank_queries,
                "top_file": str(out / f"top-{tag}.npy"),
                "scores_file": str(out / f"scores-{tag}.npy"),
            }
            r = run_worker(job, out, args.timeout)
            if r is not None:
                results[system] = r
        job = {
            "kind": "interleaved",
            "tag": f"{name}-interleaved",
            "systems": list(results),
            "spec": spec,
            "k": args.k,
            "reps": args.reps,
            "rank_queries": rank_queries,
        }
        inter = run_worker(job, out, args.timeout)
        if inter is not None:
            for system, timing in inter["systems"].items():
                r = results[system]
                r["own_process"] = {key: r[key] for key in ("index_s", "index_runs_s", "qps", "query_runs_s")}
                r.update(timing)
        agree: dict[str, dict[str, Any]] = {}
        agree_bm25s: dict[str, dict[str, Any]] = {}
        for reference, store in (("rank-bm25", agree), ("bm25s-numba", agree_bm25s)):
            ref = out / f"scores-{name}-{reference}.npy"
            if reference in results and ref.exists():
                ref_scores = np.load(ref)
                for system in results:
                    if system != reference:
                        store[system] = agreement(np.load(out / f"top-{name}-{system}.npy"), ref_scores, args.k)
        table = report_tokens(name, results, agree, agree_bm25s)
        lines = targets(results)
        print("\n" + table + "\n\n" + "\n".join(lines) + "\n", flush=True)
        tables.append(table + "\n\n" + "\n".join(f"- {line}" for line in lines))
        summary["corpora"][name] = {
            "results": results,
            "agreement_rank_bm25": agree,
            "agreement_bm25s": agree_bm25s,
            "targets": lines,
        }
        write_json(str(out.parent), "bm25_speed.json", summary)

    peers = [s for s in args.peers.split(",") if s and s != "none"]
    peer_specs = []
    for name in [c for c in args.peer_corpora.split(",") if c and c != "none"] if peers else []:
        if name == "korquad":
            path = require_korquad(args.korquad)
            if path is not None:
                peer_specs.append(("korquad", {"corpus": "korquad", "path": str(path)}))
        elif name == "synthetic":
            for size in [int(x) for x in args.peer_sizes.split(",") if x]:
                spec = {
                    "corpus": "synthetic",
                    "passages": size,
                    "queries": args.peer_queries,
                    "query_sets": [q for q in args.query_sets.split(",") if q],
                }
                peer_specs.append((f"synthetic-{size}", spec))
        else:
            parser.error(f"unknown corpus {name!r}")
    summary["peers"] = {}
    for name, spec in peer_specs:
        print(f"== peers: {name}", flush=True)
        memory: dict[str, dict[str, Any]] = {}
        for system in peers:
            job = {
                "kind": "peer-memory",
                "tag": f"peers-{name}-{system}",
                "system": system,
                "spec": spec,
                "k": args.k,
                "scratch": str(out),
            }
            r = run_worker(job, out, args.timeout)
            if r is not None:
                memory[system] = r
        job = {
            "kind": "peers",
            "tag": f"peers-{name}",
            "systems": peers,
            "spec": spec,
            "k": args.k,
            "reps": args.reps,
            "index_reps": args.index_reps,
            "agree_queries": args.agree_queries,
            "scratch": str(out),
        }
        inter = run_worker(job, out, args.timeout)
        if inter is None:
            continue
        table, lines = report_peers(name, inter, memory, args.k)
        print("\n" + table + "\n\n" + "\n".join(lines) + "\n", flush=True)
        tables.append(table + "\n\n" + "\n".join(f"- {line}" for line in lines))
        summary["peers"][name] = {"interleaved": inter, "memory": memory, "lines": lines}
        write_json(str(out.parent), "bm25_speed.json", summary)

    if args.scale:
        print(f"== scale: synthetic {args.scale:,} passages, text path", flush=True)
        scale: dict[str, Any] = {}
        for system in [s for s in args.scale_systems.split(",") if s]:
            job = {
                "kind": "scale",
                "tag": f"scale-{args.scale}-{system}",
                "system": system,
                "passages": args.scale,
                "queries": args.queries,
                "k": args.k,
                "reps": args.scale_reps,
            }
            r = run_worker(job, out, args.timeout)
            if r is not None:
                scale[system] = r
        header = [
            "system",
            "tokenize + index s",
            "queries/s (text queries)",
            "peak RSS MB",
            "RSS of the texts before indexing MB",
            "peak RSS while generating the texts MB",
        ]
        rows = [
            [
                s,
                fmt(r["index_s"], 1),
                fmt(r["qps"]),
                fmt(r["peak_rss_mb"]),
                fmt(r["baseline_rss_mb"]),
                fmt(r["baseline_peak_mb"]),
            ]
            for s, r in scale.items()
        ]
        table = f"Scale: synthetic {args.scale:,} passages, full text path\n\n" + markdown_table(header, rows)
        lines = []
        if "odqa" in scale:
            o = scale["odqa"]
            t_ok = o["index_s"] < TARGET_SCALE_SECONDS
            m_ok = o["peak_rss_mb"] < TARGET_SCALE_MB
            t_over = o["index_s"] - TARGET_SCALE_SECONDS
            m_over = o["peak_rss_mb"] - TARGET_SCALE_MB
            lines.append(
                f"odqa index time {o['index_s']:.1f} s (target < {TARGET_SCALE_SECONDS:.0f} s: "
                + ("met)" if t_ok else f"missed by {t_over:.1f} s)")
            )
            lines.append(
                f"odqa peak RSS {o['peak_rss_mb']:,.0f} MB (target < {TARGET_SCALE_MB:,.0f} MB: "
                + ("met)" if m_ok else f"missed by {m_over:,.0f} MB)")
            )
        print("\n" + table + "\n\n" + "\n".join(lines) + "\n", flush=True)
        tables.append(table + "\n\n" + "\n".join(f"- {line}" for line in lines))
        summary["scale"] = {"results": scale, "targets": lines}

    file = write_json(str(out.parent), "bm25_speed.json", summary)
    write_text(out.parent, "bm25_speed.md", markdown_header(info) + "\n\n".join(tables) + "\n")
    print(f"wrote {file} and {out.parent / 'bm25_speed.md'}")


if __name__ == "__main__":
    main()
