"""What every reader training reports, the transformer readers' (:mod:`odqa_readers.training`) and the lexical
span scorer's (:mod:`odqa_readers.lexical`): the EM / F1 of the best answers, and the ``report.json`` rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from odqa_transformers.config import TrainingConfig

from odqa_core.qa_metrics import evaluate_predictions
from odqa_core.types import Question, RankedResults
from odqa_readers.base import ReaderExample


def best_answer_metrics(
    read: Callable[..., Sequence[Sequence[Any]]], questions: Sequence[Question], results: RankedResults, metric: str
) -> dict[str, Any]:
    """EM / F1 (percent) of the best answer ``read(questions, results, n_best=1)`` gives each question."""
    nbest = read(questions, results, n_best=1)
    predictions = {q.id: (preds[0].answer if preds else "") for q, preds in zip(questions, nbest)}
    return evaluate_predictions(predictions, questions, metric).to_json()


def training_report(
    config: TrainingConfig,
    examples: Sequence[ReaderExample],
    dev: Sequence[Question],
    test: Sequence[Question],
    history: list[dict[str, Any]],
    best: dict[str, Any] | None,
    done: bool,
    **details: Any,
) -> dict[str, Any]:
    """A reader training's ``report.json`` (written atomically into ``config``'s output by the caller): the
    settings, what was trained on, one row per epoch and the best one; ``details`` are the trainer's own."""
    return {
        "config": config.to_json(),
        **details,
        "n_examples": len(examples),
        "n_no_answer_examples": sum(not e.has_answer for e in examples),
        # Answers no longer among their question's gold answers: trimmed by strip_answer_particles.
        "n_particle_stripped_answers": sum(e.has_answer and e.answer not in e.question.answers for e in examples),
        "n_dev": len(dev),
        "n_test": len(test),
        "epochs": history,
        "best": best,
        "done": done,
    }
