"""Grid search over a fuser's options on dev questions (``odqa tune``).

Every cell of the grid builds the fuser with that cell's options and runs the real :meth:`Fuser.fuse`, so the
setting reported best is exactly what ``odqa retrieve`` / ``odqa run`` will do with it; each cell is evaluated
like any run. What the cells share — the retrievers' searches and scores for the same questions — is computed
once: the retrievers are wrapped in :class:`CachedRetriever`, so a grid over λ and normalizations costs about one
fusion, not one per cell.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odqa_core import plugins
from odqa_core.errors import UsageError
from odqa_core.evaluation import evaluate_retrieval, hits_from_results
from odqa_core.interfaces import Retriever
from odqa_core.pipeline import retrieve
from odqa_core.progress import progress
from odqa_core.storage import StoreReader, StoreWriter
from odqa_core.types import Document, Question, RankedResults
from odqa_experiments.grid import grid_cells, option_text

#: Bytes of results :class:`CachedRetriever` keeps by default.
DEFAULT_CACHE_BYTES = 2 << 30


def parse_grid(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """``["lam=0.5,1,2", "normalization=none,z-score", 'weights=[{"dpr": 2}, {"dpr": 3}]']`` → axes.

    A value list is either a JSON array or comma-separated values, each parsed as JSON when it parses (so
    ``1.5`` is a number and ``min-max`` a string).
    """
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise UsageError(f"--grid {pair!r} is not of the form key=v1,v2,...")
        if key in grid:
            raise UsageError(f"--grid names {key!r} twice")
        if value.lstrip().startswith("["):
            try:
                values = json.loads(value)
            except ValueError as exc:
                raise UsageError(f"--grid {key}: {value!r} is not a JSON array ({exc})") from None
        else:
            values = []
            for item in value.split(","):
                try:
                    values.append(json.loads(item))
                except ValueError:
                    values.append(item.strip())
        if not values:
            raise UsageError(f"--grid {key}: no values")
        grid[key] = values
    return grid


class CachedRetriever(Retriever):
    """A retriever whose searches and scores are remembered by their arguments (up to ``max_bytes``).

    For grids that call the same retrievers with the same questions many times. Not registered, not storable.
    """

    def __init__(self, inner: Retriever, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # fusers match retrievers by name
        self.scores_unindexed = inner.scores_unindexed  # type: ignore[misc]
        self.max_bytes = max_bytes
        self.used_bytes = 0
        self._cache: dict[tuple, Any] = {}
        self._tables: dict[int, Sequence[Document]] = {}

    def config(self) -> dict[str, Any]:
        return self.inner.config()

    @property
    def documents(self) -> Sequence[Document]:
        return self.inner.documents

    def __getattr__(self, name: str) -> Any:  # passage_vectors, encode_queries ... of the wrapped retriever
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _remember(self, key: tuple, compute: Any) -> Any:
        """The cached value of ``key`` (computed on the first call), as a copy: callers may change their arrays in
        place (fusers normalise scores in place)."""
        value = self._cache.get(key)
        if value is None:
            value = compute()
            arrays = [value.indices, value.scores] if isinstance(value, RankedResults) else [value]
            size = sum(a.nbytes for a in arrays)
            if self.used_bytes + size > self.max_bytes:
                return value
            self._cache[key] = value
            self.used_bytes += size
        if isinstance(value, RankedResults):
            return RankedResults(value.indices.copy(), value.scores.copy(), value.documents)
        return value.copy()

    @staticmethod
    def _digest(array: np.ndarray) -> str:
        array = np.ascontiguousarray(array)
        return f"{array.shape}{array.dtype}" + hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()

    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        return self._remember(("search", tuple(queries), k), lambda: self.inner.search(queries, k))

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        return self._remember(("score_all", tuple(queries)), lambda: self.inner.score_all(queries))

    def score(self, queries: Sequence[str], candidates: np.ndarray) -> np.ndarray:
        key = ("score", tuple(queries), self._digest(candidates))
        return self._remember(key, lambda: self.inner.score(queries, candidates))

    def score_documents(self, queries: Sequence[str], documents: Sequence[Document], candidates: np.ndarray):
        self._tables[id(documents)] = documents  # kept alive, so that its id stays its own
        key = ("score_documents", tuple(queries), id(documents), self._digest(candidates))
        return self._remember(key, lambda: self.inner.score_documents(queries, documents, candidates))

    def index(self, documents: Sequence[Document]) -> None:
        raise UsageError("a cached retriever cannot be re-indexed")

    def save_state(self, writer: StoreWriter) -> None:
        raise UsageError("a cached retriever is not stored; save the retriever it wraps")

    @classmethod
    def load_state(cls, reader: StoreReader, documents: list[Document]) -> Retriever:
        raise UsageError("a cached retriever is not stored")


@dataclass
class TuneReport:
    """Every cell's options and metrics, sorted best first by ``metric`` of hit kind ``hit``."""

    fuser: str
    base_options: dict[str, Any]
    grid: dict[str, list[Any]]
    hit: str
    metric: str
    ks: tuple[int, ...]
    cells: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any]:
        return self.cells[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "fuser": self.fuser,
            "base_options": self.base_options,
            "grid": self.grid,
            "hit": self.hit,
            "metric": self.metric,
            "ks": list(self.ks),
            "best": self.best,
            "cells": self.cells,
        }

    def columns(self) -> list[str]:
        names = [f"acc@{k}" for k in self.ks]
        if f"mrr@{self.metric.partition('@')[2]}" not in names:
            names.append(f"mrr@{self.metric.partition('@')[2]}")
        return [n for n in dict.fromkeys([self.metric, *names]) if n in self.best["metrics"]]

    def table(self) -> str:
        keys = list(self.grid)
        cols = self.columns()
        header = ["rank", *keys, *cols, "s"]
        rows = [header]
        for rank, cell in enumerate(self.cells, 1):
            values = [option_text(cell["options"][k]) for k in keys]
            rows.append([str(rank), *values, *(f"{cell['metrics'][c]:.4f}" for c in cols), f"{cell['seconds']:.2f}"])
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        best = self.best
        setting = " ".join(f"-o {self.fuser}.{k}={option_text(v)}" for k, v in best["options"].items())
        lines.append(
            f"best ({self.hit} {self.metric} = {best['metrics'][self.metric]:.4f} over "
            f"{best['n_questions']} questions): {setting}"
        )
        return "\n".join(lines)


def tune_fuser(
    fuser: str,
    base_options: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    retrievers: Sequence[Retriever],
    questions: Sequence[Question],
    *,
    top_k: int = 100,
    ks: Sequence[int] = (1, 5, 10, 20, 100),
    metric: str = "acc@20",
    hit: str | None = None,
    batch_size: int = 1024,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> TuneReport:
    """Evaluate the fuser once per grid cell (``base_options`` overridden by the cell) and rank the cells.

    ``hit`` is ``doc`` (gold document retrieved) or ``answer`` (a passage contains an answer); by default
    ``doc`` when the questions have gold document ids, else ``answer``.
    """
    if not grid:
        raise UsageError("give at least one axis to tune (--grid key=v1,v2,...)")
    if not questions:
        raise UsageError("no questions to tune on")
    overlap = sorted(set(grid) & set(base_options))
    if overlap:
        raise UsageError(f"option {overlap[0]!r} is both fixed (-o) and tuned (--grid)")
    kind, _, cut = metric.partition("@")
    if kind not in ("acc", "mrr", "recall") or not cut.isdigit() or int(cut) < 1:
        raise UsageError(f"--metric must be acc@K, mrr@K or recall@K, got {metric!r}")
    if int(cut) > top_k:
        raise UsageError(f"--metric {metric} looks deeper than --top-k {top_k}")
    ks = tuple(sorted({*ks, int(cut)}))
    if hit is None:
        hit = "doc" if any(q.doc_ids for q in questions) else "answer"
    if hit not in ("doc", "answer"):
        raise UsageError(f"--hit must be doc or answer, got {hit!r}")
    cells = grid_cells(grid)
    # Validate every cell's options before running any (a typo fails now, not after an hour).
    fusers = [plugins.create("fuser", fuser, {**base_options, **cell}) for cell in cells]
    cached = [r if isinstance(r, CachedRetriever) else CachedRetriever(r, cache_bytes) for r in retrievers]
    fusers[0].check_ready(cached)
    for component in fusers[1:]:  # name-dependent options (weights by name, lam_on) of every cell
        component.check_names([r.name for r in cached])
    report = TuneReport(fuser, dict(base_options), {k: list(v) for k, v in grid.items()}, hit, metric, ks)
    with progress(len(cells), f"tune {fuser}", "cell") as bar:
        for cell, component in zip(cells, fusers):
            start = time.perf_counter()
            results = retrieve(cached, component, questions, top_k, batch_size, bar=False)
            evaluation = evaluate_retrieval(questions, hits_from_results(results), ks)
            if hit not in evaluation.metrics:
                raise UsageError(
                    f"the questions have no {'gold document ids' if hit == 'doc' else 'answers'} to score "
                    f"--hit {hit}; use --hit {'answer' if hit == 'doc' else 'doc'}"
                )
            metrics = evaluation.metrics[hit]
            if metric not in metrics:
                raise UsageError(
                    f"--metric {metric} is not measured for --hit {hit} at retrieval depth {evaluation.depth} "
                    f"(measured: {', '.join(metrics)})"
                )
            report.cells.append(
                {
                    "options": {**base_options, **cell},
                    "metrics": metrics,
                    "n_questions": evaluation.counts[hit],
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
            bar.update(1)
    # Best first; ties go to the better MRR at the same depth, then to the first-listed setting (stable sort).
    tie_break = f"mrr@{cut}"
    report.cells.sort(key=lambda c: (-c["metrics"][metric], -c["metrics"].get(tie_break, 0.0)))
    return report
