"""Particle-stripped gold spans (``strip_answer_particles``): training answers that end in a Korean particle are
trimmed to the span without it, offsets exact, recorded in the training report."""

from __future__ import annotations

import dataclasses
import json

import pytest
from odqa_readers.base import ReaderExample
from odqa_readers.training import (
    ReaderTrainConfig,
    parse_reader_config,
    reader_examples,
    strip_answer_particles,
)

from odqa_core.errors import UsageError
from odqa_core.testing import assert_one_line_error, run_cli, write_toy_files
from odqa_core.types import Document, Question

# Answers as annotators sometimes mark them: with the particle that follows the noun in the passage.
PASSAGES = [
    Document("d1", "조선의 제4대 왕인 세종대왕이 1443년에 훈민정음을 창제하였다. 이 문자는 1446년에 반포되었다."),
    Document(
        "d2", "부산은 서울 다음으로 인구가 많은 도시이며 해운대가 유명하다. 부산의 돼지국밥과 밀면이 알려져 있다."
    ),
    Document("d3", "제주도는 한국에서 가장 큰 섬이다. 한라산이 섬의 가운데에 있다."),
]
QUESTIONS = [
    Question("q1", "훈민정음을 창제한 왕은?", ("세종대왕이",), (), ("d1",)),
    Question("q2", "훈민정음이 반포된 해는?", ("1446년",), (), ("d1",)),
    Question("q3", "서울 다음으로 인구가 많은 도시는?", ("부산은",), (), ("d2",)),
    Question("q4", "부산에서 유명한 음식은?", ("돼지국밥과",), (), ("d2",)),
    Question("q5", "한국에서 가장 큰 섬은?", ("제주도",), (), ("d3",)),
    Question("q6", "섬의 가운데에 있는 산은?", ("한라산이",), (), ("d3",)),
]


def test_trimmed_spans_are_exact_slices_without_the_particle():
    examples, _ = reader_examples(PASSAGES, QUESTIONS)
    trimmed, count = strip_answer_particles(examples)
    answers = {e.question.id: e.answer for e in trimmed}
    assert answers == {
        "q1": "세종대왕",
        "q2": "1446년",
        "q3": "부산",
        "q4": "돼지국밥",
        "q5": "제주도",
        "q6": "한라산",
    }
    assert count == 4
    for before, after in zip(examples, trimmed):
        text = after.document.text
        assert after.answer_start == before.answer_start  # only the end moves
        assert text[after.answer_start : after.answer_start + len(after.answer)] == after.answer
        assert before.answer.startswith(after.answer)
        assert after.question.answers == before.question.answers  # evaluation keeps the gold answers


def test_no_particle_no_answer_and_whole_words_are_left_alone():
    doc = PASSAGES[2]
    no_answer = ReaderExample(QUESTIONS[4], PASSAGES[0])
    whole_word = ReaderExample(QUESTIONS[4], doc, "제주도", 0)  # 도 here is part of the name (島)
    plain = ReaderExample(QUESTIONS[5], doc, "한라산", doc.text.index("한라산"))
    english = ReaderExample(QUESTIONS[5], Document("e", "The Han river"), "Han", 4)
    examples = [no_answer, whole_word, plain, english]
    assert strip_answer_particles(examples) == (examples, 0)


def test_the_setting_is_validated_and_round_trips_through_the_report_config():
    with pytest.raises(UsageError, match="strip_answer_particles must be true or false"):
        ReaderTrainConfig(strip_answer_particles="yes").validate()
    config = ReaderTrainConfig(strip_answer_particles=True, cloze=1, bootstrap_size="micro")
    stored = {k: v for k, v in config.validate().to_json().items() if k != "learning_rate"}
    assert parse_reader_config(json.loads(json.dumps(stored))) == config
    assert ReaderTrainConfig().strip_answer_particles is False


def test_the_sweep_trainer_takes_the_setting():
    from odqa_readers.trainers import ExtractiveTrainer

    assert "strip_answer_particles" in ExtractiveTrainer.option_names()
    assert ExtractiveTrainer(strip_answer_particles=True).train_config().strip_answer_particles is True
    with pytest.raises(UsageError, match="true or false"):
        ExtractiveTrainer(strip_answer_particles=1)


@pytest.mark.parametrize("flag", [True, False])
def test_train_reader_flag_trims_and_records_it(flag, tmp_path):
    corpus, questions = write_toy_files(tmp_path, PASSAGES, QUESTIONS)
    out = tmp_path / "run"
    result = run_cli(
        f"train reader --corpus {corpus} --questions {questions} --dev-questions {questions} --output {out} "
        "--bootstrap micro --vocab-size 300 --epochs 1 --batch-size 4 -o max_length=64 -o doc_stride=16"
        + (" --strip-answer-particles" if flag else "")
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["config"]["strip_answer_particles"] is flag
    assert report["n_particle_stripped_answers"] == (4 if flag else 0)
    assert ("4 of 6 answer spans end in a particle" in result.output) is flag
    assert (out / "best" / "manifest.json").is_file()


def test_train_reader_flag_takes_no_value(tmp_path):
    result = run_cli(f"train reader --output {tmp_path / 'o'} --strip-answer-particles=maybe")
    assert_one_line_error(result, 2)
    assert not (tmp_path / "o").exists()


def test_a_trimmed_example_is_a_new_value():
    example = ReaderExample(QUESTIONS[0], PASSAGES[0], "세종대왕이", PASSAGES[0].text.index("세종대왕이"))
    (trimmed,), _ = strip_answer_particles([example])
    assert trimmed == dataclasses.replace(example, answer="세종대왕")
    assert example.answer == "세종대왕이"  # the input is not modified


def test_the_trimming_is_the_registered_strip_particles_postprocessor(monkeypatch):
    """The readers do not import odqa-postprocess: the particle rules are those of whatever the registry creates
    under ``strip-particles``, applied through the ``Postprocessor.process`` interface."""
    from odqa_core import plugins

    created = []

    class DropLastCharacter:
        def process(self, question, predictions):
            return [dataclasses.replace(p, answer=p.answer[:-1]) for p in predictions]

    def create(kind, name, options=None):
        created.append((kind, name, options))
        return DropLastCharacter()

    monkeypatch.setattr(plugins, "create", create)
    examples, _ = reader_examples(PASSAGES, QUESTIONS)
    trimmed, count = strip_answer_particles(examples)
    assert created == [("postprocessor", "strip-particles", {})]
    assert [e.answer for e in trimmed] == [e.answer[:-1] for e in examples]
    assert count == len(examples)
