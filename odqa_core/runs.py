"""Run files: the ranked hits of a batch of questions, written atomically.

``jsonl`` (default), one line per question, best hit first::

    {"id": "q-001", "question": "...", "hits": [{"doc_id": "doc-3#0", "score": 12.3, "source_ids": ["doc-3"]}]}

``source_ids`` is written only when it differs from ``[doc_id]`` (passages, deduplicated documents).
``trec`` is the six-column TREC run format Pyserini and trec_eval use: ``qid Q0 docid rank score tag``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odqa_core.errors import DataError
from odqa_core.evaluation import Hit
from odqa_core.storage import atomic_write_lines
from odqa_core.types import Document, Question, RankedResults

RUN_FORMATS = ("jsonl", "trec")


def write_run(
    path: str | Path, questions: Sequence[Question], results: RankedResults, fmt: str = "jsonl", tag: str = "odqa"
) -> None:
    docs = results.documents
    with atomic_write_lines(path) as fh:
        for row, question in enumerate(questions):
            pairs = [(docs[i], float(s)) for i, s in zip(results.indices[row].tolist(), results.scores[row].tolist())]
            if fmt == "trec":
                for rank, (doc, score) in enumerate(pairs, 1):
                    fh.write(f"{question.id} Q0 {doc.id} {rank} {score:.6f} {tag}\n")
                continue
            hits = []
            for doc, score in pairs:
                hit: dict[str, Any] = {"doc_id": doc.id, "score": round(score, 6)}
                if doc.source_ids != (doc.id,):
                    hit["source_ids"] = list(doc.source_ids)
                hits.append(hit)
            fh.write(json.dumps({"id": question.id, "question": question.text, "hits": hits}, ensure_ascii=False))
            fh.write("\n")


def read_run(path: str | Path, documents: Sequence[Document] | None = None) -> dict[str, list[Hit]]:
    """``{question_id: [Hit, ...]}`` from a jsonl or TREC run; passage texts are attached when ``documents`` given."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such run file")
    by_id = {d.id: d for d in documents} if documents is not None else {}
    runs: dict[str, list[Hit]] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    row = json.loads(line)
                    qid, hits = str(row["id"]), row["hits"]
                    parsed = [(str(h["doc_id"]), tuple(h.get("source_ids") or (h["doc_id"],))) for h in hits]
                except (ValueError, KeyError, TypeError) as exc:
                    raise DataError(
                        f"{path} line {number}: not a run line ({exc.__class__.__name__}: {exc})"
                    ) from None
                runs[qid] = [_hit(doc_id, sources, by_id) for doc_id, sources in parsed]
            else:
                parts = line.split()
                if len(parts) != 6:
                    raise DataError(f"{path} line {number}: expected a jsonl or 6-column TREC run line")
                runs.setdefault(parts[0], []).append(_hit(parts[2], None, by_id))
    if not runs:
        raise DataError(f"{path}: the run file is empty")
    return runs


def _hit(doc_id: str, sources: tuple[str, ...] | None, by_id: dict[str, Document]) -> Hit:
    doc = by_id.get(doc_id)
    if doc is not None:
        return Hit(doc_id, doc.source_ids, doc.text)
    return Hit(doc_id, sources or (doc_id,), None)
