"""The few data types every stage shares.

Documents and questions are frozen dataclasses; ranked results are arrays of shape (questions, k) so that a batch
of questions moves through retrieval, fusion and evaluation as one object, never one question at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where arrays are made, so that `import odqa_core` (and `odqa --help`) is fast
    import numpy as np

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Document:
    """A document or a passage of one.

    ``metadata["source_ids"]`` (when present) lists the ids of the original documents this text stands for: the
    document a passage was cut from, or every document whose identical text was deduplicated into this one.
    """

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("source_ids", (self.id,)))

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "title": self.title, "text": self.text}
        if self.metadata:
            row["metadata"] = dict(self.metadata)
        return row

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Document:
        meta = row.get("metadata") or {}
        if "source_ids" in meta:
            meta = {**meta, "source_ids": tuple(meta["source_ids"])}
        return cls(id=str(row["id"]), text=row["text"], title=row.get("title") or "", metadata=meta)


@dataclass(frozen=True, slots=True)
class Question:
    """A question, with its gold answers and gold document ids when known (both may be empty)."""

    id: str
    text: str
    answers: tuple[str, ...] = ()
    answer_starts: tuple[int, ...] = ()
    doc_ids: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class RankedResults:
    """Ranked hits for a batch of questions, best first.

    ``indices`` (int64) are rows of the searched document table ``documents``; ``scores`` (float32) are the
    scores of those rows. Both have shape ``(n_questions, k)``. Rows are sorted by descending score; ties are
    broken by ascending index so results are deterministic.
    """

    indices: np.ndarray
    scores: np.ndarray
    documents: Sequence[Document]

    def __post_init__(self) -> None:
        if self.indices.shape != self.scores.shape or self.indices.ndim != 2:
            raise ValueError(f"indices {self.indices.shape} and scores {self.scores.shape} must be equal 2-d shapes")

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def __len__(self) -> int:
        return self.indices.shape[0]

    def ids(self) -> np.ndarray:
        """Document ids as an object array of shape (n_questions, k)."""
        import numpy as np

        # Look up only the rows that were retrieved: the document table may be millions long.
        rows, inverse = np.unique(self.indices, return_inverse=True)
        table = np.array([self.documents[i].id for i in rows.tolist()], dtype=object)
        return table[inverse].reshape(self.indices.shape)

    def hits(self, row: int) -> list[tuple[Document, float]]:
        """The ranked (document, score) pairs of one question."""
        return [(self.documents[i], float(s)) for i, s in zip(self.indices[row].tolist(), self.scores[row].tolist())]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One candidate answer to a question."""

    question_id: str
    answer: str
    score: float = 0.0
    doc_id: str | None = None
    start: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of a dense score matrix, best first, ties by ascending column.

    Shared by every component that ends with a dense (questions × candidates) matrix, so that they all break ties
    the same way.
    """
    import numpy as np

    scores = np.asarray(scores)
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return np.zeros((scores.shape[0], 0), np.int64), np.zeros((scores.shape[0], 0), np.float32)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        # Include every column tied with the k-th score so the tie-break below is exact.
        kth = np.take_along_axis(scores, part, 1).min(axis=1, keepdims=True)
        cand = [np.flatnonzero(row >= t) for row, t in zip(scores, kth[:, 0])]
    else:
        cand = [np.arange(n)] * scores.shape[0]
    idx = np.empty((scores.shape[0], k), np.int64)
    for r, c in enumerate(cand):
        order = np.lexsort((c, -scores[r, c]))[:k]
        idx[r] = c[order]
    return idx, np.take_along_axis(scores, idx, 1).astype(np.float32)


def top_k_candidates(scores: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of ``scores`` (Q, C) over the document rows ``candidates`` (Q, C), best first.

    Ties are broken by ascending document index (not by column), as in every ranking. A candidate of ``-1`` is a
    padding slot: it ranks after every real candidate and must not be among the ``k`` kept (callers size ``k`` to
    the number of real candidates per row).
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float32)
    candidates = np.asarray(candidates, dtype=np.int64)
    k = min(k, candidates.shape[1])
    if k == 0 or candidates.shape[0] == 0:
        return np.zeros((candidates.shape[0], k), np.int64), np.zeros((candidates.shape[0], k), np.float32)
    pad = candidates < 0
    key_scores = np.where(pad, np.float32(np.inf), -scores)  # padding sorts last
    key_index = np.where(pad, np.iinfo(np.int64).max, candidates)
    order = np.lexsort((key_index, key_scores), axis=-1)[:, :k]
    return np.take_along_axis(candidates, order, 1), np.take_along_axis(scores, order, 1)
