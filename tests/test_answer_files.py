"""``predictions.json`` and ``nbest_predictions.json`` as the string writers of ``odqa_core._runs`` format them are
the same bytes as the ``json.dumps(..., indent=1)`` of per-prediction dicts they replaced (kept here as the
reference), whatever the answers, ids, scores and n-best lengths."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odqa_core._runs import nbest_entries, nbest_predictions_json_text, predictions_json_text
from odqa_core.types import Prediction, Question


def reference_nbest_entries(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    """``odqa_core.pipeline.nbest_entries`` as it was when the string writers came."""
    scores = np.array([p.score for p in predictions], np.float64)
    probs = np.exp(scores - scores.max()) if len(scores) else scores
    probs = probs / probs.sum() if len(scores) else probs
    return [
        {"text": p.answer, "probability": float(prob), "score": p.score, "doc_id": p.doc_id, "start": p.start}
        for p, prob in zip(predictions, probs.tolist())
    ]


def reference_texts(questions: Sequence[Question], nbest: Sequence[Sequence[Prediction]]) -> tuple[str, str]:
    """The two files as ``odqa_core.pipeline.run_pipeline`` wrote them before the string writers."""
    predictions = {q.id: (preds[0].answer if preds else "") for q, preds in zip(questions, nbest)}
    nbest_json = {q.id: reference_nbest_entries(preds) for q, preds in zip(questions, nbest)}
    return (
        json.dumps(predictions, ensure_ascii=False, indent=1),
        json.dumps(nbest_json, ensure_ascii=False, indent=1),
    )


def written_texts(questions: Sequence[Question], nbest: Sequence[Sequence[Prediction]]) -> tuple[str, str]:
    return predictions_json_text(questions, nbest), nbest_predictions_json_text(questions, nbest)


# Text that needs escaping: quotes, backslashes, control characters, a lone surrogate, emoji, Korean.
TRICKY = '"\\\n\t\x00\x1f\x7f\u2028\ud800😀한국어 é/'
texts = st.text(alphabet=st.one_of(st.sampled_from(TRICKY), st.characters()), max_size=12)
scores = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(min_value=-1e300, max_value=1e300, allow_nan=False),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 1e16, 0.1, 1e300, -1e300, 123456789.125]),
)


@st.composite
def answer_runs(draw: st.DrawFn) -> tuple[list[Question], list[list[Prediction]]]:
    # A few ids, so that some questions share one (a dict keeps the first position and the last value).
    ids = draw(st.lists(texts, min_size=1, max_size=4))
    n_questions = draw(st.integers(0, 6))
    n_best = draw(st.sampled_from([1, 2, 5]))
    questions, nbest = [], []
    for _ in range(n_questions):
        question = Question(id=draw(st.sampled_from(ids)), text="q")
        length = draw(st.sampled_from([0, 1, n_best]))  # no predictions, one, a full list
        predictions = [
            Prediction(
                question_id=question.id,
                answer=draw(st.one_of(st.just(""), texts)),
                score=draw(scores),
                doc_id=draw(st.one_of(st.none(), texts)),
                start=draw(st.one_of(st.none(), st.integers(-5, 10**12))),
            )
            for _ in range(length)
        ]
        questions.append(question)
        nbest.append(predictions)
    return questions, nbest


@settings(max_examples=300, deadline=None)
@given(run=answer_runs())
def test_same_bytes_as_json_dumps(run: tuple[list[Question], list[list[Prediction]]]) -> None:
    questions, nbest = run
    assert written_texts(questions, nbest) == reference_texts(questions, nbest)
    # ...and the entries ``odqa ask`` and the readers still take from nbest_entries stay the same as the file's.
    live = {q.id: nbest_entries(preds) for q, preds in zip(questions, nbest)}
    assert nbest_predictions_json_text(questions, nbest) == json.dumps(live, ensure_ascii=False, indent=1)


def test_many_questions_of_mixed_lengths() -> None:
    """Lists of one length share one softmax matrix: many of them, interleaved with other lengths."""
    rng = np.random.default_rng(0)
    questions = [Question(id=f"q{i}", text="q") for i in range(500)]
    nbest = [
        [
            Prediction(f"q{i}", f"답{j}", float(rng.normal(0, 30)), f"doc-{rng.integers(50)}", int(rng.integers(99)))
            for j in range(int(rng.integers(0, 21)))
        ]
        for i in range(500)
    ]
    assert written_texts(questions, nbest) == reference_texts(questions, nbest)


def test_values_outside_the_fast_path_go_through_json_dumps() -> None:
    """A non-string question id or answer, a bool or numpy float64 score: json.dumps formats them, so the writer
    hands the file to it; a value json cannot write (a float32 score) raises as it did."""
    questions = [Question(id=7, text="q"), Question(id="x", text="q")]  # type: ignore[arg-type]
    nbest = [
        [Prediction("7", 3, True, "d", 1)],  # type: ignore[arg-type]
        [Prediction("x", "a", np.float64(0.25), "d", None), Prediction("x", "b", 2, None, 0)],
    ]
    assert written_texts(questions, nbest) == reference_texts(questions, nbest)
    float32 = [[Prediction("x", "a", np.float32(0.5), "d", 0)]]  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        nbest_predictions_json_text([Question(id="x", text="q")], float32)


def test_no_questions() -> None:
    assert written_texts([], []) == ("{}", "{}")
