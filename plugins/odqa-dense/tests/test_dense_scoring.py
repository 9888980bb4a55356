"""Scoring given passages with ``dpr``: ``score_all``, ``score`` (stored vectors), ``score_documents`` (encoded)."""

from __future__ import annotations

import numpy as np
import pytest
from odqa_dense import retriever as retriever_module
from odqa_dense.retriever import DPRRetriever

from odqa_core import UsageError
from odqa_core.testing import TOY_DOCUMENTS

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def sample_queries(sample_questions):
    return [q.text for q in sample_questions[:25]]


@pytest.fixture(scope="module")
def indexed(micro_checkpoint, sample_documents):
    """A flat dpr index over the bundled sample."""
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    retriever.index(sample_documents)
    return retriever


@pytest.fixture(scope="module")
def candidates(sample_queries, sample_documents):
    """12 rows per query with repeats: random rows, then row 0 twice and the last row."""
    rng = np.random.default_rng(3)
    random = rng.integers(0, len(sample_documents), (len(sample_queries), 9))
    fixed = np.tile([0, 0, len(sample_documents) - 1], (len(sample_queries), 1))
    return np.concatenate([random, fixed], axis=1).astype(np.int64)


def spy_on_encode_passages(retriever, monkeypatch):
    """Record the documents of every ``encode_passages`` call of ``retriever``."""
    calls: list[list] = []
    original = retriever.encode_passages

    def spy(documents):
        calls.append(list(documents))
        return original(documents)

    monkeypatch.setattr(retriever, "encode_passages", spy)
    return calls


# --- score_all ----------------------------------------------------------------------------------------------------


def test_score_all_equals_search_scattered(indexed, sample_queries, sample_documents):
    n = len(sample_documents)
    scores = indexed.score_all(sample_queries)
    assert scores.dtype == np.float32 and scores.shape == (len(sample_queries), n)
    results = indexed.search(sample_queries, n)
    expected = np.full((len(sample_queries), n), np.nan, np.float32)
    np.put_along_axis(expected, results.indices, results.scores, axis=1)
    assert not np.isnan(expected).any()
    np.testing.assert_allclose(scores, expected, **TOLERANCE)


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_score_all_is_exact_for_approximate_indexes(
    indexed, micro_checkpoint, sample_documents, sample_queries, index_type
):
    # Scores come from the stored vectors, not the approximate index (one probed list of four, a tiny efSearch).
    options = {"nlist": 4, "nprobe": 1} if index_type == "ivf" else {"ef_search": 1}
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu", index_type=index_type, **options)
    retriever.index(sample_documents)
    np.testing.assert_allclose(retriever.score_all(sample_queries), indexed.score_all(sample_queries), **TOLERANCE)
    np.testing.assert_allclose(
        retriever.score(sample_queries, np.tile(np.arange(len(sample_documents)), (len(sample_queries), 1))),
        indexed.score_all(sample_queries),
        **TOLERANCE,
    )


def test_score_all_without_queries(indexed, sample_documents):
    scores = indexed.score_all([])
    assert scores.dtype == np.float32 and scores.shape == (0, len(sample_documents))


# --- score --------------------------------------------------------------------------------------------------------


def test_score_equals_score_all_gathered(indexed, sample_queries, candidates):
    scores = indexed.score(sample_queries, candidates)
    assert scores.dtype == np.float32 and scores.shape == candidates.shape
    expected = np.take_along_axis(indexed.score_all(sample_queries), candidates, axis=1)
    np.testing.assert_allclose(scores, expected, **TOLERANCE)
    np.testing.assert_array_equal(scores[:, -3], scores[:, -2])  # a repeated candidate scores the same
    # int32 and list candidates are accepted too
    np.testing.assert_array_equal(indexed.score(sample_queries, candidates.astype(np.int32)), scores)
    np.testing.assert_array_equal(indexed.score(sample_queries[:2], candidates[:2].tolist()), scores[:2])


@pytest.mark.parametrize("gather_vectors", [1, 5, 30])
def test_score_in_small_blocks(indexed, sample_queries, candidates, monkeypatch, gather_vectors):
    """A gather budget of a few vectors: blocks of one row's candidates (1, 5) and of several rows (30)."""
    expected = indexed.score(sample_queries, candidates)
    dim = indexed.passage_vectors.shape[1]
    monkeypatch.setattr(retriever_module, "GATHER_BYTES", gather_vectors * dim * 4)
    np.testing.assert_allclose(indexed.score(sample_queries, candidates), expected, rtol=1e-6, atol=1e-6)


def test_score_empty_inputs(indexed, sample_queries):
    scores = indexed.score(sample_queries, np.zeros((len(sample_queries), 0), np.int64))
    assert scores.dtype == np.float32 and scores.shape == (len(sample_queries), 0)
    scores = indexed.score([], np.zeros((0, 5), np.int64))
    assert scores.dtype == np.float32 and scores.shape == (0, 5)


# --- score_documents ----------------------------------------------------------------------------------------------


def test_score_documents_unindexed_equals_score(
    indexed, micro_checkpoint, sample_documents, sample_queries, candidates
):
    unindexed = DPRRetriever(model=micro_checkpoint, device="cpu")
    assert DPRRetriever.scores_unindexed and not unindexed.is_indexed
    scores = unindexed.score_documents(sample_queries, sample_documents, candidates)
    assert scores.dtype == np.float32 and scores.shape == candidates.shape
    np.testing.assert_allclose(scores, indexed.score(sample_queries, candidates), **TOLERANCE)
    assert not unindexed.is_indexed


def test_score_documents_of_another_table(indexed, sample_queries):
    """An indexed retriever scores passages outside its index by encoding them."""
    toy = list(TOY_DOCUMENTS)
    candidates = np.tile(np.arange(len(toy))[::-1], (len(sample_queries), 1))
    scores = indexed.score_documents(sample_queries, toy, candidates)
    expected = indexed.encode_queries(sample_queries) @ indexed.encode_passages(toy).T
    np.testing.assert_allclose(scores, np.take_along_axis(expected, candidates, axis=1), **TOLERANCE)


def test_score_documents_encodes_each_unique_passage_once(
    micro_checkpoint, sample_documents, sample_queries, candidates, monkeypatch
):
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    calls = spy_on_encode_passages(retriever, monkeypatch)
    retriever.score_documents(sample_queries, sample_documents, candidates)
    encoded = [d.id for call in calls for d in call]
    unique = np.unique(candidates)
    assert len(unique) < candidates.size
    assert len(encoded) == len(unique) and len(set(encoded)) == len(encoded)
    assert set(encoded) == {sample_documents[i].id for i in unique.tolist()}


def test_score_documents_empty_inputs_encode_nothing(micro_checkpoint, sample_documents, sample_queries, monkeypatch):
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    calls = spy_on_encode_passages(retriever, monkeypatch)
    monkeypatch.setattr(retriever, "encode_queries", lambda queries: pytest.fail("encoded questions"))
    scores = retriever.score_documents(sample_queries, sample_documents, np.zeros((len(sample_queries), 0), np.int64))
    assert scores.dtype == np.float32 and scores.shape == (len(sample_queries), 0)
    scores = retriever.score_documents([], sample_documents, np.zeros((0, 4), np.int64))
    assert scores.dtype == np.float32 and scores.shape == (0, 4)
    assert calls == [] and retriever._encoder is None


# --- errors -------------------------------------------------------------------------------------------------------


def test_scoring_without_an_index_is_a_usage_error(micro_checkpoint):
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    for call in (
        lambda: retriever.score_all(["q"]),
        lambda: retriever.score_all([]),
        lambda: retriever.score(["q"], np.zeros((1, 2), np.int64)),
    ):
        with pytest.raises(UsageError, match="no index"):
            call()


@pytest.mark.parametrize(
    ("candidates", "match"),
    [
        (np.zeros(2, np.int64), "shape"),  # 1-D
        (np.zeros((3, 2), np.int64), "shape"),  # another number of rows than queries
        (np.full((2, 2), 0.5), "integer"),
        (np.array([[0, -1], [1, 2]]), "must lie in"),
        (np.array([[0, 1], [2, 10**6]]), "must lie in"),
    ],
)
def test_bad_candidates_are_usage_errors(indexed, micro_checkpoint, sample_documents, candidates, match):
    queries = ["first question", "second question"]
    with pytest.raises(UsageError, match=match):
        indexed.score(queries, candidates)
    unindexed = DPRRetriever(model=micro_checkpoint, device="cpu")
    with pytest.raises(UsageError, match=match):
        unindexed.score_documents(queries, sample_documents, candidates)


def test_rows_of_the_other_table_are_checked_against_it(indexed, sample_documents):
    # Row 10 exists in the sample the retriever indexed but not in the 8-passage toy table it is asked to score.
    assert len(sample_documents) > 10 > len(TOY_DOCUMENTS)
    with pytest.raises(UsageError, match=f"\\[0, {len(TOY_DOCUMENTS)}\\)"):
        indexed.score_documents(["q"], list(TOY_DOCUMENTS), np.array([[10]]))
