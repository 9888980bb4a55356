"""The arithmetic of fusion on (questions × candidates) arrays: normalization, unions of lists, list lookups.

Everything works on whole batches of questions at once; nothing loops over questions or documents in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NORMALIZATIONS = ("none", "min-max", "z-score")


def row_stats(scores: np.ndarray, normalization: str) -> tuple[np.ndarray, np.ndarray]:
    """``(shift, scale)`` per row, float32 ``(Q, 1)``: the normalized score is ``(s - shift) / scale``.

    ``min-max`` maps a row's range onto [0, 1] and ``z-score`` its mean and standard deviation onto 0 and 1,
    both computed in float64. A row without spread (all scores equal) is only shifted, to 0.
    """
    n = scores.shape[0]
    if normalization == "none" or scores.shape[1] == 0:
        return np.zeros((n, 1), np.float32), np.ones((n, 1), np.float32)
    if normalization == "min-max":
        lo = scores.min(axis=1).astype(np.float64)
        spread = scores.max(axis=1).astype(np.float64) - lo
        shift = lo
    elif normalization == "z-score":
        shift = scores.mean(axis=1, dtype=np.float64)
        spread = scores.std(axis=1, dtype=np.float64)
    else:
        raise ValueError(f"unknown normalization {normalization!r}")
    scale = np.where(spread > 0, spread, 1.0)
    return shift.astype(np.float32)[:, None], scale.astype(np.float32)[:, None]


def normalize_(scores: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(scores - shift) / scale`` in place (float32), returned."""
    scores -= shift
    scores /= scale
    return scores


def union_candidates(lists: Sequence[np.ndarray]) -> np.ndarray:
    """The union of each row's document indices over several ``(Q, D_i)`` lists: ``(Q, ΣD_i)`` int64.

    Each document appears once per row; the slots left over by duplicates hold ``-1`` (padding, which
    :func:`odqa_core.types.top_k_candidates` ranks last).
    """
    union = np.sort(np.concatenate([np.asarray(a, np.int64) for a in lists], axis=1), axis=1)
    if union.shape[1] > 1:
        repeated = np.zeros(union.shape, bool)
        repeated[:, 1:] = union[:, 1:] == union[:, :-1]
        union[repeated] = -1
    return union


class ListLookup:
    """Look values up by (row, document) in one retriever's ranked lists ``indices`` (Q, D), vectorized.

    The lists are sorted once into a single array of keys ``row * n_documents + index``; a lookup is one
    ``np.searchsorted`` over all questions' candidates.
    """

    def __init__(self, indices: np.ndarray, n_documents: int) -> None:
        indices = np.asarray(indices, np.int64)
        self.n = max(1, int(n_documents))
        self.order = np.argsort(indices, axis=1, kind="stable")
        rows = np.arange(indices.shape[0], dtype=np.int64)[:, None]
        self.keys = (rows * self.n + np.take_along_axis(indices, self.order, 1)).ravel()

    def find(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(position, present)`` of every candidate: its column in the original list, and whether it is there.

        ``position`` is 0 where the candidate is absent; padding candidates (``-1``) are never present.
        """
        candidates = np.asarray(candidates, np.int64)
        if self.keys.size == 0:
            return np.zeros(candidates.shape, np.int64), np.zeros(candidates.shape, bool)
        rows = np.arange(candidates.shape[0], dtype=np.int64)[:, None]
        wanted = rows * self.n + candidates
        slot = np.minimum(np.searchsorted(self.keys, wanted), self.keys.size - 1)
        # -1 padding of row r would alias the last document of row r - 1: it is excluded explicitly.
        present = (self.keys[slot] == wanted) & (candidates >= 0)
        column = np.where(present, slot - rows * self.order.shape[1], 0)
        return np.take_along_axis(self.order, column, 1), present

    def values(self, values: np.ndarray, candidates: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
        """``values`` (aligned with the lists) at every candidate, ``fill`` (per row or scalar) where absent."""
        position, present = self.find(candidates)
        if values.shape[1] == 0:
            out = np.zeros(candidates.shape, values.dtype)
        else:
            out = np.take_along_axis(values, position, 1)
        fill = np.broadcast_to(np.asarray(fill, values.dtype), (candidates.shape[0], 1))
        return np.where(present, out, fill)
