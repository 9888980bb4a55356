"""Where a run's time goes: its stages, with model training done inside them counted apart.

A pipeline stage may train a model on the way (the bundled sample's demo DPR is trained when the corpus is indexed,
the demo reader when the reader loads its model): code that trains wraps the work in :func:`training`, and a
:class:`StageTimer` moves that time from the stage it happened in to ``train_s``. So ``summary.json`` says how long
indexing, retrieval and reading took by themselves, and how long the training triggered by the run took.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

_lock = threading.Lock()
_trained_seconds = 0.0
_depth = 0


@contextlib.contextmanager
def training() -> Iterator[None]:
    """Count the block's wall time as model training (a block inside another counts once, in the outer one)."""
    global _depth, _trained_seconds
    with _lock:
        _depth += 1
        outer = _depth == 1
    start = time.perf_counter()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if outer:
                _trained_seconds += time.perf_counter() - start


def training_seconds() -> float:
    """Seconds spent in :func:`training` blocks by this process so far (finished blocks only)."""
    return _trained_seconds


class StageTimer:
    """Seconds per stage (``index_s``, ``retrieve_s``, ``read_s``, ...), a stage entered twice adding up, and
    ``train_s``: the training done inside the stages (:func:`training`), not counted in them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"train_s": 0.0}

    @contextlib.contextmanager
    def stage(self, key: str) -> Iterator[None]:
        start, trained = time.perf_counter(), training_seconds()
        try:
            yield
        finally:
            trained = training_seconds() - trained
            elapsed = time.perf_counter() - start
            self.seconds[key] = self.seconds.get(key, 0.0) + max(elapsed - trained, 0.0)
            self.seconds["train_s"] += trained

    def as_dict(self, digits: int = 3) -> dict[str, float]:
        return {key: round(value, digits) for key, value in self.seconds.items()}
