"""Retrieval evaluation: top-k accuracy, recall@k and MRR@k.

Two definitions of a hit, both standard in open-domain QA:

- ``doc``: the retrieved passage comes from one of the question's gold documents (the KLUE competition's "acc");
  a passage cut from a document, or a deduplicated document, carries its original ids in ``source_ids``.
- ``answer``: the retrieved text contains one of the answer strings (DPR's "has_answer"), compared after NFKC
  normalisation, lower-casing and whitespace collapsing.

Each is computed over the questions that have the needed gold data (gold ids, or answers plus passage texts).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odqa_core.types import Question, RankedResults

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50, 100)


@dataclass(frozen=True)
class Hit:
    """One retrieved item as evaluation sees it."""

    doc_id: str
    source_ids: tuple[str, ...]
    text: str | None = None


def hits_from_results(results: RankedResults) -> list[list[Hit]]:
    docs = results.documents
    # One Hit per retrieved row, not per document of the table (which may be millions long).
    table = {i: Hit(docs[i].id, docs[i].source_ids, docs[i].text) for i in np.unique(results.indices).tolist()}
    return [[table[i] for i in row] for row in results.indices.tolist()]


def normalize_for_match(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


def _first_hit_rank(flags: np.ndarray) -> np.ndarray:
    """1-based rank of the first True per row; 0 when none."""
    any_hit = flags.any(axis=1)
    return np.where(any_hit, flags.argmax(axis=1) + 1, 0)


def _rank_metrics(flags: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    first = _first_hit_rank(flags)
    out: dict[str, float] = {}
    for k in ks:
        found = (first > 0) & (first <= k)
        out[f"acc@{k}"] = float(found.mean()) if len(first) else 0.0
        out[f"mrr@{k}"] = float(np.where(found, 1.0 / np.maximum(first, 1), 0.0).mean()) if len(first) else 0.0
    return out


@dataclass
class RetrievalReport:
    """Metrics per hit definition: ``metrics["doc"]["acc@5"]`` etc., with the number of questions each covers."""

    ks: tuple[int, ...]
    depth: int
    n_questions: int
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_questions": self.n_questions,
            "depth": self.depth,
            "ks": list(self.ks),
            "evaluated": self.counts,
            "metrics": self.metrics,
        }

    def table(self) -> str:
        """A plain-text table: one row per k, columns per hit definition."""
        columns = []
        for kind in self.metrics:
            names = ["acc", "recall", "mrr"] if kind == "doc" else ["acc", "mrr"]
            columns += [(kind, name) for name in names]
        header = ["k"] + [f"{kind}-{name}" for kind, name in columns]
        rows = [header]
        for k in self.ks:
            rows.append([str(k)] + [f"{self.metrics[kind][f'{name}@{k}']:.4f}" for kind, name in columns])
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        counted = ", ".join(f"{kind}: {n} questions" for kind, n in self.counts.items())
        return "\n".join(lines) + f"\n({counted}; retrieval depth {self.depth})"


def evaluate_retrieval(
    questions: Sequence[Question], ranked: Sequence[Sequence[Hit]], ks: Sequence[int] = DEFAULT_KS
) -> RetrievalReport:
    """Evaluate ranked hits (one list per question, aligned with ``questions``).

    ``k`` values beyond the retrieval depth are replaced by the depth itself: accuracy at a depth that was not
    retrieved would be a number nobody measured.
    """
    if len(questions) != len(ranked):
        raise ValueError(f"{len(questions)} questions but {len(ranked)} rankings")
    depth = max((len(r) for r in ranked), default=0)
    kept = {k for k in ks if 0 < k <= depth}
    if depth and any(k > depth for k in ks):
        kept.add(depth)  # the deepest cut-off that was actually retrieved
    ks = tuple(sorted(kept))
    report = RetrievalReport(ks=ks, depth=depth, n_questions=len(questions))
    if not ks:
        return report

    with_ids = [i for i, q in enumerate(questions) if q.doc_ids]
    if with_ids:
        flags = np.zeros((len(with_ids), depth), bool)
        recall_hits = np.zeros((len(with_ids), depth), np.int32)
        for row, qi in enumerate(with_ids):
            gold = set(questions[qi].doc_ids)
            seen: set[str] = set()
            for rank, hit in enumerate(ranked[qi]):
                matched = gold.intersection(hit.source_ids) - seen
                flags[row, rank] = bool(gold.intersection(hit.source_ids))
                recall_hits[row, rank] = len(matched)
                seen |= matched
        metrics = _rank_metrics(flags, ks)
        n_gold = np.array([len(set(questions[qi].doc_ids)) for qi in with_ids])
        cumulative = np.cumsum(recall_hits, axis=1)
        for k in ks:
            metrics[f"recall@{k}"] = float((cumulative[:, k - 1] / n_gold).mean())
        report.metrics["doc"] = metrics
        report.counts["doc"] = len(with_ids)

    with_answers = [i for i, q in enumerate(questions) if q.answers and all(h.text is not None for h in ranked[i])]
    if with_answers:
        flags = np.zeros((len(with_answers), depth), bool)
        normalized: dict[str, str] = {}  # passages recur across questions; normalise each once
        for row, qi in enumerate(with_answers):
            answers = [normalize_for_match(a) for a in questions[qi].answers if a.strip()]
            for rank, hit in enumerate(ranked[qi]):
                text = normalized.get(hit.doc_id)
                if text is None:
                    text = normalized[hit.doc_id] = normalize_for_match(hit.text or "")
                flags[row, rank] = any(a in text for a in answers)
        report.metrics["answer"] = _rank_metrics(flags, ks)
        report.counts["answer"] = len(with_answers)
    return report
