"""Properties of the fusers on random corpora (hypothesis), with the real BM25 and a dense stand-in.

- cross with λ = 0 on the dense side gives exactly the sparse ranking;
- RRF is unchanged when an input's scores go through a strictly increasing function;
- sequential never leaves the first stage's candidates, and orders them by the second stage's scores;
- cross ``whole`` and ``union`` agree when ``depth`` covers the corpus, for every normalization and policy.
"""

from __future__ import annotations

import numpy as np
import pytest
from fusion_testdata import (
    SpyRetriever,
    TransformedRetriever,
    VectorRetriever,
    assert_same_ranking,
    random_corpus,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from odqa_fusion.fusers import CrossFuser, RRFFuser, SequentialFuser

pytest.importorskip("odqa_sparse")
from odqa_sparse.retrievers import BM25Retriever  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(seed: int, n_docs: int, n_queries: int):
    documents, queries = random_corpus(np.random.default_rng(seed), n_docs, n_queries)
    sparse, dense = BM25Retriever(), VectorRetriever()
    sparse.index(documents)
    dense.index(documents)
    return sparse, dense, queries


corpora = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 6))


@SETTINGS
@given(corpora, st.integers(1, 45), st.sampled_from(["whole", "union"]))
def test_lambda_zero_gives_the_sparse_ranking(corpus, k, mode):
    sparse, dense, queries = build(*corpus)
    fuser = CrossFuser(lam=0.0, lam_on="vec", mode=mode, depth=k, missing="exact")
    fused = fuser.fuse([sparse, dense], queries, k)
    expected = sparse.search(queries, k)
    np.testing.assert_array_equal(fused.indices, expected.indices)
    np.testing.assert_array_equal(fused.scores, expected.scores)


@SETTINGS
@given(corpora, st.integers(1, 45), st.sampled_from(["exp", "affine", "cube", "log1p"]))
def test_rrf_ignores_monotone_score_transforms(corpus, k, transform):
    sparse, dense, queries = build(*corpus)
    function = {
        "exp": np.exp,
        "affine": lambda s: 3.0 * s + 7.0,
        "cube": lambda s: s**3,
        "log1p": lambda s: np.log1p(s - s.min(axis=1, keepdims=True)),  # a per-question shift is monotone too
    }[transform]
    transformed = TransformedRetriever(dense, function)
    # Only where rounding to float32 kept every score distinct that was distinct.
    before, after = dense.score_all(queries), transformed.score_all(queries)
    order = np.argsort(before, axis=1, kind="stable")
    steps = np.diff(np.take_along_axis(before, order, 1), axis=1) > 0
    assume(np.array_equal(steps, np.diff(np.take_along_axis(after, order, 1), axis=1) > 0))
    fuser = RRFFuser(retrievers=["bm25", "vec"], depth=10)
    plain = fuser.fuse([sparse, dense], queries, k)
    changed = fuser.fuse([sparse, transformed], queries, k)
    np.testing.assert_array_equal(plain.indices, changed.indices)
    np.testing.assert_array_equal(plain.scores, changed.scores)


@SETTINGS
@given(corpora, st.integers(1, 45), st.integers(1, 45), st.booleans())
def test_sequential_stays_inside_the_candidates(corpus, candidates, k, second_indexed):
    sparse, dense, queries = build(*corpus)
    if not second_indexed:
        dense = VectorRetriever()
    fused = SequentialFuser(first="bm25", second="vec", candidates=candidates).fuse([sparse, dense], queries, k)
    n = len(sparse.documents)
    first = sparse.search(queries, max(candidates, min(k, n)))
    assert fused.k == min(k, n)
    for row in range(len(queries)):
        assert set(fused.indices[row].tolist()) <= set(first.indices[row].tolist())
    # the order is the second stage's: its scores of the candidates, best first, ties by index
    reference = VectorRetriever()
    reference.index(sparse.documents)
    rescored = reference.score(queries, fused.indices)
    np.testing.assert_allclose(fused.scores, rescored, rtol=1e-5, atol=1e-6)
    assert (np.diff(fused.scores, axis=1) <= 0).all()


@SETTINGS
@given(
    corpora,
    st.integers(1, 45),
    st.sampled_from(["none", "min-max", "z-score"]),
    st.sampled_from(["min", "zero", "exact"]),
    st.floats(0, 3),
)
def test_whole_and_union_agree_when_depth_covers_the_corpus(corpus, k, normalization, missing, lam):
    sparse, dense, queries = build(*corpus)
    common = {"lam": lam, "lam_on": "vec", "normalization": normalization}
    whole = CrossFuser(mode="whole", **common).fuse([sparse, dense], queries, k)
    n = len(sparse.documents)
    union = CrossFuser(mode="union", depth=n, missing=missing, **common).fuse([sparse, dense], queries, k)
    assert_same_ranking(whole, union)


@pytest.mark.parametrize("memory_mb", [1, 64])
def test_whole_mode_holds_one_block_of_questions_at_a_time(memory_mb):
    sparse, dense, queries = build(0, 40, 6)
    queries = queries * 2000  # 12,000 questions
    spies = [SpyRetriever(sparse), SpyRetriever(dense)]
    fuser = CrossFuser(lam_on="vec", memory_mb=memory_mb)
    block = fuser.block_size(len(sparse.documents))
    assert block * len(sparse.documents) * fuser.CELL_BYTES <= memory_mb * 2**20
    fused = fuser.fuse(spies, queries, 5)
    for spy in spies:
        assert max(spy.calls) == min(block, len(queries)) and sum(spy.calls) == len(queries)
    # blocks do not change the answer
    np.testing.assert_array_equal(
        fused.indices, CrossFuser(lam_on="vec", memory_mb=10_000).fuse(spies, queries, 5).indices
    )


def test_zero_weight_retriever_is_not_scored():
    sparse, dense, queries = build(1, 30, 4)
    spy = SpyRetriever(dense)
    CrossFuser(lam=0.0, lam_on="vec").fuse([sparse, spy], queries, 3)
    assert spy.calls == []


def test_tune_checks_every_cells_names_before_running_any():
    from odqa_experiments.tuning import tune_fuser

    from odqa_core import UsageError
    from odqa_core.testing import TOY_QUESTIONS

    sparse, dense, _ = build(2, 20, 1)
    spy = SpyRetriever(dense)
    grid = {"weights": [{"vec": 1.0}, {"nope": 2.0}]}
    with pytest.raises(UsageError, match="'nope'"):
        tune_fuser("cross", {}, grid, [sparse, spy], list(TOY_QUESTIONS), top_k=5, metric="acc@5")
    assert spy.calls == []  # the bad second cell was caught before the first one ran
