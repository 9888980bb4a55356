"""Scores and rankings against the reference implementations, and pruned search against exhaustive search."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from odqa_sparse.retrievers import BM25Retriever, TfidfRetriever
from sparse_testdata import (
    RANDOM_CORPUS_SETTINGS,
    make_corpus,
    make_retriever,
    random_corpus,
    random_corpus_strategies,
    zipf_tokens,
)

rank_bm25 = pytest.importorskip("rank_bm25")
REFERENCE = {"okapi": rank_bm25.BM25Okapi, "bm25+": rank_bm25.BM25Plus, "bm25l": rank_bm25.BM25L}


def ranking(scores: np.ndarray, k: int) -> np.ndarray:
    """Best first, ties by ascending index."""
    return np.lexsort((np.arange(len(scores)), -scores))[:k]


def all_scores(retriever, queries) -> np.ndarray:
    """Every document's score for every query (k = corpus size), scattered back to document order."""
    res = retriever.search_tokens(queries, len(retriever.documents))
    out = np.empty(res.indices.shape, np.float64)
    np.put_along_axis(out, res.indices, res.scores, axis=1)
    return out


def assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    """1e-6 relative, with an absolute floor relative to the row's scale (float32 sums of float64 terms)."""
    scale = np.maximum(np.abs(ref).max(axis=-1, keepdims=True), 1e-12)
    np.testing.assert_array_less(np.abs(ours - ref), 1e-6 * np.maximum(np.abs(ref), 1e-2 * scale) + 1e-12)


@pytest.mark.parametrize("variant", sorted(REFERENCE))
def test_bm25_scores_equal_rank_bm25(corpus, variant):
    docs, queries = corpus
    ref = REFERENCE[variant](docs)
    retriever = BM25Retriever(variant=variant)
    retriever.index_tokens(docs)
    ours = all_scores(retriever, queries)
    expected = np.stack([np.asarray(ref.get_scores(q), np.float64) for q in queries])
    assert_close(ours, expected)


def test_okapi_top10_identical_to_rank_bm25(corpus):
    docs, queries = corpus
    ref = rank_bm25.BM25Okapi(docs)
    retriever = BM25Retriever()
    retriever.index_tokens(docs)
    results = retriever.search_tokens(queries, 10)
    for row, query in zip(results.indices, queries):
        np.testing.assert_array_equal(row, ranking(np.asarray(ref.get_scores(query)), 10))


def test_okapi_negative_idfs_and_ties():
    # Every document holds "a" and "b": their idf is negative, and so is the mean idf, so the epsilon floor is
    # negative too; documents without any query term (score 0) then rank above those with one.
    docs = [["a", "b", "c"], ["a", "b"], ["a", "b", "d"], ["a", "b"], ["a", "b", "c", "c"], ["e"], ["a", "b"]]
    queries = [["a"], ["a", "c"], ["c"], ["e", "a"], ["zzz"], []]
    ref = rank_bm25.BM25Okapi(docs)
    retriever = BM25Retriever()
    retriever.index_tokens(docs)
    res = retriever.search_tokens(queries, len(docs))
    for i, query in enumerate(queries):
        expected = np.asarray(ref.get_scores(query))
        np.testing.assert_array_equal(res.indices[i], ranking(expected, len(docs)))
        assert_close(res.scores[i][None], expected[res.indices[i]][None])


def lucene_reference(docs, queries, k1=0.9, b=0.4):
    vocab = sorted({t for d in docs for t in d})
    col = {t: i for i, t in enumerate(vocab)}
    tf = np.zeros((len(docs), len(vocab)))
    for r, d in enumerate(docs):
        for t in d:
            tf[r, col[t]] += 1
    n, df = len(docs), (tf > 0).sum(0)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    dl = tf.sum(1, keepdims=True)
    impact = idf * tf / (tf + k1 * (1 - b + b * dl / dl.mean()))
    return np.stack([sum((impact[:, col[t]] for t in q if t in col), np.zeros(n)) for q in queries])


def test_lucene_scores(corpus):
    docs, queries = corpus
    retriever = BM25Retriever(variant="lucene")
    retriever.index_tokens(docs)
    assert_close(all_scores(retriever, queries), lucene_reference(docs, queries))
    custom = BM25Retriever(variant="lucene", k1=1.2, b=0.75)
    custom.index_tokens(docs)
    assert_close(all_scores(custom, queries), lucene_reference(docs, queries, 1.2, 0.75))


def test_explicit_parameters_match_rank_bm25(corpus):
    docs, queries = corpus
    retriever = BM25Retriever(variant="okapi", k1=1.2, b=0.5, epsilon=0.1)
    retriever.index_tokens(docs)
    ref = rank_bm25.BM25Okapi(docs, k1=1.2, b=0.5, epsilon=0.1)
    assert_close(all_scores(retriever, queries), np.stack([ref.get_scores(q) for q in queries]))
    plus = BM25Retriever(variant="bm25+", delta=0.5)
    plus.index_tokens(docs)
    ref = rank_bm25.BM25Plus(docs, delta=0.5)
    assert_close(all_scores(plus, queries), np.stack([ref.get_scores(q) for q in queries]))


@pytest.mark.parametrize("sublinear", [False, True])
def test_tfidf_equals_sklearn_cosine(corpus, sublinear):
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    docs, queries = corpus
    vectorizer = sklearn_text.TfidfVectorizer(analyzer=lambda x: x, sublinear_tf=sublinear)
    doc_matrix = vectorizer.fit_transform(docs)
    expected = (vectorizer.transform(queries) @ doc_matrix.T).toarray()
    retriever = TfidfRetriever(sublinear_tf=sublinear)
    retriever.index_tokens(docs)
    ours = all_scores(retriever, queries)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


# --- pruning is exact ------------------------------------------------------------------------------------------


def assert_same_results(a, b):
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


@pytest.fixture(params=["some", "none", "all"])
def bitmaps(request, monkeypatch):
    """Presence bitmaps for the frequent terms (default), for no term, or for every term seen twice."""
    from odqa_sparse import kernels

    divisor = {"some": kernels.BITMAP_DIVISOR, "none": 1, "all": 10**9}[request.param]
    monkeypatch.setattr(kernels, "BITMAP_DIVISOR", divisor)
    return request.param


@pytest.mark.parametrize("variant", ["okapi", "lucene", "bm25+", "bm25l"])
def test_pruned_equals_exhaustive(variant, bitmaps):
    rng = np.random.default_rng(7)
    docs = zipf_tokens(rng, 3000, 2000, 5, 60)
    queries = zipf_tokens(rng, 300, 2000, 1, 12) + [["t0"] * 3 + ["t1", "t5", "t1999"]]
    retriever = BM25Retriever(variant=variant)
    retriever.index_tokens(docs)
    for k in (1, 10, 50):
        assert_same_results(retriever.search_tokens(queries, k), retriever.search_exhaustive(queries, k))


def test_pruned_equals_exhaustive_tfidf(bitmaps):
    docs, queries = make_corpus(5, n_docs=2000, vocab=1500, n_queries=200)
    retriever = TfidfRetriever()
    retriever.index_tokens(docs)
    assert_same_results(retriever.search_tokens(queries, 10), retriever.search_exhaustive(queries, 10))


@RANDOM_CORPUS_SETTINGS
@given(**random_corpus_strategies(max_docs=400), k=st.integers(1, 25))
def test_pruned_equals_exhaustive_random(seed, n_docs, vocab, k, variant, duplicates):
    _, docs, queries = random_corpus(seed, n_docs, vocab, 30, duplicates)
    retriever = make_retriever(variant)
    retriever.index_tokens(docs)
    k = min(k, n_docs)
    pruned, exhaustive = retriever.search_tokens(queries, k), retriever.search_exhaustive(queries, k)
    assert_same_results(pruned, exhaustive)
    scores = pruned.scores
    assert (np.diff(scores, axis=1) <= 0).all()
    assert (np.diff(pruned.indices, axis=1)[np.diff(scores, axis=1) == 0] > 0).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    windows=st.floats(1.0, 3.0),
    vocab=st.integers(1, 300),
    k=st.integers(1, 30),
    variant=st.sampled_from(["okapi", "lucene", "bm25+", "bm25l", "tfidf"]),
    duplicates=st.booleans(),
)
def test_pruned_equals_exhaustive_across_windows(seed, windows, vocab, k, variant, duplicates):
    """Queries with frequent terms (presence bitmaps) are searched window by window of ``kernels.WINDOW``
    documents: over several windows, with ties between documents of different windows (``duplicates``), the top
    k equals the exhaustive search's bit for bit."""
    from odqa_sparse import kernels

    n_docs = int(kernels.WINDOW * windows) + 1
    _, docs, queries = random_corpus(seed, n_docs, vocab, 30, duplicates)
    retriever = make_retriever(variant)
    retriever.index_tokens(docs)
    # The windowed path's condition: a query with two terms or more that have presence bitmaps.
    b_slot = retriever._impacts.b_slot
    long_terms = {term for term, i in retriever.sparse_embedding.term_ids.items() if b_slot[i] >= 0}
    assume(any(len(long_terms.intersection(query)) >= 2 for query in queries))
    assert_same_results(retriever.search_tokens(queries, k), retriever.search_exhaustive(queries, k))


@RANDOM_CORPUS_SETTINGS
@given(**random_corpus_strategies(max_docs=300), k=st.integers(1, 12), threads=st.integers(1, 3))
def test_one_query_per_call_equals_the_batch(seed, n_docs, vocab, k, variant, duplicates, threads):
    # One question per call takes its own query-array path and reuses the kernel's scratch arrays from call to
    # call (and thread to thread): every call must give the batch's row, bit for bit, whatever ran before it.
    _, docs, queries = random_corpus(seed, n_docs, vocab, 25, duplicates)
    retriever = make_retriever(variant, threads=threads)
    retriever.index_tokens(docs)
    k = min(k, n_docs)
    batch = retriever.search_tokens(queries, k)
    for i, query in enumerate(queries + queries[::-1]):
        one = retriever.search_tokens([query], k)
        row = i if i < len(queries) else 2 * len(queries) - 1 - i
        np.testing.assert_array_equal(one.indices[0], batch.indices[row])
        np.testing.assert_array_equal(one.scores[0], batch.scores[row])
    again = retriever.search_tokens(queries, k)  # the batch after the single calls, on the same scratch
    np.testing.assert_array_equal(again.indices, batch.indices)
    np.testing.assert_array_equal(again.scores, batch.scores)


@RANDOM_CORPUS_SETTINGS
@given(**random_corpus_strategies(max_docs=60))
def test_one_query_arrays_equal_the_batch_row(seed, n_docs, vocab, variant, duplicates):
    _, docs, queries = random_corpus(seed, n_docs, vocab, 20, duplicates)
    retriever = make_retriever(variant)
    retriever.index_tokens(docs)
    embedding = retriever.sparse_embedding
    ptr, terms, counts = embedding.query_arrays(queries)
    for i, query in enumerate(queries):
        for tokens in (query, tuple(query)):
            one = embedding.query_arrays([tokens])
            assert [a.dtype for a in one] == [np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.int32)]
            np.testing.assert_array_equal(one[0], [0, ptr[i + 1] - ptr[i]])
            np.testing.assert_array_equal(one[1], terms[ptr[i] : ptr[i + 1]])
            np.testing.assert_array_equal(one[2], counts[ptr[i] : ptr[i + 1]])


def test_constant_added_after_ranking_keeps_ties_in_index_order():
    # BM25+ adds a per-query constant after ranking; scores that round to the same float32 must end up
    # ordered by index even though their partial sums differed.
    from odqa_sparse.retrievers import SparseRetriever
    from odqa_sparse.weighting import Impacts

    above_one = np.nextafter(np.float32(1), np.float32(2))
    imp = Impacts(
        np.array([0, 3], np.int64),
        np.array([0, 1, 2], np.int32),
        np.array([1.0, above_one, 0.5], np.float32),
        np.array([above_one], np.float32),
        np.array([0.5], np.float32),
        np.ones(1),
        3,
    )
    out_i, out_s = np.zeros((1, 3), np.int64), np.zeros((1, 3), np.float32)
    args = (np.array([0, 1], np.int64), np.array([0], np.int32), np.ones(1, np.float32))
    SparseRetriever._kernel(imp, *args, np.zeros(1, np.float32), 3, True, out_i, out_s)
    assert out_i.tolist() == [[1, 0, 2]]
    SparseRetriever._kernel(imp, *args, np.array([1000.0], np.float32), 3, True, out_i, out_s)
    assert out_s[0, 0] == out_s[0, 1] == np.float32(1001.0)
    assert out_i.tolist() == [[0, 1, 2]]
