"""The sparse embedding of a tokenized corpus: vocabulary and document × term counts, built once.

Every weighting (TF-IDF, the BM25 variants) is computed from the same :class:`SparseEmbedding`, so switching or
comparing weightings never re-tokenizes or re-counts the corpus.

Building streams the token lists: each token costs one dict lookup and four bytes in a flat ``int32`` array; the
per-document counts are then made by a compiled pass (no per-token Python objects survive a document).
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from odqa_core import IndexFormatError
from odqa_core.storage import StoreReader, StoreWriter

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["SparseEmbedding"]


class SparseEmbedding:
    """Vocabulary and term counts of a corpus.

    - ``vocabulary``: the terms, in id order (first occurrence in the corpus); ``term_ids`` maps term → id;
    - ``counts``: ``scipy.sparse.csr_array`` (documents × terms, int32, sorted indices);
    - ``doc_lengths``: tokens per document (int64), ``doc_freqs``: documents per term (int64).

    The counts exist in two layouts, each made from the other on demand: document-major (``counts``) and
    term-major (:meth:`postings`). A retriever keeps only the term-major one (its impacts share the doc ids): the
    document-major matrix costs 8 bytes a posting and is needed only by TF-IDF's document norms at indexing time
    and by callers of ``counts`` (:meth:`from_postings`, :meth:`drop_counts`).
    """

    def __init__(
        self,
        vocabulary: Sequence[Hashable],
        counts: sp.csr_array | None,
        doc_lengths: np.ndarray,
        term_ids: dict[Hashable, int] | None = None,
        postings: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if counts is None and postings is None:
            raise ValueError("a SparseEmbedding needs its counts, document-major or term-major")
        self.vocabulary = list(vocabulary)
        self.term_ids: dict[Hashable, int] = (
            term_ids if term_ids is not None else {t: i for i, t in enumerate(self.vocabulary)}
        )
        self._counts = counts
        self.doc_lengths = np.asarray(doc_lengths, dtype=np.int64)
        self._postings = postings
        self._doc_freqs: np.ndarray | None = None

    @classmethod
    def from_postings(
        cls,
        vocabulary: Sequence[Hashable],
        postings: tuple[np.ndarray, np.ndarray, np.ndarray],
        doc_lengths: np.ndarray,
        term_ids: dict[Hashable, int] | None = None,
    ) -> SparseEmbedding:
        """An embedding from term-major counts ``(t_ptr int64, t_docs int32, t_counts int32)`` (e.g. memory-mapped
        from an index); the document-major ``counts`` are made on first access."""
        return cls(vocabulary, None, doc_lengths, term_ids, postings)

    # ------------------------------------------------------------------------------------------------ building

    @classmethod
    def build(
        cls, token_lists: Iterable[Iterable[Hashable]], progress: Callable[[int], Any] | None = None
    ) -> SparseEmbedding:
        """Build from an iterable (e.g. a generator) of token lists, one per document.

        ``progress(n)``, when given, is called after every 1024 documents with that count.
        """
        from odqa_sparse import kernels

        ids: defaultdict[Hashable, int] = defaultdict()
        ids.default_factory = ids.__len__  # an unseen term gets the next id
        lookup = ids.__getitem__
        flat = array("i")
        ends = array("q")
        extend = flat.extend
        for n, tokens in enumerate(token_lists, 1):
            extend(map(lookup, tokens))
            ends.append(len(flat))
            if progress is not None and n % 1024 == 0:
                progress(1024)
        if progress is not None and len(ends) % 1024:
            progress(len(ends) % 1024)
        n_docs, n_terms = len(ends), len(ids)
        tok_ptr = np.zeros(n_docs + 1, np.int64)
        if n_docs:
            tok_ptr[1:] = np.frombuffer(ends, dtype=np.int64)
        flat_ids = np.frombuffer(flat, dtype=np.int32) if len(flat) else np.zeros(0, np.int32)
        indptr, indices, data = kernels.count_documents(flat_ids, tok_ptr, n_terms)
        del flat_ids, flat
        counts = _csr(data, indices, indptr, (n_docs, n_terms))
        term_ids = dict(ids)
        return cls(list(term_ids), counts, np.diff(tok_ptr), term_ids)

    # ---------------------------------------------------------------------------------------------- properties

    @property
    def n_docs(self) -> int:
        return len(self.doc_lengths)

    @property
    def n_terms(self) -> int:
        return len(self.vocabulary)

    @property
    def counts(self) -> sp.csr_array:
        """Documents × terms counts (``scipy.sparse.csr_array`` int32, sorted indices); made from the term-major
        postings on first access when the embedding was made without them."""
        if self._counts is None:
            from odqa_sparse import kernels

            t_ptr, t_docs, t_counts = self._postings  # type: ignore[misc]
            # A CSR transpose: the terms' rows become the documents' columns, in ascending term order.
            indptr, indices, data = kernels.transpose_counts(t_ptr, t_docs, t_counts, self.n_docs)
            if len(data) and data.min() <= 0:
                raise IndexFormatError("malformed term counts (a count <= 0); rebuild the index")
            self._counts = _csr(data, indices, indptr, (self.n_docs, self.n_terms))
        return self._counts

    @property
    def doc_freqs(self) -> np.ndarray:
        """Documents per term (int64)."""
        if self._doc_freqs is None:
            if self._postings is not None:
                self._doc_freqs = np.diff(self._postings[0]).astype(np.int64)
            else:
                self._doc_freqs = np.bincount(self.counts.indices, minlength=self.n_terms).astype(np.int64)
        return self._doc_freqs

    @property
    def avgdl(self) -> float:
        """Mean document length in tokens (0 for an empty corpus)."""
        return float(self.doc_lengths.sum() / self.n_docs) if self.n_docs else 0.0

    def postings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Term-major counts ``(t_ptr int64, t_docs int32, t_counts int32)``: per term, ascending doc ids."""
        if self._postings is None:
            from odqa_sparse import kernels

            c = self._counts
            self._postings = kernels.transpose_counts(
                c.indptr.astype(np.int64, copy=False), c.indices, c.data, self.n_terms
            )
        return self._postings

    def drop_postings(self) -> None:
        """Forget the term-major counts when the document-major ones are there to rebuild them on demand."""
        if self._counts is not None:
            self._postings = None

    def drop_counts(self) -> None:
        """Forget the document-major counts, keeping the term-major ones (made now if needed); ``counts`` rebuilds
        them on demand."""
        self.postings()
        self._counts = None

    # ------------------------------------------------------------------------------------------------- queries

    def query_arrays(self, token_lists: Sequence[Iterable[Hashable]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Queries as CSR arrays ``(ptr int64, term ids int32 sorted per query, counts int32)``.

        Unknown terms are dropped; repeated terms are counted.
        """
        get = self.term_ids.get
        if isinstance(token_lists, (list, tuple)) and len(token_lists) == 1:
            # One question (serving): the vectorized path's fixed cost (a dozen numpy calls, ~40 µs) would be most
            # of a search on a large corpus; sorting a few ids in Python gives the same arrays in a few µs.
            ids = sorted([i for i in map(get, token_lists[0]) if i is not None])
            terms: list[int] = []
            counts: list[int] = []
            for i in ids:
                if terms and terms[-1] == i:
                    counts[-1] += 1
                else:
                    terms.append(i)
                    counts.append(1)
            return np.array((0, len(terms)), np.int64), np.array(terms, np.int32), np.array(counts, np.int32)
        flat = array("i")
        ends = array("q")
        for tokens in token_lists:
            flat.extend(map(get, tokens, repeat(-1)))
            ends.append(len(flat))
        n_q = len(ends)
        lengths = np.diff(np.frombuffer(ends, dtype=np.int64), prepend=0) if n_q else np.zeros(0, np.int64)
        ids = np.frombuffer(flat, dtype=np.int32) if len(flat) else np.zeros(0, np.int32)
        rows = np.repeat(np.arange(n_q, dtype=np.int64), lengths)
        known = ids >= 0
        keys = rows[known] * max(self.n_terms, 1) + ids[known]
        keys, counts = np.unique(keys, return_counts=True)
        q_rows = keys // max(self.n_terms, 1)
        terms = (keys - q_rows * max(self.n_terms, 1)).astype(np.int32)
        ptr = np.zeros(n_q + 1, np.int64)
        np.cumsum(np.bincount(q_rows, minlength=n_q), out=ptr[1:])
        return ptr, terms, counts.astype(np.int32)

    def query_counts(self, token_lists: Sequence[Iterable[Hashable]]) -> sp.csr_array:
        """Queries × terms count matrix (int32); unknown terms are dropped."""
        ptr, terms, counts = self.query_arrays(token_lists)
        return _csr(counts, terms, ptr, (len(ptr) - 1, self.n_terms))

    # --------------------------------------------------------------------------------------------- persistence

    def save(self, writer: StoreWriter, prefix: str = "") -> None:
        """Write ``vocabulary.json`` (a JSON list) and the count arrays as ``.npy``."""
        writer.save_json(f"{prefix}vocabulary", self.vocabulary)
        writer.save_array(f"{prefix}counts_indptr", self.counts.indptr.astype(np.int64, copy=False))
        writer.save_array(f"{prefix}counts_indices", self.counts.indices.astype(np.int32, copy=False))
        writer.save_array(f"{prefix}counts_data", self.counts.data.astype(np.int32, copy=False))
        writer.save_array(f"{prefix}doc_lengths", self.doc_lengths)

    @classmethod
    def load(cls, reader: StoreReader, prefix: str = "") -> SparseEmbedding:
        vocabulary, term_ids = load_vocabulary(reader, f"{prefix}vocabulary")
        indptr = _typed(reader, f"{prefix}counts_indptr", np.int64, 1)
        indices = _typed(reader, f"{prefix}counts_indices", np.int32, 1)
        data = _typed(reader, f"{prefix}counts_data", np.int32, 1)
        doc_lengths = _typed(reader, f"{prefix}doc_lengths", np.int64, 1)
        n_docs, n_terms = len(indptr) - 1, len(vocabulary)
        bad = None
        if n_docs < 0 or indptr[0] != 0 or indptr[-1] != len(indices) or len(data) != len(indices):
            bad = "count arrays of inconsistent lengths"
        elif len(doc_lengths) != n_docs:
            bad = f"{len(doc_lengths)} document lengths for {n_docs} documents"
        elif len(indices) and (indices.min() < 0 or indices.max() >= n_terms):
            bad = "term ids outside the vocabulary"
        elif np.any(np.diff(indptr) < 0) or (len(data) and data.min() <= 0):
            bad = "malformed count arrays"
        if bad:
            raise IndexFormatError(f"{reader.root}: {bad}; rebuild the index")
        return cls(vocabulary, _csr(data, indices, indptr, (n_docs, n_terms)), doc_lengths, term_ids)


def load_vocabulary(reader: StoreReader, name: str) -> tuple[list[Hashable], dict[Hashable, int]]:
    """A stored vocabulary (a JSON list of distinct terms) and its term → id map."""
    vocabulary = reader.load_json(name)
    if not isinstance(vocabulary, list):
        raise IndexFormatError(f"{reader.root}: {name}.json is not a JSON list")
    try:
        term_ids = {term: i for i, term in enumerate(vocabulary)}
    except TypeError:  # a list or an object among the terms
        raise IndexFormatError(f"{reader.root}: {name}.json holds a term that is not a string") from None
    if len(term_ids) != len(vocabulary):
        raise IndexFormatError(f"{reader.root}: duplicate vocabulary entries; rebuild the index")
    return vocabulary, term_ids


def _csr(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    import scipy.sparse as sp  # here, not at import: a loaded index searches without the document-major matrix

    matrix = sp.csr_array((data, indices, indptr), shape=shape, copy=False)
    matrix.has_sorted_indices = True
    return matrix


def _typed(reader: StoreReader, name: str, dtype: type, ndim: int) -> np.ndarray:
    array_ = reader.load_array(name)
    if array_.ndim != ndim or array_.dtype != dtype:
        raise IndexFormatError(
            f"{reader.root}: {name}.npy holds {array_.dtype}{list(array_.shape)}, expected {ndim}-d {np.dtype(dtype)}"
        )
    return array_
