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

from odqa_core import IndexFormatError
from odqa_core.storage import StoreReader, StoreWriter
from odqa_sparse import kernels
from odqa_sparse.embedding import SparseEmbedding

__all__ = [
    "BM25_DEFAULTS",
    "CorpusStatistics",
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
class CorpusStatistics:
    """What a weighting needs of the whole corpus: documents, tokens, and documents per term of its vocabulary.

    An index of the whole corpus takes them from its own embedding (:meth:`of`); a shard of a sharded index is
    given the corpus-wide ones, so that its impacts are those of the single index (same idf, same mean length).
    """

    n_docs: int
    total_length: int
    doc_freqs: np.ndarray

    @classmethod
    def of(cls, embedding: SparseEmbedding) -> CorpusStatistics:
        return cls(embedding.n_docs, int(embedding.doc_lengths.sum()), embedding.doc_freqs)

    @property
    def avgdl(self) -> float:
        """Mean document length, as :attr:`SparseEmbedding.avgdl` computes it (0 for an empty corpus)."""
        return float(np.int64(self.total_length) / self.n_docs) if self.n_docs else 0.0


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
    #: Each term's posting-list length in the whole corpus: the key of the kernels' summation order (shortest
    #: first). An index of the whole corpus has its own lengths (``diff(t_ptr)``, made here, not stored); a shard of
    #: a sharded index stores the corpus-wide ones, so that it sums each score in the single index's order.
    t_order: np.ndarray | None = None

    #: The arrays a store holds (``<name>.npy``), in the order of the fields.
    ARRAYS = ("t_ptr", "t_docs", "t_imp", "t_max", "t_min", "idf", "b_slot", "b_words", "b_rank")

    def __post_init__(self) -> None:
        self.own_order = self.t_order is None
        if self.t_order is None:
            self.t_order = np.diff(self.t_ptr).astype(np.int64)
        if len(self.b_slot) != len(self.t_max):
            min_df = max(2, -(-self.n_docs // kernels.BITMAP_DIVISOR))
            self.b_slot, self.b_words, self.b_rank = kernels.build_bitmaps(
                self.t_ptr, self.t_docs, self.n_docs, min_df
            )
        # Read-only, whether built here or memory-mapped from a store: numba compiles one specialisation per
        # (dtype, layout, writeable) and the warm-up compiles this one, so neither path recompiles on first search.
        for name in (*self.ARRAYS, "t_order"):
            array = getattr(self, name)
            if array.flags.writeable:
                array.flags.writeable = False

    def save(self, writer: StoreWriter) -> None:
        """Write every array as ``<name>.npy`` (what the kernels read, so that loading computes nothing)."""
        for name in self.ARRAYS:
            writer.save_array(name, getattr(self, name))
        if not self.own_order:
            writer.save_array("t_order", self.t_order)

    @classmethod
    def load(cls, reader: StoreReader, n_docs: int, n_terms: int) -> Impacts:
        """The arrays of a store, memory-mapped read-only: loading computes nothing, holds no private copy, and
        processes opening the same index share its pages.

        The checks read the per-term arrays and the bitmaps, and stream the doc ids once through a small buffer
        (a sequential read of 4 bytes a posting; no page of them stays mapped): every position the kernels
        compute from the arrays stays inside them, even for a store whose checksums were forged with its arrays.
        """
        arrays = {name: _mapped(reader, name, dtype) for name, dtype in _DTYPES.items()}
        t_ptr, b_slot = arrays["t_ptr"], arrays["b_slot"]
        n_postings = len(arrays["t_docs"])
        n_words = (n_docs + 63) >> 6
        long_terms = b_slot[b_slot >= 0]
        bad = None
        if any(len(arrays[name]) != n_terms for name in ("t_max", "t_min", "idf", "b_slot")) or len(t_ptr) != (
            n_terms + 1
        ):
            bad = f"scoring arrays not of the vocabulary's {n_terms} terms"
        elif t_ptr[0] != 0 or t_ptr[-1] != n_postings or len(arrays["t_imp"]) != n_postings:
            bad = "postings of inconsistent lengths"
        elif np.any(np.diff(t_ptr) < 0):
            bad = "malformed posting offsets"
        elif b_slot.min(initial=-1) < -1 or not np.array_equal(long_terms, np.arange(len(long_terms))):
            bad = "malformed bitmap slots"
        elif len(arrays["b_words"]) != len(long_terms) * n_words or len(arrays["b_rank"]) != len(arrays["b_words"]):
            bad = "bitmaps of inconsistent lengths"
        elif not _bitmaps_match(arrays["b_words"], arrays["b_rank"], np.diff(t_ptr)[b_slot >= 0], n_words):
            bad = "bitmaps that do not match the postings"
        elif not _ids_below(reader, "t_docs", arrays["t_docs"], n_docs):
            bad = f"document ids outside the {n_docs} documents"
        t_order = None
        if not bad and "t_order.npy" in reader.manifest.get("files", {}):
            t_order = _mapped(reader, "t_order", np.int64)
            if len(t_order) != n_terms or np.any(t_order < np.diff(t_ptr)):
                bad = "corpus-wide posting-list lengths (t_order) that do not match the postings"
        if bad:
            raise IndexFormatError(f"{reader.root}: {bad}; rebuild the index")
        return cls(n_docs=n_docs, t_order=t_order, **arrays)

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


_DTYPES: dict[str, type] = {
    "t_ptr": np.int64,
    "t_docs": np.int32,
    "t_imp": np.float32,
    "t_max": np.float32,
    "t_min": np.float32,
    "idf": np.float64,
    "b_slot": np.int32,
    "b_words": np.uint64,
    "b_rank": np.int32,
}


def _mapped(reader: StoreReader, name: str, dtype: type) -> np.ndarray:
    """A 1-d array of ``dtype`` memory-mapped read-only from the store (a plain ndarray view, no copy)."""
    mapped = reader.load_array(name, mmap=True)
    if mapped.ndim != 1 or mapped.dtype != dtype:
        raise IndexFormatError(
            f"{reader.root}: {name}.npy holds {mapped.dtype}{list(mapped.shape)}, expected 1-d {np.dtype(dtype)}"
        )
    return np.asarray(mapped)


def _bitmaps_match(b_words: np.ndarray, b_rank: np.ndarray, doc_freqs: np.ndarray, n_words: int) -> bool:
    """Each bitmap holds as many documents as its term's posting list and its rank directory counts the bits
    before each word, so that a posting position found through a bitmap lies inside the term's postings."""
    for slot, doc_freq in enumerate(doc_freqs.tolist()):  # one bitmap at a time: no index-sized temporaries
        words = slice(slot * n_words, (slot + 1) * n_words)
        bits = np.bitwise_count(b_words[words]).astype(np.int64)
        ends = np.cumsum(bits)
        if ends[-1] != doc_freq or not np.array_equal(ends - bits, b_rank[words]):
            return False
    return True


def _ids_below(reader: StoreReader, name: str, ids: np.ndarray, limit: int, chunk: int = 1 << 22) -> bool:
    """Whether every id of a memory-mapped int32 array lies in ``[0, limit)``, read from the file in chunks through
    one small buffer: the pages are not mapped into this process (its resident memory does not grow)."""
    buffer = np.empty(min(len(ids), chunk), np.int32)
    file = reader.path(f"{name}.npy")
    with open(file, "rb") as fh:
        fh.seek(file.stat().st_size - ids.nbytes)  # the data ends the file; its header comes first
        for start in range(0, len(ids), chunk):
            block = buffer[: min(chunk, len(ids) - start)]
            if fh.readinto(memoryview(block).cast("B")) != block.nbytes:
                return False
            if block.min() < 0 or block.max() >= limit:
                return False
    return True


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
    embedding: SparseEmbedding,
    variant: str,
    k1: float,
    b: float,
    delta: float,
    epsilon: float = 0.25,
    statistics: CorpusStatistics | None = None,
) -> Impacts:
    """BM25 impacts of ``embedding``'s postings, with ``statistics`` of the whole corpus (default: its own)."""
    stats = statistics or CorpusStatistics.of(embedding)
    idf = bm25_idf(variant, stats.n_docs, stats.doc_freqs, epsilon)
    t_ptr, t_docs, t_counts = embedding.postings()
    avgdl = stats.avgdl or 1.0
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
    return Impacts(t_ptr, t_docs, impacts, t_max, t_min, idf, embedding.n_docs, t_order=_order(statistics))


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


def tfidf_impacts(
    embedding: SparseEmbedding, sublinear_tf: bool = False, statistics: CorpusStatistics | None = None
) -> Impacts:
    """TF-IDF impacts of ``embedding``'s postings, with ``statistics`` of the whole corpus (default: its own)."""
    stats = statistics or CorpusStatistics.of(embedding)
    idf = tfidf_idf(stats.n_docs, stats.doc_freqs)
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
    return Impacts(t_ptr, t_docs, impacts, t_max, t_min, idf, embedding.n_docs, t_order=_order(statistics))


def _order(statistics: CorpusStatistics | None) -> np.ndarray | None:
    """The summation-order key of a shard's impacts: the corpus-wide posting-list lengths (None: its own)."""
    return None if statistics is None else np.ascontiguousarray(statistics.doc_freqs, dtype=np.int64)


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
