"""Answers a person can read: what ``odqa ask`` prints, and the table of questions ``odqa run`` ends with.

Korean and other wide characters take two columns of a terminal, so tables are aligned on display width
(:func:`display_width`), not on ``len``. The answer is highlighted in its passage with an ANSI colour on a terminal
and with ``[brackets]`` otherwise (a file, a pipe, ``NO_COLOR`` set), so that it stays visible in plain text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from odqa_core.qa_metrics import exact_match
from odqa_core.types import Document, Prediction, Question, RankedResults

#: Characters of passage shown on each side of a highlighted answer.
CONTEXT_CHARS = 80
#: Characters of a passage shown in the list of top passages.
PASSAGE_PREVIEW_CHARS = 120
#: ANSI: bold yellow on, everything off.
_HIGHLIGHT_ON, _HIGHLIGHT_OFF = "\x1b[1;33m", "\x1b[0m"


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide and full-width characters (한글, 漢字) two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def fit(text: str, width: int) -> str:
    """``text`` on one line, cut with "…" to at most ``width`` columns and padded with spaces to exactly that."""
    text = " ".join(text.split())
    if display_width(text) > width:
        kept, used = [], 0
        for char in text:
            w = display_width(char)
            if used + w > width - 1:
                break
            kept.append(char)
            used += w
        text = "".join(kept) + "…"
    return text + " " * (width - display_width(text))


def one_line(text: str) -> str:
    return " ".join(text.split())


def highlight(text: str, start: int, end: int, color: bool, context: int = CONTEXT_CHARS) -> str:
    """The passage ``text`` around ``text[start:end]`` (``context`` characters each side, cut with "…"), on one
    line, the answer in colour (``color``) or in [brackets]."""
    left = max(start - context, 0)
    right = min(end + context, len(text))
    on, off = (_HIGHLIGHT_ON, _HIGHLIGHT_OFF) if color else ("[", "]")
    before = ("…" if left > 0 else "") + one_line(text[left:start])
    after = one_line(text[end:right]) + ("…" if right < len(text) else "")
    # one_line drops the spaces at the edges: keep one where the passage had one, so words stay apart.
    if start > left and text[start - 1].isspace():
        before += " "
    if right > end and text[end].isspace():
        after = " " + after
    return f"{before}{on}{one_line(text[start:end])}{off}{after}"


def _hits(results: RankedResults, row: int) -> list[tuple[Document, float]]:
    """The question's ranked (passage, score) pairs, the ``-1`` padding of a short ranking left out."""
    return [
        (results.documents[i], float(s))
        for i, s in zip(results.indices[row].tolist(), results.scores[row].tolist())
        if i >= 0
    ]


def probabilities(predictions: Sequence[Prediction]) -> list[float]:
    """The softmax of the n-best list's scores, as ``nbest_predictions.json`` gives them."""
    from odqa_core._runs import nbest_entries

    return [entry["probability"] for entry in nbest_entries(predictions)]


def _answer_location(
    prediction: Prediction, results: RankedResults, row: int
) -> tuple[Document | None, int | None, int | None]:
    """The passage an answer comes from, its rank in the question's results (1-based) and the answer's character
    offset in it (None where the reader does not say, or the answer is not at that offset)."""
    for rank, (doc, _) in enumerate(_hits(results, row), 1):
        if doc.id != prediction.doc_id:
            continue
        start = prediction.start
        if start is None or doc.text[start : start + len(prediction.answer)] != prediction.answer:
            found = doc.text.find(prediction.answer) if prediction.answer else -1
            start = found if found >= 0 else None
        return doc, rank, start
    return None, None, None


def format_answer(
    question: Question,
    predictions: Sequence[Prediction] | None,
    results: RankedResults,
    row: int,
    *,
    color: bool,
    passages: int = 3,
) -> str:
    """One question's answer as ``odqa ask`` prints it: the answer with its probability, its passage with the
    answer highlighted, the next-best answers, and the top ``passages`` passages with their scores.
    ``predictions`` None: there is no reader, only the passages are shown."""
    lines = [f"Q: {one_line(question.text)}"]
    if predictions is not None:
        best = predictions[0] if predictions and predictions[0].answer else None
        if best is None:
            lines.append("A: (no answer found)")
        else:
            probs = probabilities(predictions)
            answer = f"{_HIGHLIGHT_ON}{best.answer}{_HIGHLIGHT_OFF}" if color else best.answer
            lines.append(f"A: {answer}   (probability {probs[0]:.2f}, score {best.score:.2f})")
            doc, rank, start = _answer_location(best, results, row)
            if doc is not None:
                title = f' "{doc.title}"' if doc.title else ""
                lines.append(f"   from passage {rank}, {doc.id}{title}:")
                if start is not None:
                    lines.append("   " + highlight(doc.text, start, start + len(best.answer), color))
            others = [(p, prob) for p, prob in zip(predictions[1:], probs[1:]) if p.answer]
            if others:
                lines.append("   next best:")
                width = max(display_width(one_line(p.answer)) for p, _ in others)
                width = min(width, 40)
                for i, (p, prob) in enumerate(others, 2):
                    lines.append(f"   {i:>4}. {fit(p.answer, width)}  {prob:.2f}")
    hits = _hits(results, row)[:passages]
    if hits:
        lines.append("   top passages:" if predictions is not None else "   passages:")
        for rank, (doc, score) in enumerate(hits, 1):
            title = f"{doc.title}: " if doc.title else ""
            preview = fit(title + doc.text, PASSAGE_PREVIEW_CHARS).rstrip()
            lines.append(f"   {rank:>4}. {score:8.3f}  {doc.id}  {preview}")
    else:
        lines.append("   (no passage retrieved)")
    return "\n".join(lines)


def answer_json(
    question: Question,
    predictions: Sequence[Prediction] | None,
    results: RankedResults,
    row: int,
    passages: int = 3,
) -> dict[str, Any]:
    """One question's answer as ``odqa ask --json`` gives it: the best answer (null without a reader or an answer),
    its passage and offset, the n-best list (text, probability, score, doc_id, start) and the top passages."""
    from odqa_core._runs import nbest_entries

    out: dict[str, Any] = {"id": question.id, "question": question.text}
    if predictions is not None:
        best = predictions[0] if predictions and predictions[0].answer else None
        entries = nbest_entries([p for p in predictions if p.answer])
        doc, rank, start = _answer_location(best, results, row) if best else (None, None, None)
        out.update(
            {
                "answer": best.answer if best else None,
                "probability": entries[0]["probability"] if best else None,
                "score": best.score if best else None,
                "doc_id": best.doc_id if best else None,
                "passage_rank": rank,
                "start": start,
                "nbest": entries,
            }
        )
    out["passages"] = [
        {"rank": rank, "doc_id": doc.id, "title": doc.title, "score": float(score), "text": doc.text}
        for rank, (doc, score) in enumerate(_hits(results, row)[:passages], 1)
    ]
    return out


def answer_table(
    questions: Sequence[Question], nbest: Sequence[Sequence[Prediction]], metric: str = "korquad", limit: int = 5
) -> str:
    """The first ``limit`` questions that have gold answers: question, gold answer(s), predicted answer and ✓ when
    it is an exact match under ``metric`` (✗ otherwise); the table ``odqa run`` ends with."""
    rows = [(q, preds) for q, preds in zip(questions, nbest) if q.answers][:limit]
    if not rows:
        return ""
    golds = [" / ".join(dict.fromkeys(q.answers)) for q, _ in rows]
    predicted = [preds[0].answer if preds else "" for _, preds in rows]
    widths = [
        min(max(display_width(one_line(q.text)) for q, _ in rows), 44),
        min(max(display_width(one_line(g)) for g in golds), 24),
        min(max([display_width(one_line(p)) for p in predicted] + [len("(none)")]), 24),
    ]
    widths = [max(w, len(h)) for w, h in zip(widths, ("question", "gold", "predicted"))]
    header = "  ".join(fit(h, w) for h, w in zip(("question", "gold", "predicted"), widths))
    lines = [header + "  ", "  ".join("-" * w for w in widths) + "  -"]
    for (question, _), gold, answer in zip(rows, golds, predicted):
        mark = "✓" if answer and exact_match(answer, question.answers, metric) else "✗"
        cells = (question.text, gold, answer or "(none)")
        lines.append("  ".join(fit(c, w) for c, w in zip(cells, widths)) + "  " + mark)
    shown = f"{len(rows)} of {sum(bool(q.answers) for q in questions)} questions"
    return f"answers ({shown}; ✓ exact match):\n" + "\n".join(line.rstrip() for line in lines)
