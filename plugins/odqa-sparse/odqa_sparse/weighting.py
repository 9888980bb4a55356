"""Weightings of a :class:`~odqa_sparse.embedding.SparseEmbedding`: TF-IDF and the BM25 variants.

Each weighting turns the one embedding into term-major *impact* postings (float32 per (document, term), computed in
float64) and turns query term counts into query weights, so that a document's score is

    score(q, d) = const(q) + sum over query terms t of  weight(q, t) * impact(d, t)

The formulas reproduce the reference implementations exactly (up to float32 rounding of the result):

- ``okapi``: rank_bm25.BM25Okapi. idf = log(N - df + 0.5) - log(df + 0.5); negative idfs are replaced by
  ``epsilon * mean(idf)`` (the mean taken over all terms before replacement); impact = idf · tf (k1 + 1) /
  (tf + k1 (1 - b + b dl / avgdl)); weight = the term's count in the query (rank_bm25 sums over query tokens).
- ``lucene``: idf = log(1 + (N - df + 0.5) / (df + 0.5)), impact = idf · tf / (tf + k1 (1 - b + b dl / avgdl))
  (Lucene >= 8, bm25s ``method="lucene"``).
- ``bm25+``: rank_bm25.BM25Plus. idf = log((N + 1) / df); every query token t adds idf(t) · (delta + tf-part),
  also to documents without t: the ``delta · idf`` part is the per-query constant ``const(q)``.
- ``bm25l``: rank_bm25.BM25L. idf = log(N + 1) - log(df + 0.5); impact = idf · tf (k1 + 1) (ctd + delta) /
  (k1 + ctd + delta), ctd = tf / (1 - b + b dl / avgdl). rank_bm25 multiplies by tf, so documents without the
  term get 0 and there is no constant.
- ``tfidf``: scikit-learn ``TfidfVectorizer`` defaults. idf = ln((1 + N) / (1 + df)) + 1, document vectors
  tf · idf (``sublinear_tf``: 1 + ln tf) l2-normalised; the query vector likewise, so the score is the cosine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from odqa_sparse import kernels
from odqa_sparse.embedding import SparseEmbedding

__all__ = [
    "BM25_DEFAULTS",
    "Impacts",
    "bm25_idf",
    "bm25_impacts",
    "bm25_query_weights",
    "tfidf_idf",
    "tfidf_impacts",
    "tfidf_query_weights",
]

#: Default (k1, b, delta) of each BM25 variant.
BM25_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "okapi": (1.5, 0.75, 0.0),
    "lucene": (0.9, 0.4, 0.0),
    "bm25+": (1.5, 0.75, 1.0),
    "bm25l": (1.5, 0.75, 0.5),
}
_KIND = {"okapi": kernels.OKAPI, "bm25+": kernels.OKAPI, "lucene": kernels.LUCENE, "bm25l": kernels.BM25L}


@dataclass
class Impacts:
    """Term-major impact postings: for term t, ``t_docs[t_ptr[t]:t_ptr[t+1]]`` (ascending) and ``t_imp`` likewise.

    ``t_max``/``t_min`` are each term's largest and smallest impact (0 for a term without postings); ``idf`` is the
    idf the impacts were made with (float64). Frequent terms also get presence bitmaps (``b_slot``, ``b_words``,
    ``b_rank``; see :func:`odqa_sparse.kernels.build_bitmaps`) so that search can look a document up in O(1).
    """

    t_ptr: np.ndarray
    t_docs: np.ndarray
    t_imp: np.ndarray
    t_max: np.ndarray
    t_min: np.ndarray
    idf: np.ndarray
    n_docs: int
    b_slot: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    b_words: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    b_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __post_init__(self) -> None:
        if len(self.b_slot) != len(self.t_max):
            min_df = max(2, -(-self.n_docs // kernels.BITMAP_DIVISOR))
            self.b_slot, self.b_words, self.b_rank = kernels.build_bitmaps(
                self.t_ptr, self.t_docs, self.n_docs, min_df
            )

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.t_ptr,
                self.t_docs,
                self.t_imp,
                self.t_max,
                self.t_min,
                self.b_slot,
                self.b_words,
                self.b_rank,
            )
        )


def bm25_idf(variant: str, n_docs: int, doc_freqs: np.ndarray, epsilon: float = 0.25) -> np.ndarray:
    """The idf of every term under a BM25 variant (float64)."""
    n = float(n_docs)
    df = doc_freqs.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant == "okapi":
            idf = np.log(n - df + 0.5) - np.log(df + 0.5)
            if len(idf):
                # rank_bm25: the floor is epsilon times the mean of the raw idfs.
                floor = epsilon * (idf.sum() / len(idf))
                idf = np.where(idf < 0, floor, idf)
        elif variant == "lucene":
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        elif variant == "bm25+":
            idf = np.log((n + 1.0) / df)
        elif variant == "bm25l":
            idf = np.log(n + 1.0) - np.log(df + 0.5)
        else:  # pragma: no cover - validated by the retriever
            raise ValueError(f"unknown BM25 variant {variant!r}")
    return np.where(np.isfinite(idf), idf, 0.0)


def bm25_impacts(
    embedding: SparseEmbedding, variant: str, k1: float, b: float, delta: float, epsilon: float = 0.25
) -> Impacts:
    idf = bm25_idf(variant, embedding.n_docs, embedding.doc_freqs, epsilon)
    t_ptr, t_docs, t_counts = embedding.postings()
    avgdl = embedding.avgdl or 1.0
    impacts, t_max, t_min = kernels.term_impacts(
        t_ptr,
        t_docs,
        t_counts,
        embedding.doc_lengths.astype(np.float64),
        np.ones(1, np.float64),
        idf,
        _KIND[variant],
        float(k1),
        float(b),
        float(delta),
        float(avgdl),
        False,
    )
    return Impacts(t_ptr, t_docs, impacts, t_max, t_min, idf, embedding.n_docs)


def bm25_query_weights(
    impacts: Impacts, variant: str, delta: float, ptr: np.ndarray, terms: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Query weights (the term counts) and per-query constants (BM25+: delta · sum of count · idf)."""
    weights = counts.astype(np.float32)
    const = np.zeros(len(ptr) - 1, np.float32)
    if variant == "bm25+" and len(terms):
        rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        const = (delta * np.bincount(rows, weights=counts * impacts.idf[terms], minlength=len(ptr) - 1)).astype(
            np.float32
        )
    return weights, const


def tfidf_idf(n_docs: int, doc_freqs: np.ndarray) -> np.ndarray:
    """scikit-learn's smoothed idf: ln((1 + N) / (1 + df)) + 1."""
    return np.log((1.0 + n_docs) / (1.0 + doc_freqs.astype(np.float64))) + 1.0


def tfidf_impacts(embedding: SparseEmbedding, sublinear_tf: bool = False) -> Impacts:
    idf = tfidf_idf(embedding.n_docs, embedding.doc_freqs)
    c = embedding.counts
    norms = kernels.tfidf_doc_norms(c.indptr.astype(np.int64, copy=False), c.indices, c.data, idf, sublinear_tf)
    t_ptr, t_docs, t_counts = embedding.postings()
    impacts, t_max, t_min = kernels.term_impacts(
        t_ptr,
        t_docs,
        t_counts,
        np.ones(1, np.float64),
        norms,
        idf,
        kernels.TFIDF,
        0.0,
        0.0,
        0.0,
        1.0,
        bool(sublinear_tf),
    )
    return Impacts(t_ptr, t_docs, impacts, t_max, t_min, idf, embedding.n_docs)


def tfidf_query_weights(
    impacts: Impacts, sublinear_tf: bool, ptr: np.ndarray, terms: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """l2-normalised tf · idf query weights (cosine scoring); no constants."""
    tf = counts.astype(np.float64)
    if sublinear_tf:
        tf = 1.0 + np.log(tf)
    w = tf * impacts.idf[terms]
    rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    norms = np.sqrt(np.bincount(rows, weights=w * w, minlength=len(ptr) - 1))
    if len(w):
        w = w / np.where(norms > 0, norms, 1.0)[rows]
    return w.astype(np.float32), np.zeros(len(ptr) - 1, np.float32)
