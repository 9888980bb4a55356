"""Scoring given documents (``score_all``, ``score``) against search: the same float32 scores, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from odqa_sparse import retrievers
from odqa_sparse.retrievers import BM25Retriever
from sparse_testdata import (
    RANDOM_CORPUS_SETTINGS,
    VARIANTS,
    make_corpus,
    make_retriever,
    random_corpus,
    random_corpus_strategies,
)

from odqa_core import Document, UsageError, data
from odqa_core.interfaces import Retriever


def as_documents(token_lists) -> list[Document]:
    return [Document(id=f"d{i}", text=" ".join(tokens)) for i, tokens in enumerate(token_lists)]


def as_text(token_lists) -> list[str]:
    return [" ".join(tokens) for tokens in token_lists]


def scattered(results) -> np.ndarray:
    """The scores of a full ranking (k = corpus size) in document order (NaN where a document is missing)."""
    out = np.full(results.indices.shape, np.nan, np.float32)
    np.put_along_axis(out, results.indices, results.scores, axis=1)
    return out


def assert_bits_equal(ours: np.ndarray, expected: np.ndarray) -> None:
    assert ours.dtype == np.float32 and ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(ours.view(np.uint32), np.asarray(expected, np.float32).view(np.uint32))


def random_setup(seed: int, n_docs: int, vocab: int, n_queries: int, variant: str, duplicates: bool):
    """An indexed retriever over a :func:`random_corpus` (its documents as text), its token queries, and the rng."""
    rng, docs, queries = random_corpus(seed, n_docs, vocab, n_queries, duplicates)
    retriever = make_retriever(variant)
    retriever.index(as_documents(docs))
    return rng, retriever, queries


# --- score_all -----------------------------------------------------------------------------------------------


@RANDOM_CORPUS_SETTINGS
@given(**random_corpus_strategies(max_docs=300), n_queries=st.integers(0, 12))
def test_score_all_equals_search_random(seed, n_docs, vocab, n_queries, variant, duplicates):
    _, retriever, queries = random_setup(seed, n_docs, vocab, n_queries, variant, duplicates)
    texts = as_text(queries)
    ours = retriever.score_all(texts)
    assert ours.shape == (n_queries, n_docs)
    assert_bits_equal(ours, scattered(retriever.search(texts, n_docs)))
    assert_bits_equal(ours, scattered(retriever.search_exhaustive(queries, n_docs)))
    assert_bits_equal(retriever.score_tokens_all(queries), ours)
    assert_bits_equal(Retriever.score_all(retriever, texts), ours)


# --- score ---------------------------------------------------------------------------------------------------


@RANDOM_CORPUS_SETTINGS
@given(**random_corpus_strategies(max_docs=300), n_queries=st.integers(0, 12), n_candidates=st.integers(0, 40))
def test_score_equals_score_all_gathered_random(seed, n_docs, vocab, n_queries, n_candidates, variant, duplicates):
    rng, retriever, queries = random_setup(seed, n_docs, vocab, n_queries, variant, duplicates)
    texts = as_text(queries)
    candidates = rng.integers(0, n_docs, (n_queries, n_candidates))  # repeats when n_candidates > n_docs or by chance
    if n_candidates >= 2:
        candidates[:, -1] = candidates[:, 0]  # a repeated candidate in every row
    expected = np.take_along_axis(retriever.score_all(texts), candidates, axis=1)
    ours = retriever.score(texts, candidates)
    assert ours.shape == (n_queries, n_candidates)
    assert_bits_equal(ours, expected)
    assert_bits_equal(retriever.score_tokens(queries, candidates), expected)
    assert_bits_equal(Retriever.score(retriever, texts, candidates), expected)
    # The scores search ranks its top documents by.
    top = retriever.search(texts, min(10, n_docs))
    assert_bits_equal(retriever.score(texts, top.indices), top.scores)


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_candidate_forms(variant, monkeypatch):
    docs, queries = make_corpus(1, n_docs=120, vocab=150, n_queries=10)
    retriever = make_retriever(variant)
    retriever.index(as_documents(docs))
    texts = as_text(queries)
    n_docs, n_q = len(docs), len(texts)
    full = retriever.score_all(texts)
    # Zero queries, zero candidates.
    assert retriever.score_all([]).shape == (0, n_docs)
    assert retriever.score_tokens_all([]).shape == (0, n_docs)
    assert retriever.score([], np.zeros((0, 3), np.int64)).shape == (0, 3)
    empty = retriever.score(texts, np.zeros((n_q, 0), np.int64))
    assert empty.shape == (n_q, 0) and empty.dtype == np.float32
    # Every document as candidates, in reverse, as int32, as nested lists, as a non-contiguous view.
    every = np.tile(np.arange(n_docs)[::-1], (n_q, 1))
    expected = full[:, ::-1]
    assert_bits_equal(retriever.score(texts, every), expected)
    assert_bits_equal(retriever.score(texts, every.astype(np.int32)), expected)
    assert_bits_equal(retriever.score(texts, every.tolist()), expected)
    assert_bits_equal(retriever.score(texts, np.asfortranarray(every)[:, ::2]), expected[:, ::2])
    # The same document many times.
    same = np.full((n_q, 5), 7)
    assert_bits_equal(retriever.score(texts, same), np.repeat(full[:, 7:8], 5, axis=1))
    # Queries split over several kernel calls give the same scores.
    monkeypatch.setattr(retrievers, "QUERY_CHUNK", 3)
    assert_bits_equal(retriever.score_all(texts), full)
    assert_bits_equal(retriever.score(texts, every), expected)
    assert_bits_equal(retriever.score_tokens(queries, every), expected)


# --- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["okapi", "tfidf"])
def test_bad_input_is_a_usage_error(variant):
    fresh = make_retriever(variant)
    for call in (
        lambda: fresh.score_all(["a"]),
        lambda: fresh.score(["a"], np.zeros((1, 1), np.int64)),
        lambda: fresh.score_tokens_all([["a"]]),
        lambda: fresh.score_tokens([["a"]], np.zeros((1, 1), np.int64)),
    ):
        with pytest.raises(UsageError, match="has no index yet"):
            call()
    retriever = make_retriever(variant)
    retriever.index(as_documents([["a", "b"], ["b", "c"], ["c"]]))
    queries = ["a b", "c"]
    for bad, match in (
        (np.zeros(2, np.int64), "shape"),
        (np.zeros((3, 1), np.int64), "shape"),
        (np.zeros((1, 1), np.int64), "shape"),
        (np.zeros((2, 1, 1), np.int64), "shape"),
        (np.array([[0], [3]]), "lie in"),
        (np.array([[-1], [0]]), "lie in"),
        (np.zeros((2, 1), np.float32), "integer"),
    ):
        with pytest.raises(UsageError, match=match):
            retriever.score(queries, bad)
        with pytest.raises(UsageError, match=match):
            retriever.score_tokens([["a", "b"], ["c"]], bad)
    with pytest.raises(UsageError, match="single string"):
        retriever.score_all("a b")
    with pytest.raises(UsageError, match="single string"):
        retriever.score("a b", np.zeros((3, 1), np.int64))
    with pytest.raises(UsageError, match="single string"):
        retriever.score_tokens_all("a b")


# --- constants -----------------------------------------------------------------------------------------------


def test_bm25plus_constant_goes_to_documents_matching_nothing():
    docs = [["a", "b"], ["c"], ["d", "d"], [], ["a", "c"]]
    retriever = BM25Retriever(variant="bm25+")
    retriever.index(as_documents(docs))
    idf_a = retriever._impacts.idf[retriever.sparse_embedding.term_ids["a"]]
    queries = ["a zzz", "a a", "zzz", ""]
    scores = retriever.score_all(queries)
    assert_bits_equal(scores, scattered(retriever.search(queries, len(docs))))
    for row, const in ((0, np.float32(idf_a)), (1, np.float32(2 * idf_a))):
        assert const > 0
        np.testing.assert_array_equal(scores[row, [1, 2, 3]], const)  # no "a": the constant alone
        assert (scores[row, [0, 4]] > const).all()
    np.testing.assert_array_equal(scores[2:], 0)  # no known term: no constant
    assert_bits_equal(retriever.score(queries, np.array([[3, 1]] * 4)), scores[:, [3, 1]])
    okapi = BM25Retriever(variant="okapi")
    okapi.index(as_documents(docs))
    np.testing.assert_array_equal(okapi.score_all(["a zzz"])[0, [1, 2, 3]], 0)


# --- the sample corpus ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    corpus = data.load_corpus(data.sample_corpus_path())
    questions = [q.text for q in data.load_questions(data.sample_questions_path())]
    return corpus, questions


@pytest.mark.parametrize("variant", VARIANTS)
def test_sample_corpus_char_ngram(sample, variant, tmp_path):
    corpus, questions = sample
    retriever = make_retriever(variant, analyzer="char-ngram")
    retriever.index(corpus)
    n_docs = len(corpus)
    full = retriever.score_all(questions)
    assert full.shape == (len(questions), n_docs)
    assert_bits_equal(full, scattered(retriever.search(questions, n_docs)))
    assert_bits_equal(Retriever.score_all(retriever, questions), full)
    top = retriever.search(questions, 10)
    assert_bits_equal(retriever.score(questions, top.indices), top.scores)
    candidates = np.random.default_rng(0).integers(0, n_docs, (len(questions), 25))
    assert_bits_equal(retriever.score(questions, candidates), np.take_along_axis(full, candidates, axis=1))
    assert_bits_equal(Retriever.score(retriever, questions, candidates), np.take_along_axis(full, candidates, 1))
    # A saved and reloaded index scores the same.
    retriever.save(tmp_path / "index")
    loaded = type(retriever).load(tmp_path / "index")
    assert_bits_equal(loaded.score_all(questions), full)
    assert_bits_equal(loaded.score(questions, candidates), np.take_along_axis(full, candidates, axis=1))
