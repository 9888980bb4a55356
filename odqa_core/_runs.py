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

import numpy as np

from odqa_core.data import json_problem
from odqa_core.errors import DataError
from odqa_core.evaluation import Hit
from odqa_core.outputs import atomic_write_lines
from odqa_core.types import Document, Question, RankedResults

RUN_FORMATS = ("jsonl", "trec")


def write_run(
    path: str | Path, questions: Sequence[Question], results: RankedResults, fmt: str = "jsonl", tag: str = "odqa"
) -> None:
    """Write the run file atomically (:func:`~odqa_core.outputs.atomic_write_lines`); ``path`` ``"-"`` writes it to
    standard output, and a device or FIFO (``/dev/null``, a pipe) is written in place, never replaced."""
    check_finite_scores(questions, results)
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


def check_finite_scores(questions: Sequence[Question], results: RankedResults) -> None:
    """Refuse results holding a NaN or infinite score: JSON has no such numbers (a run file with ``NaN`` is
    invalid JSON) and no ranking can be trusted with them. They come from options like ``k1=Infinity``."""
    finite = np.isfinite(results.scores)
    if finite.all():
        return
    row, rank = (int(i) for i in np.argwhere(~finite)[0])
    qid = questions[row].id if row < len(questions) else str(row)
    raise DataError(
        f"question {qid!r} got a score of {float(results.scores[row, rank])} at rank {rank + 1} "
        f"({int((~finite).sum())} non-finite scores in all); not writing a run with them: check the components' "
        "numeric options"
    )


def read_run(path: str | Path, documents: Sequence[Document] | None = None) -> dict[str, list[Hit]]:
    """``{question_id: [Hit, ...]}`` from a jsonl or TREC run; passage texts are attached when ``documents`` given.

    Every problem with the file is a one-line :class:`DataError` naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such run file")
    by_id = {d.id: d for d in documents} if documents is not None else {}
    runs: dict[str, list[Hit]] = {}
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; binary so that a bad byte gets its line number
    except OSError as exc:
        raise DataError(f"{path}: cannot read the run file ({exc.strerror or exc})") from None
    with fh:
        for number, raw in enumerate(fh, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path} line {number}: not UTF-8 text (bad byte at column {exc.start + 1}); "
                    "is it a run file written by 'odqa retrieve'?"
                ) from None
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                qid, parsed = _jsonl_run_line(path, number, line)
                runs[qid] = [_hit(doc_id, sources, by_id) for doc_id, sources in parsed]
            else:
                parts = line.split()
                if len(parts) != 6:
                    raise DataError(f"{path} line {number}: expected a jsonl or 6-column TREC run line")
                runs.setdefault(parts[0], []).append(_hit(parts[2], None, by_id))
    if not runs:
        raise DataError(f"{path}: the run file is empty")
    return runs


def _jsonl_run_line(path: Path, number: int, line: str) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """The question id and ``(doc_id, source_ids)`` hits of one jsonl run line."""
    where = f"{path} line {number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: malformed JSON ({json_problem(exc)} at column {exc.colno})") from None
    if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("hits"), list):
        raise DataError(f'{where}: not a run line (expected an object with "id" and a "hits" list)')
    parsed = []
    for rank, hit in enumerate(row["hits"], 1):
        doc_id = hit.get("doc_id") if isinstance(hit, dict) else None
        sources = hit.get("source_ids") if isinstance(hit, dict) else None
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
            raise DataError(f'{where}: hit {rank} has no "doc_id" (a string)')
        if sources is not None and not (
            isinstance(sources, list) and all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in sources)
        ):
            raise DataError(f'{where}: hit {rank}: "source_ids" must be a list of document ids, got {sources!r}')
        parsed.append((str(doc_id), tuple(str(s) for s in sources or (doc_id,))))
    return str(row["id"]), parsed


def _hit(doc_id: str, sources: tuple[str, ...] | None, by_id: dict[str, Document]) -> Hit:
    doc = by_id.get(doc_id)
    if doc is not None:
        return Hit(doc_id, doc.source_ids, doc.text)
    return Hit(doc_id, sources or (doc_id,), None)
