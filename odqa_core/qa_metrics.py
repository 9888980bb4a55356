"""Reader evaluation: exact match (EM) and F1 of predicted answers, exactly as the official scripts compute them.

Two metrics, both the maximum over a question's gold answers:

- ``korquad``: the KorQuAD 1.0 script (``evaluate-v1.0.py``). Answers are normalised by turning the quotes and
  brackets ``' " 《 》 < > 〈 〉 ( ) ‘ ’`` into spaces, lower-casing, deleting ASCII punctuation
  (``string.punctuation``) and collapsing whitespace. F1 is over *characters*: the characters of the normalised
  words (spaces are not counted), so "서울" against "서울에서" gets partial credit.
- ``squad``: the SQuAD v1.1 script (``evaluate-v1.1.py``). Normalisation lower-cases, deletes ASCII punctuation,
  drops the articles a/an/the and collapses whitespace; F1 is over whitespace tokens.

In both, EM compares the normalised strings, and F1 is 0 when prediction and gold share nothing (which includes an
empty prediction). Totals are percentages: 100 × the mean over the scored questions.

Which questions count (:func:`evaluate_predictions`):

- a question without gold answers is not scored, only counted (``n_unanswerable``); when no question has answers
  (a predict-only run) the report's EM and F1 are ``None``;
- a question with answers but no prediction scores 0 and is counted in ``n_missing``, as the official scripts do
  ("Unanswered question ... will receive score 0");
- a prediction for an id that is not among the questions is a :class:`UsageError`: the files do not belong together.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odqa_core.data import json_problem
from odqa_core.errors import DataError, UsageError
from odqa_core.types import Question

METRICS: tuple[str, ...] = ("korquad", "squad")

_PUNCTUATION = frozenset(string.punctuation)
# The characters KorQuAD's evaluate-v1.0.py replaces by a space before anything else (its ``remove_``).
_KORQUAD_TO_SPACE = str.maketrans({c: " " for c in "'\"《》<>〈〉()‘’"})
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise UsageError(f"unknown answer metric {metric!r} (choose {' or '.join(METRICS)})")


def _remove_punctuation(text: str) -> str:
    return "".join(ch for ch in text if ch not in _PUNCTUATION)


def normalize_answer(text: str, metric: str = "korquad") -> str:
    """An answer string normalised the way ``metric``'s official script does before comparing."""
    _check_metric(metric)
    if metric == "korquad":
        return " ".join(_remove_punctuation(text.translate(_KORQUAD_TO_SPACE).lower()).split())
    return " ".join(_ARTICLES.sub(" ", _remove_punctuation(text.lower())).split())


def _units(text: str, metric: str) -> list[str]:
    """What F1 counts: characters of the normalised words (korquad) or the words themselves (squad)."""
    tokens = normalize_answer(text, metric).split()
    return [c for token in tokens for c in token] if metric == "korquad" else tokens


def _golds(golds: str | Sequence[str]) -> Sequence[str]:
    golds = (golds,) if isinstance(golds, str) else golds
    if not golds:
        raise ValueError("no gold answers to compare with")
    return golds


def exact_match(prediction: str, golds: str | Sequence[str], metric: str = "korquad") -> float:
    """1.0 when the normalised prediction equals one of the normalised gold answers, else 0.0."""
    predicted = normalize_answer(prediction, metric)
    return float(any(predicted == normalize_answer(gold, metric) for gold in _golds(golds)))


def _f1_one(predicted: list[str], gold: list[str]) -> float:
    same = sum((Counter(predicted) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: str | Sequence[str], metric: str = "korquad") -> float:
    """F1 (0..1) of the prediction against its best-matching gold answer: character-level (korquad) or token-level."""
    predicted = _units(prediction, metric)
    return max(_f1_one(predicted, _units(gold, metric)) for gold in _golds(golds))


@dataclass
class QAReport:
    """EM and F1 in percent over the ``n_scored`` questions with answers (``None`` when there were none)."""

    metric: str
    exact_match: float | None
    f1: float | None
    n_scored: int
    n_missing: int
    n_unanswerable: int

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "exact_match": self.exact_match,
            "f1": self.f1,
            "n_scored": self.n_scored,
            "n_missing": self.n_missing,
            "n_unanswerable": self.n_unanswerable,
        }

    def table(self) -> str:
        """A few plain-text lines: EM, F1, and which questions they cover."""
        if self.exact_match is None or self.f1 is None:
            return (
                f"exact_match  -\nf1           -\n({self.metric}: no question has gold answers, nothing to score; "
                f"{self.n_unanswerable} questions skipped)"
            )
        notes = [f"{self.n_scored} questions scored"]
        if self.n_missing:
            notes.append(f"{self.n_missing} without a prediction scored 0")
        if self.n_unanswerable:
            notes.append(f"{self.n_unanswerable} without answers skipped")
        return f"exact_match  {self.exact_match:.2f}\nf1           {self.f1:.2f}\n({self.metric}: {', '.join(notes)})"


def evaluate_predictions(
    predictions: Mapping[str, str], questions: Sequence[Question], metric: str = "korquad"
) -> QAReport:
    """EM and F1 of ``{question_id: answer}`` against the questions' gold answers (see the module docstring)."""
    _check_metric(metric)
    known = {q.id for q in questions}
    unknown = [qid for qid in predictions if qid not in known]
    if unknown:
        raise UsageError(
            f"the predictions have {len(unknown)} ids that are not among the questions (first: {unknown[0]!r}); "
            "were they made from these questions?"
        )
    em_total = f1_total = 0.0
    n_scored = n_missing = n_unanswerable = 0
    for question in questions:
        if not question.answers:
            n_unanswerable += 1
            continue
        n_scored += 1
        if question.id not in predictions:
            n_missing += 1
            continue
        em_total += exact_match(predictions[question.id], question.answers, metric)
        f1_total += f1(predictions[question.id], question.answers, metric)
    if not n_scored:
        return QAReport(metric, None, None, 0, 0, n_unanswerable)
    return QAReport(
        metric, 100.0 * em_total / n_scored, 100.0 * f1_total / n_scored, n_scored, n_missing, n_unanswerable
    )


def load_predictions(path: str | Path) -> dict[str, str]:
    """A SQuAD/KorQuAD predictions file: one JSON object ``{question_id: answer text}``."""
    label = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{label}: cannot read the predictions ({exc.strerror or exc})") from None
    try:
        payload = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        problem = json_problem(exc)
        raise DataError(f"{label} line {exc.lineno} column {exc.colno}: malformed JSON ({problem})") from None
    if not isinstance(payload, dict):
        raise DataError(
            f"{label}: predictions must be a JSON object {{question_id: answer text}}, got {type(payload).__name__}"
        )
    for qid, answer in payload.items():
        if not isinstance(answer, str):
            hint = " (an nbest_predictions.json? give predictions.json)" if isinstance(answer, list) else ""
            raise DataError(
                f"{label}: the prediction for {qid!r} must be a string, got {type(answer).__name__}{hint}"
            )
    return payload
