"""The fusers: ``sequential`` reranking, ``cross`` (hybrid) score fusion and ``rrf`` (reciprocal rank fusion).

Each fuser names the retrievers it combines by registry name (``bm25`` and ``dpr`` by default); the pipeline
fills them with the retrievers the user chose and creates the rest through the registry, so any retriever plugin
can be fused. They only call the :class:`~odqa_core.Retriever` interface — ``search``, ``score``, ``score_all``
and ``score_documents`` — which every retriever has (the sparse and dense plugins with fast paths).

Rankings follow the odqa convention: best first, ties broken by ascending document index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from odqa_core import Document, Fuser, RankedResults, Retriever, UsageError, options
from odqa_core.types import top_k_candidates, top_k_rows
from odqa_fusion.scoring import NORMALIZATIONS, ListLookup, normalize_, row_stats, union_candidates

__all__ = ["CrossFuser", "RRFFuser", "SequentialFuser"]

#: The retrievers ``cross`` and ``rrf`` fuse when the user names none: a sparse one and a dense one.
DEFAULT_PAIR = ("bm25", "dpr")
#: ``cross``'s λ when neither ``lam`` nor ``weights`` is given: the KLUE competition's ``1.1 · dense + sparse``.
DEFAULT_LAM = 1.1
#: ``cross.lam="sample"``: the λ values tried on the bundled sample's training questions (0: λ's retriever off).
SAMPLE_LAM_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.1, 1.5, 2.0, 3.0)
#: The cut-offs whose accuracy a tuned λ must not lower against λ = 0, and whose mean it maximises.
SAMPLE_LAM_KS = (1, 5, 20)


def _empty(n_queries: int, k: int, documents: Sequence[Document]) -> RankedResults:
    return RankedResults(np.zeros((n_queries, k), np.int64), np.zeros((n_queries, k), np.float32), documents)


def _name(owner: str, option: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{owner}: option {option!r} must be a retriever name, got {value!r}")
    return value


def _check_weights(owner: str, weights: Any) -> Any:
    """``weights``: a list (one per fused retriever, in order) or a table by retriever name; numbers >= 0."""
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        for key, value in weights.items():
            _name(owner, "weights", key)
            options.number(owner, f"weights.{key}", value, minimum=0)
        return dict(weights)
    if isinstance(weights, (list, tuple)) and weights:
        for i, value in enumerate(weights):
            options.number(owner, f"weights[{i}]", value, minimum=0)
        return list(weights)
    raise UsageError(
        f"{owner}: option 'weights' must be a list of numbers or a table {{retriever: weight}}, got {weights!r}"
    )


def _resolve_weights(owner: str, weights: Any, names: Sequence[str]) -> list[float]:
    """One weight per fused retriever (``names`` in fused order) from a list or a table by name (default 1)."""
    if isinstance(weights, list):
        if len(weights) != len(names):
            raise UsageError(f"{owner}: {len(weights)} weights for {len(names)} retrievers ({', '.join(names)})")
        return [float(w) for w in weights]
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise UsageError(f"{owner}: weights name {unknown[0]!r}, which is not fused (fused: {', '.join(names)})")
    if len(set(names)) != len(names):
        raise UsageError(f"{owner}: two fused retrievers are both named {list(names)!r}; give weights as a list")
    return [float(weights.get(n, 1.0)) for n in names]


def _retriever_list(owner: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise UsageError(f"{owner}: option 'retrievers' must be a list of at least 2 retriever names, got {value!r}")
    names = [_name(owner, "retrievers", v) for v in value]
    if len(set(names)) != len(names):
        raise UsageError(f"{owner}: option 'retrievers' names a retriever twice: {names!r}")
    return names


class _NamedRetrieversFuser(Fuser):
    """Shared by ``cross`` and ``rrf``: an optional explicit ``retrievers`` list, else bm25 + dpr."""

    retrievers: list[str] | None

    def slots(self) -> list[str]:
        return list(self.retrievers or DEFAULT_PAIR)

    def fixed_slots(self) -> set[int]:
        return set(range(len(self.retrievers))) if self.retrievers else set()

    def fused_weights(self, names: Sequence[str]) -> list[float]:
        """One weight per fused retriever: ``weights`` (a list, or a table by name), else 1 each."""
        if self.weights is None:
            return [1.0] * len(names)
        return _resolve_weights(f"fuser {self.name!r}", self.weights, names)

    def check_names(self, names: Sequence[str]) -> None:
        super().check_names(names)
        self.fused_weights(names)

    def fuse(self, retrievers: Sequence[Retriever], queries: Sequence[str], k: int) -> RankedResults:
        table = self.check_ready(retrievers)
        weights = self.fused_weights([r.name for r in retrievers])
        k = min(k, len(table))
        if not queries or k == 0:
            return _empty(len(queries), k, table)
        indices, scores = self.fuse_weighted(retrievers, weights, queries, k, table)
        return RankedResults(indices, scores, table)

    def fuse_weighted(self, retrievers, weights, queries, k, table) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, scores)`` of the fused top ``k`` (``1 <= k <= len(table)``, at least one query)."""
        raise NotImplementedError


class SequentialFuser(Fuser):
    """Rerank a first stage's top ``candidates`` with a second stage (BM25's top 100 → DPR's top k).

    The second stage scores only the candidates: with the stored passage vectors of its index when it has one
    (:meth:`~odqa_core.Retriever.score`), else by encoding just those passages
    (:meth:`~odqa_core.Retriever.score_documents`; a pipeline does not build an index it would not use). The
    ranking is the second stage's scores, and never holds a passage outside the candidates. A ``k`` above
    ``candidates`` widens the first stage to ``k``, so the ranking is as long as asked.
    """

    name = "sequential"
    min_retrievers = 2
    max_retrievers = 2

    STAGES: ClassVar[tuple[str, str]] = ("bm25", "dpr")

    def __init__(self, *, first: str | None = None, second: str | None = None, candidates: int = 100) -> None:
        owner = f"fuser {self.name!r}"
        self.first = None if first is None else _name(owner, "first", first)
        self.second = None if second is None else _name(owner, "second", second)
        self.candidates = options.positive_int(owner, "candidates", candidates)

    def slots(self) -> list[str]:
        """``first`` and ``second`` (bm25 and dpr unless set); the pipeline's retrievers fill the unset ones."""
        return [self.first or self.STAGES[0], self.second or self.STAGES[1]]

    def fixed_slots(self) -> set[int]:
        return {i for i, stage in enumerate((self.first, self.second)) if stage is not None}

    def index(self, retrievers: Sequence[Retriever], documents: Sequence[Document]) -> None:
        self.check_names([r.name for r in retrievers])
        first, second = retrievers
        first.warm_up()
        first.index(documents)
        second.warm_up()
        if not second.scores_unindexed:
            second.index(documents)

    def unindexed_ok(self, retriever: Retriever, retrievers: Sequence[Retriever]) -> bool:
        return retriever is retrievers[-1] and retriever.scores_unindexed

    def fuse(self, retrievers: Sequence[Retriever], queries: Sequence[str], k: int) -> RankedResults:
        table = self.check_ready(retrievers)
        first, second = retrievers
        k = min(k, len(table))
        if not queries or k == 0:
            return _empty(len(queries), k, table)
        stage1 = first.search(queries, max(self.candidates, k))
        if second.is_indexed:
            scores = second.score(queries, stage1.indices)
        else:
            scores = second.score_documents(queries, table, stage1.indices)
        indices, top = top_k_candidates(scores, stage1.indices, k)
        return RankedResults(indices, top, table)


class CrossFuser(_NamedRetrieversFuser):
    """Score fusion: ``score = Σ weight_i · normalize(score_i)``; by default ``1.1 · dpr + bm25``.

    - ``lam`` (λ, default 1.1) weights the retriever named ``lam_on`` (default ``dpr``), the others weigh 1 — the
      competition's ``1.1 · dense + sparse``. The DPR paper put λ on BM25 instead: ``lam_on="bm25"``.
      ``weights`` (a table by retriever name, or a list in fused order) replaces λ for any number of retrievers.
    - ``lam="sample"`` (the default on the bundled sample, :meth:`sample_defaults`): λ chosen on the sample's
      *training* questions (never its evaluation questions) from :data:`SAMPLE_LAM_GRID`, at the first fusion:
      on the third that the demo models do not train on (``odqa_core.data.sample_tuning_split``).
      λ = 0 (the other retrievers alone) is on the grid and a λ is chosen only if its acc@1, acc@5 and acc@20
      are all at least λ = 0's, so the demo's fusion never scores below BM25 alone on those questions; among
      those the best mean of the three wins, ties to the smaller λ. Explicit ``weights`` take precedence.
    - ``mode="whole"`` scores every passage of the corpus for every question (:meth:`~odqa_core.Retriever.
      score_all`), a block of questions at a time sized so that the block's scratch arrays stay within
      ``memory_mb``: the questions × corpus matrix is never held, for any retriever.
    - ``mode="union"`` rescores the union of each retriever's top ``depth`` (the DPR paper's 2000). A candidate
      missing from a retriever's list gets that list's minimum (``missing="min"``, Pyserini's choice), 0 after
      normalization (``"zero"``), or its real score (``"exact"``, through :meth:`~odqa_core.Retriever.score`).
    - ``normalization``: ``none``, ``min-max`` or ``z-score`` of each retriever's scores per question, over the
      whole corpus (``whole``) or over its top-``depth`` list (``union``), before weighting.
    """

    name = "cross"
    MODES: ClassVar[tuple[str, ...]] = ("whole", "union")
    MISSING: ClassVar[tuple[str, ...]] = ("min", "zero", "exact")
    #: Bytes of scratch per (question, passage) cell in whole mode: the fused sum, one retriever's scores, the
    #: top-k selection's negated copy and int64 partition, and a float64 row of z-score statistics.
    CELL_BYTES: ClassVar[int] = 4 + 4 + 4 + 8 + 8

    def __init__(
        self,
        *,
        retrievers: list[str] | None = None,
        lam: float | str | None = None,
        lam_on: str = "dpr",
        weights: dict[str, float] | list[float] | None = None,
        mode: str = "whole",
        depth: int = 2000,
        missing: str = "min",
        normalization: str = "none",
        memory_mb: float = 64,
    ) -> None:
        owner = f"fuser {self.name!r}"
        self.retrievers = _retriever_list(owner, retrievers)
        if lam is not None and lam != "sample" and weights is not None:
            raise UsageError(f"{owner}: give either 'lam' (with 'lam_on') or 'weights', not both")
        if isinstance(lam, str) and lam != "sample":
            raise UsageError(f"{owner}: option 'lam' must be a number or \"sample\", got {lam!r}")
        self.lam: float | str | None = (
            lam if lam in (None, "sample") else options.number(owner, "lam", lam, minimum=0)
        )
        self.lam_on = _name(owner, "lam_on", lam_on)
        self.weights = _check_weights(owner, weights)
        #: ``lam="sample"``: the chosen λ and the grid's training-question metrics, by fused retriever names.
        self.lam_tuning: dict[tuple[str, ...], dict[str, Any]] = {}
        self.mode = options.choice(owner, "mode", mode, self.MODES)
        self.depth = options.positive_int(owner, "depth", depth)
        self.missing = options.choice(owner, "missing", missing, self.MISSING)
        self.normalization = options.choice(owner, "normalization", normalization, NORMALIZATIONS)
        self.memory_mb = options.number(owner, "memory_mb", memory_mb, minimum=1)

    @classmethod
    def sample_defaults(cls) -> dict[str, Any]:
        return {"lam": "sample"}

    def resolved_config(self) -> dict[str, Any]:
        """:meth:`config` with the λ in use: 1.1 when unset, the tuned one for ``lam="sample"`` (and its grid)."""
        config = self.config()
        if self.weights is not None:
            return config
        if self.lam == "sample":
            if len(self.lam_tuning) == 1:  # one set of fused retrievers, as in a run: its λ
                tuning = next(iter(self.lam_tuning.values()))
                return {**config, "lam": tuning["lam"], "lam_tuning": tuning}
            return config
        return {**config, "lam": DEFAULT_LAM if self.lam is None else self.lam}

    def check_names(self, names: Sequence[str]) -> None:
        Fuser.check_names(self, names)
        if self.weights is not None:
            self.fused_weights(names)
        else:
            self._lam_slot(names)

    def _lam_slot(self, names: Sequence[str]) -> int:
        matches = [i for i, n in enumerate(names) if n == self.lam_on]
        if len(matches) != 1:
            raise UsageError(
                f"fuser {self.name!r}: lam_on {self.lam_on!r} must name exactly one of the fused retrievers "
                f"({', '.join(names)}); set cross.lam_on or cross.weights"
            )
        return matches[0]

    def _weights_with_lam(self, names: Sequence[str], lam: float) -> list[float]:
        weights = [1.0] * len(names)
        weights[self._lam_slot(names)] = lam
        return weights

    def fused_weights(self, names: Sequence[str]) -> list[float]:
        """One weight per fused retriever: from ``weights``, else λ on ``lam_on`` and 1 on the others."""
        if self.weights is not None:
            return super().fused_weights(names)
        if self.lam == "sample":
            tuning = self.lam_tuning.get(tuple(names))
            if tuning is None:
                raise UsageError(f"fuser {self.name!r}: lam='sample' is chosen when fusing; fuse first")
            return self._weights_with_lam(names, tuning["lam"])
        return self._weights_with_lam(names, DEFAULT_LAM if self.lam is None else float(self.lam))

    def fuse(self, retrievers: Sequence[Retriever], queries: Sequence[str], k: int) -> RankedResults:
        if self.lam == "sample" and self.weights is None:
            self.tune_on_sample(retrievers)
        return super().fuse(retrievers, queries, k)

    def tune_on_sample(self, retrievers: Sequence[Retriever]) -> dict[str, Any]:
        """Choose ``lam="sample"``'s λ for ``retrievers`` on the bundled sample's tuning training questions (once).

        Every λ of :data:`SAMPLE_LAM_GRID` fuses the training questions' top 20; a λ qualifies when its acc@1,
        acc@5 and acc@20 are each at least λ = 0's (the other retrievers alone), and the qualifying λ with the
        best mean of the three is chosen, ties to the smaller. Returns (and keeps in :attr:`lam_tuning`) the
        chosen λ with every λ's metrics.
        """
        from odqa_core import data
        from odqa_core.evaluation import evaluate_retrieval, hits_from_results

        names = tuple(r.name for r in retrievers)
        if names in self.lam_tuning:
            return self.lam_tuning[names]
        table = self.check_ready(retrievers)
        self._lam_slot(names)
        if not data.is_sample_corpus(table):
            raise UsageError(
                f"fuser {self.name!r}: lam='sample' is chosen on the bundled sample's training questions and fits "
                "only the sample corpus; give a number (-o cross.lam=1.1) or tune one with odqa tune"
            )
        # The third of the training questions the demo models did not learn (a DPR scores the questions it was
        # trained on far better than new ones, and would win every λ on them).
        _, questions = data.sample_tuning_split(data.load_questions(data.sample_train_questions_path()))
        texts = [q.text for q in questions]
        k = min(max(SAMPLE_LAM_KS), len(table))
        kind = "doc" if all(q.doc_ids for q in questions) else "answer"
        grid: dict[str, dict[str, float]] = {}
        for lam in SAMPLE_LAM_GRID:
            indices, scores = self.fuse_weighted(retrievers, self._weights_with_lam(names, lam), texts, k, table)
            ranked = hits_from_results(RankedResults(indices, scores, table))
            metrics = evaluate_retrieval(questions, ranked, SAMPLE_LAM_KS).metrics[kind]
            grid[f"{lam:g}"] = {f"acc@{c}": metrics[f"acc@{min(c, k)}"] for c in SAMPLE_LAM_KS}
        alone = grid[f"{SAMPLE_LAM_GRID[0]:g}"]
        qualifying = [
            lam for lam in SAMPLE_LAM_GRID if all(grid[f"{lam:g}"][m] >= alone[m] for m in alone)
        ]  # λ = 0 always qualifies
        chosen = max(qualifying, key=lambda lam: (sum(grid[f"{lam:g}"].values()), -lam))
        tuning = {
            "lam": chosen,
            "questions": f"sample training, tuning third ({len(questions)})",
            "metric": kind,
            "grid": grid,
        }
        self.lam_tuning[names] = tuning
        return tuning

    def block_size(self, n_documents: int) -> int:
        """Questions per block in whole mode: as many as fit ``memory_mb`` of scratch."""
        return max(1, int(self.memory_mb * 2**20) // max(1, n_documents * self.CELL_BYTES))

    def fuse_weighted(self, retrievers, weights, queries, k, table) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "whole":
            return self._whole(retrievers, weights, queries, k, table)
        return self._union(retrievers, weights, queries, k, table)

    def _whole(self, retrievers, weights, queries, k, table) -> tuple[np.ndarray, np.ndarray]:
        indices = np.empty((len(queries), k), np.int64)
        scores = np.empty((len(queries), k), np.float32)
        step = self.block_size(len(table))
        for start in range(0, len(queries), step):
            block = queries[start : start + step]
            total = np.zeros((len(block), len(table)), np.float32)
            for retriever, weight in zip(retrievers, weights):
                if weight == 0:
                    continue  # contributes nothing: not even computed
                part = retriever.score_all(block)
                normalize_(part, *row_stats(part, self.normalization))
                if weight != 1:
                    part *= np.float32(weight)
                total += part
                del part
            indices[start : start + len(block)], scores[start : start + len(block)] = top_k_rows(total, k)
        return indices, scores

    def _union(self, retrievers, weights, queries, k, table) -> tuple[np.ndarray, np.ndarray]:
        depth = min(max(self.depth, k), len(table))
        lists = [r.search(queries, depth) for r in retrievers]
        candidates = union_candidates([lst.indices for lst in lists])
        total = np.zeros(candidates.shape, np.float32)
        for retriever, weight, ranked in zip(retrievers, weights, lists):
            shift, scale = row_stats(ranked.scores, self.normalization)
            if self.missing == "exact":
                part = retriever.score(queries, np.where(candidates < 0, 0, candidates))  # padding: any valid row
            else:
                # "zero" fills with the shift, which normalizes to exactly 0; "min" with the list's minimum.
                fill = shift if self.missing == "zero" else ranked.scores.min(axis=1, keepdims=True)
                part = ListLookup(ranked.indices, len(table)).values(ranked.scores, candidates, fill)
            normalize_(part, shift, scale)
            total += np.float32(weight) * part
        return top_k_candidates(total, candidates, k)


class RRFFuser(_NamedRetrieversFuser):
    """Reciprocal rank fusion (Cormack et al. 2009): ``score(d) = Σ_i weight_i / (rrf_k + rank_i(d))``.

    ``rank_i`` is 1-based in retriever i's top ``depth``; a document outside a list adds nothing for it. Only
    ranks are used, so no score scale or normalization matters. ``weights`` (a table by retriever name, or a
    list in fused order) default to 1.
    """

    name = "rrf"

    def __init__(
        self,
        *,
        retrievers: list[str] | None = None,
        rrf_k: float = 60,
        depth: int = 1000,
        weights: dict[str, float] | list[float] | None = None,
    ) -> None:
        owner = f"fuser {self.name!r}"
        self.retrievers = _retriever_list(owner, retrievers)
        self.rrf_k = options.number(owner, "rrf_k", rrf_k, minimum=0)
        self.depth = options.positive_int(owner, "depth", depth)
        self.weights = _check_weights(owner, weights)

    def fuse_weighted(self, retrievers, weights, queries, k, table) -> tuple[np.ndarray, np.ndarray]:
        depth = min(max(self.depth, k), len(table))
        lists = [r.search(queries, depth).indices for r in retrievers]
        candidates = union_candidates(lists)
        total = np.zeros(candidates.shape, np.float64)
        reciprocal = 1.0 / (self.rrf_k + np.arange(1, depth + 1, dtype=np.float64))[None, :]
        for i, ranked in enumerate(lists):
            contribution = np.broadcast_to(weights[i] * reciprocal, ranked.shape)
            total += ListLookup(ranked, len(table)).values(contribution, candidates, 0.0)
        return top_k_candidates(total.astype(np.float32), candidates, k)
