"""Retrievers and corpora shared by the fusion tests.

``VectorRetriever`` is a small dense retriever (seeded random vectors per word, summed and normalised): distinct
float scores, like a bi-encoder's, without torch. ``TransformedRetriever`` wraps another retriever and maps its
scores through a strictly increasing function (for the RRF invariance property).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

from odqa_core import DataError, Document, RankedResults, Retriever, UsageError
from odqa_core.types import top_k_rows


def word_vector(word: str, dim: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(word.encode("utf-8")))
    return rng.standard_normal(dim).astype(np.float32)


def embed(texts: Sequence[str], dim: int) -> np.ndarray:
    out = np.zeros((len(texts), dim), np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row] += word_vector(word, dim)
        norm = np.linalg.norm(out[row])
        if norm > 0:
            out[row] /= norm
    return out


class VectorRetriever(Retriever):
    """Dense stand-in: ``score = E(q) · E(d)`` with E the normalised sum of seeded random word vectors.

    Like DPR it can score passages it has not indexed (:meth:`score_documents`); ``encoded`` counts the passages
    it embedded that way.
    """

    name = "vec"
    scores_unindexed = True

    def __init__(self, *, dim: int = 16) -> None:
        self.dim = dim
        self._documents: list[Document] = []
        self._vectors = np.zeros((0, dim), np.float32)
        self.encoded = 0

    @property
    def documents(self) -> list[Document]:
        return self._documents

    def index(self, documents: Sequence[Document]) -> None:
        if not documents:
            raise DataError("cannot index an empty corpus")
        self._documents = list(documents)
        self._vectors = embed([d.text for d in documents], self.dim)

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        if not self._documents:
            raise UsageError("retriever 'vec' has no index yet")
        return embed(list(queries), self.dim) @ self._vectors.T

    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        k = min(k, len(self._documents))
        indices, scores = top_k_rows(self.score_all(queries).reshape(len(queries), -1), k)
        return RankedResults(indices, scores, self._documents)

    def score_documents(self, queries, documents, candidates) -> np.ndarray:
        rows, inverse = np.unique(candidates, return_inverse=True)
        self.encoded += len(rows)
        vectors = embed([documents[i].text for i in rows.tolist()], self.dim)
        q = embed(list(queries), self.dim)
        return np.einsum("qd,qcd->qc", q, vectors[inverse.reshape(candidates.shape)]).astype(np.float32)

    def save_state(self, writer) -> None:
        writer.save_array("vectors", self._vectors)

    @classmethod
    def load_state(cls, reader, documents) -> VectorRetriever:
        retriever = cls(**reader.config)
        retriever._documents = documents
        retriever._vectors = reader.load_array("vectors")
        return retriever


class TransformedRetriever(Retriever):
    """Another retriever's scores through ``transform`` (strictly increasing), re-ranked from scratch."""

    def __init__(self, inner: Retriever, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        self.inner = inner
        self.transform = transform
        self.name = inner.name  # type: ignore[misc]

    @property
    def documents(self) -> Sequence[Document]:
        return self.inner.documents

    def index(self, documents) -> None:
        raise NotImplementedError

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        return self.transform(self.inner.score_all(queries).astype(np.float64)).astype(np.float32)

    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        indices, scores = top_k_rows(self.score_all(queries), min(k, len(self.documents)))
        return RankedResults(indices, scores, self.documents)

    def save_state(self, writer) -> None:
        raise NotImplementedError

    @classmethod
    def load_state(cls, reader, documents):
        raise NotImplementedError


class SpyRetriever(TransformedRetriever):
    """Records the number of questions of every ``score_all`` call (the block sizes of whole mode)."""

    def __init__(self, inner: Retriever) -> None:
        super().__init__(inner, lambda s: s)
        self.calls: list[int] = []

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        self.calls.append(len(queries))
        return self.inner.score_all(queries)


WORDS = [
    "서울",
    "부산",
    "한강",
    "강",
    "바다",
    "산",
    "도시",
    "항구",
    "시장",
    "김치",
    "배추",
    "마늘",
    "river",
    "sea",
    "city",
    "port",
    "market",
    "mountain",
    "seoul",
    "busan",
]


def random_corpus(rng: np.random.Generator, n_docs: int, n_queries: int) -> tuple[list[Document], list[str]]:
    """Documents and queries of 1-12 words from a small shared vocabulary (so that scores often tie)."""

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi + 1))).tolist())

    documents = [Document(f"d{i}", text(1, 12), "") for i in range(n_docs)]
    return documents, [text(1, 5) for _ in range(n_queries)]


def assert_same_ranking(a: RankedResults, b: RankedResults, tol: float = 1e-5) -> None:
    """Equal scores (to ``tol``), and equal documents except inside groups of scores within ``tol``."""
    np.testing.assert_allclose(a.scores, b.scores, rtol=tol, atol=tol)
    for row in range(len(a)):
        sa, ia, ib = a.scores[row], a.indices[row], b.indices[row]
        start = 0
        while start < len(sa):
            stop = start + 1
            while stop < len(sa) and abs(sa[stop - 1] - sa[stop]) <= tol * max(1.0, abs(sa[stop])):
                stop += 1
            if stop == len(sa):  # a group cut by k may hold different members
                break
            assert sorted(ia[start:stop].tolist()) == sorted(ib[start:stop].tolist()), (row, start, ia, ib)
            start = stop
