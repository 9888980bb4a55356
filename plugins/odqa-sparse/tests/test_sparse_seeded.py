"""Seeded search (``search_prepared(..., floor=)``, the local engine's way through a sharded index): a row holds
exactly the exhaustive ranking's documents scoring above the floor, ties at the floor dropped, and a floor <= 0 or
a query with negative contributions is no floor at all."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odqa_sparse.retrievers import PreparedQueries
from sparse_testdata import RANDOM_CORPUS_SETTINGS, make_retriever, random_corpus, random_corpus_strategies

FLOOR_KINDS = ["score", "just below a score", "just above a score", "zero", "-inf", "negative", "above all"]


def _prepared(retriever, token_lists) -> PreparedQueries:
    ptr, terms, counts = retriever.sparse_embedding.query_arrays(token_lists)
    weights, constants = retriever._query_weights(ptr, terms, counts)
    return PreparedQueries(ptr, terms, weights, constants)


def _exhaustive_ranking(retriever, prepared: PreparedQueries) -> tuple[np.ndarray, np.ndarray]:
    """Every document of every query, best first (ties: index), before the constant: no pruning."""
    n_queries, n_docs = len(prepared.ptr) - 1, len(retriever.documents)
    out_i, out_s = np.zeros((n_queries, n_docs), np.int64), np.zeros((n_queries, n_docs), np.float32)
    no_const = np.zeros(n_queries, np.float32)
    retriever._kernel(retriever._impacts, *prepared[:3], no_const, n_docs, False, out_i, out_s)
    return out_i, out_s


def _floors(data, scores: np.ndarray) -> np.ndarray:
    """One floor per query: a document's exact score (ties with it), the float64 next to one, 0, -inf, ..."""
    floors = np.empty(len(scores), np.float64)
    for q, row in enumerate(scores):
        kind = data.draw(st.sampled_from(FLOOR_KINDS))
        score = np.float64(row[data.draw(st.integers(0, len(row) - 1))])
        floors[q] = {
            "score": score,
            "just below a score": np.nextafter(score, -np.inf),
            "just above a score": np.nextafter(score, np.inf),
            "zero": 0.0,
            "-inf": -np.inf,
            "negative": -1.5,
            "above all": np.float64(row.max()) * 2 + 1,
        }[kind]
    return floors


def _assert_seeded(retriever, token_lists, k: int, floors: np.ndarray) -> None:
    prepared = _prepared(retriever, token_lists)
    all_i, all_s = _exhaustive_ranking(retriever, prepared)
    seeded, constants = retriever.search_prepared(prepared, k, floor=floors)
    plain, _ = retriever.search_prepared(prepared, k)
    np.testing.assert_array_equal(constants, prepared.constants)
    imp = retriever._impacts
    for q, floor in enumerate(floors):
        terms = prepared.terms[prepared.ptr[q] : prepared.ptr[q + 1]]
        weights = prepared.weights[prepared.ptr[q] : prepared.ptr[q + 1]]
        # the kernel prunes (and so takes a floor) only when no contribution is negative
        prunes = bool(np.all(weights * imp.t_min[terms] >= 0) and np.all(weights * imp.t_max[terms] >= 0))
        if prunes and floor > 0:
            above = all_s[q] > floor  # strictly: a document scoring the floor loses the tie to earlier shards'
            want_i, want_s = all_i[q][above][:k], all_s[q][above][:k]
            pad = k - len(want_i)
            want_i = np.concatenate([want_i, np.full(pad, -1, np.int64)])
            want_s = np.concatenate([want_s, np.full(pad, -np.inf, np.float32)])
        else:
            want_i, want_s = all_i[q][:k], all_s[q][:k]
            np.testing.assert_array_equal(seeded.indices[q], plain.indices[q])
        np.testing.assert_array_equal(seeded.indices[q], want_i, err_msg=f"query {q}, floor {floor!r}")
        np.testing.assert_array_equal(seeded.scores[q].view(np.int32), want_s.view(np.int32))


@RANDOM_CORPUS_SETTINGS
@given(**random_corpus_strategies(max_docs=300), k=st.integers(1, 40), threads=st.integers(1, 2), data=st.data())
def test_seeded_search_returns_the_exhaustive_ranking_above_the_floor(
    seed, n_docs, vocab, variant, duplicates, k, threads, data
):
    _, docs, queries = random_corpus(seed, n_docs, vocab, 25, duplicates)
    retriever = make_retriever(variant, threads=threads)
    retriever.index_tokens(docs)
    k = min(k, n_docs)
    _, scores = _exhaustive_ranking(retriever, _prepared(retriever, queries))
    _assert_seeded(retriever, queries, k, _floors(data, scores))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    windows=st.floats(1.0, 2.5),
    vocab=st.integers(2, 200),
    k=st.integers(1, 30),
    variant=st.sampled_from(["okapi", "lucene", "bm25l", "tfidf"]),
    duplicates=st.booleans(),
    data=st.data(),
)
def test_seeded_search_across_windows(seed, windows, vocab, k, variant, duplicates, data):
    """The windowed path (queries with two frequent terms or more) over several windows takes the floor too."""
    from odqa_sparse import kernels

    _, docs, queries = random_corpus(seed, int(kernels.WINDOW * windows) + 1, vocab, 12, duplicates)
    retriever = make_retriever(variant)
    retriever.index_tokens(docs)
    _, scores = _exhaustive_ranking(retriever, _prepared(retriever, queries))
    _assert_seeded(retriever, queries, k, _floors(data, scores))


def test_floor_ties_and_padding():
    # Documents 0-3 score the same, 4 less: a floor at their score keeps nothing, just below it keeps all four
    # (by index) and pads the row; a floor of 0 or -inf is none (document 5, matching nothing, scores 0).
    docs = [["a", "b"], ["a", "b"], ["a", "b"], ["a", "b"], ["a", "c", "c", "c"], ["d"]]
    retriever = make_retriever("lucene")
    retriever.index_tokens(docs)
    prepared = _prepared(retriever, [["a", "b"]] * 4)
    plain, _ = retriever.search_prepared(prepared, 6)
    top = np.float64(plain.scores[0, 0])
    assert plain.indices[0].tolist() == [0, 1, 2, 3, 4, 5] and plain.scores[0, 5] == 0
    floors = np.array([top, np.nextafter(top, -np.inf), 0.0, -np.inf])
    seeded, _ = retriever.search_prepared(prepared, 5, floor=floors)
    assert seeded.indices.tolist() == [[-1] * 5, [0, 1, 2, 3, -1], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    assert np.isneginf(seeded.scores[0]).all() and np.isneginf(seeded.scores[1, 4])


def test_a_floor_of_the_wrong_shape_is_a_usage_error():
    import pytest

    from odqa_core import UsageError

    retriever = make_retriever("okapi")
    retriever.index_tokens([["a"], ["b"]])
    with pytest.raises(UsageError, match="one score per question"):
        retriever.search_prepared(_prepared(retriever, [["a"]]), 1, floor=np.zeros(2))
