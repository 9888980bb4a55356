"""Seeded token corpora shared by the sparse tests, and the random corpora of their property tests."""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from odqa_sparse.retrievers import BM25Retriever, TfidfRetriever

#: Every scoring variant of the sparse retrievers (``tfidf`` is :class:`TfidfRetriever`, the rest BM25).
VARIANTS = ["okapi", "lucene", "bm25+", "bm25l", "tfidf"]

#: The settings of the random-corpus property tests (no deadline: numba compiles on the first example).
RANDOM_CORPUS_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def zipf_tokens(rng: np.random.Generator, n: int, vocab: int, lo: int, hi: int, s: float = 1.1) -> list[list[str]]:
    """``n`` token lists of ``lo``..``hi`` tokens drawn from a Zipf(s) distribution over ``vocab`` terms."""
    p = 1.0 / np.arange(1, vocab + 1) ** s
    p /= p.sum()
    lens = rng.integers(lo, hi + 1, n)
    ids = rng.choice(vocab, size=int(lens.sum()), p=p)
    words = [f"t{i}" for i in ids]
    ends = np.cumsum(lens)
    return [words[e - m : e] for e, m in zip(ends.tolist(), lens.tolist())]


def make_corpus(seed: int, n_docs: int = 300, vocab: int = 400, n_queries: int = 40):
    """A seeded corpus (some empty documents) and queries with repeated, out-of-vocabulary and empty entries."""
    rng = np.random.default_rng(seed)
    docs = zipf_tokens(rng, n_docs, vocab, 0, 30)
    queries = zipf_tokens(rng, n_queries, vocab, 1, 8)
    queries += [
        queries[0] + queries[0][:2],  # repeated tokens
        ["never-seen", "also-unseen"],  # only out-of-vocabulary tokens
        [],  # empty
        queries[1] + ["never-seen"],
        ["t0", "t0", "t0", "t1"],  # frequent terms (negative okapi idf before the floor)
    ]
    return docs, queries


def make_retriever(variant: str, **options: Any) -> BM25Retriever | TfidfRetriever:
    return TfidfRetriever(**options) if variant == "tfidf" else BM25Retriever(variant=variant, **options)


def random_corpus_strategies(max_docs: int) -> dict[str, Any]:
    """Hypothesis strategies for :func:`random_corpus`'s arguments and a variant (``n_queries`` is the test's)."""
    return {
        "seed": st.integers(0, 2**32 - 1),
        "n_docs": st.integers(1, max_docs),
        "vocab": st.integers(1, 60),
        "variant": st.sampled_from(VARIANTS),
        "duplicates": st.booleans(),
    }


def random_corpus(seed: int, n_docs: int, vocab: int, n_queries: int, duplicates: bool):
    """``(rng, documents, queries)``: a random Zipf corpus (its skew drawn too) as token lists, with exact score
    ties between documents if ``duplicates``, and token queries with unknown and repeated terms; ``rng`` goes on
    from there."""
    rng = np.random.default_rng(seed)
    docs = zipf_tokens(rng, n_docs, vocab, 0, 20, s=float(rng.uniform(0.5, 1.5)))
    if duplicates:
        docs = [docs[i % max(1, n_docs // 3)] for i in range(n_docs)]
    queries = zipf_tokens(rng, n_queries, vocab + 3, 0, 10)
    return rng, docs, queries


class KillsItsWorker(BM25Retriever):
    """bm25 whose build worker kills itself (SIGKILL) while indexing a shard whose first document's metadata names
    an existing ``kill_marker`` file: a worker lost mid-build, for the sharded-build tests. Never the process that
    made the documents (``metadata["driver_pid"]``), so that a build in the test's own process cannot kill it."""

    def index_shard(self, documents: Any, statistics: Any) -> None:
        metadata = documents[0].metadata if documents else {}
        marker = metadata.get("kill_marker")
        if marker and os.path.exists(marker) and os.getpid() != metadata.get("driver_pid"):
            os.kill(os.getpid(), signal.SIGKILL)
        super().index_shard(documents, statistics)


def with_kill_marker(documents: list[Any], at: int, marker: Any) -> list[Any]:
    """``documents`` with ``documents[at]`` carrying the :class:`KillsItsWorker` marker (its text unchanged)."""
    import dataclasses

    out = list(documents)
    out[at] = dataclasses.replace(
        out[at], metadata={**out[at].metadata, "kill_marker": str(marker), "driver_pid": os.getpid()}
    )
    return out


def assert_same_as_single(single, sharded, queries, ks=(1, 5, 1000)) -> None:
    """Same top k (ids and float32 bits) at every k, and the same scores of every document and of candidates."""
    for k in ks:
        a, b = single.search(queries, k), sharded.search(queries, k)
        assert np.array_equal(a.indices, b.indices), k
        assert np.array_equal(a.scores.view(np.int32), b.scores.view(np.int32)), k
    assert np.array_equal(single.score_all(queries).view(np.int32), sharded.score_all(queries).view(np.int32))
    n = len(single.documents)
    candidates = (np.arange(len(queries) * 7).reshape(len(queries), 7) * 7919) % n
    assert np.array_equal(
        single.score(queries, candidates).view(np.int32), sharded.score(queries, candidates).view(np.int32)
    )


def kill_a_worker_then_rebuild(documents: list[Any], questions: list[str], tmp_path: Any, named: str, **build: Any):
    """The killed-worker scenario of the sharded-build tests: over a previous 3-shard tfidf index, a 2-shard
    :class:`KillsItsWorker` build whose shard-1 worker dies fails with one line naming shard 1 and ``named`` (the
    kind of worker), leaving the previous index in place and no temporary directory; the same build, the marker
    gone, then completes. ``build``: ``build_sharded_index``'s engine options. Returns the rebuilt index's path."""
    import pytest

    from odqa_core import OdqaError, plugins
    from odqa_core.pipeline import load_retriever
    from odqa_core.shards import build_sharded_index

    index, marker = tmp_path / "idx", tmp_path / "kill-shard-1"
    build_sharded_index(plugins.create("retriever", "tfidf", {}), documents, index, 3)  # the previous index
    before = load_retriever(index).search(questions, 10)
    marked = with_kill_marker(documents, (len(documents) + 1) // 2, marker)  # shard 1 of 2 starts there
    marker.touch()
    with pytest.raises(OdqaError) as failure:
        build_sharded_index(KillsItsWorker(), marked, index, 2, **build)
    message = str(failure.value)
    assert "\n" not in message and "shard 1 of 2" in message and named in message, message
    kept = load_retriever(index)  # the previous index, untouched
    assert kept.name == "tfidf" and len(kept.shards) == 3
    assert np.array_equal(kept.search(questions, 10).indices, before.indices)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "kill-shard-1"]  # no temporary directory left
    marker.unlink()
    build_sharded_index(KillsItsWorker(), marked, index, 2, **build)
    return index
