"""Answers a person can read: ``odqa ask``, the table ``odqa run`` ends with, ``--questions sample`` and what
``summary.json`` records (fake components only, no torch)."""

from __future__ import annotations

import json
import re

import pytest

from odqa_core import data
from odqa_core._answers import answer_table, display_width, fit, highlight
from odqa_core.qa_metrics import exact_match
from odqa_core.testing import TOY_QUESTIONS, assert_one_line_error, run_and_read_summary
from odqa_core.types import Prediction, Question

SEOUL = "Which river flows through Seoul?"


@pytest.fixture(autouse=True)
def _fakes(fake_plugins):
    yield


def test_ask_prints_the_answer_in_its_passage_the_next_best_and_the_passages(odqa, toy_files):
    corpus, _ = toy_files
    result = odqa(f'ask "{SEOUL}" --retriever fake --reader fake-reader --corpus {corpus} --passages 2')
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"Q: {SEOUL}\nA: ")
    answer = re.search(r"^A: (.+?)   \(probability (\d\.\d\d), score", out, re.M)
    assert answer is not None and 0 < float(answer.group(2)) <= 1
    # Not a terminal: the answer in [brackets] inside its passage, and no ANSI escape anywhere.
    assert f"[{answer.group(1)}]" in out and "\x1b[" not in out
    assert "next best:" in out and "top passages:" in out
    passages = re.findall(r"^ +\d\. +-?\d+\.\d{3}  (toy-\d)", out, re.M)
    assert len(passages) == 2 and passages[0] == "toy-1"


def test_ask_json_answers_several_questions(odqa, toy_files):
    corpus, _ = toy_files
    documents = {d.id: d for d in data.load_corpus(corpus)}
    result = odqa(
        f'ask "{SEOUL}" "김치는 무엇으로 만드는 음식인가?" --retriever fake --reader fake-reader --corpus {corpus} '
        "--n-best 3 --passages 1 --json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["id"] for row in rows] == ["q1", "q2"] and rows[1]["question"] == "김치는 무엇으로 만드는 음식인가?"
    for row in rows:
        assert row["answer"] == row["nbest"][0]["text"] and 1 <= len(row["nbest"]) <= 3
        assert sum(entry["probability"] for entry in row["nbest"]) == pytest.approx(1.0)
        text = documents[row["doc_id"]].text
        assert text[row["start"] : row["start"] + len(row["answer"])] == row["answer"]
        assert len(row["passages"]) == 1 and row["passages"][0]["rank"] == 1
        assert set(row["passages"][0]) == {"rank", "doc_id", "title", "score", "text"}


def test_ask_without_a_reader_shows_the_passages_only(odqa, toy_files):
    corpus, _ = toy_files
    result = odqa(f'ask "{SEOUL}" --retriever fake --corpus {corpus}')
    assert result.exit_code == 0, result.output
    assert "A:" not in result.output and "passages:" in result.output and "toy-1" in result.output
    rows = json.loads(odqa(f'ask "{SEOUL}" --retriever fake --corpus {corpus} --json').output)
    assert "answer" not in rows[0] and len(rows[0]["passages"]) == 3


def test_ask_searches_an_index_and_takes_a_pipeline_file(odqa, toy_files, tmp_path):
    corpus, questions = toy_files
    index = tmp_path / "idx"
    assert odqa(f"index --retriever fake --corpus {corpus} --index-dir {index}").exit_code == 0
    result = odqa(f'ask "{SEOUL}" --index-dir {index} --reader fake-reader -o fake-reader.max_words=1 --json')
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert len(row["answer"].split()) == 1 and row["passages"][0]["doc_id"] == "toy-1"
    # A run's pipeline file: its questions and output directory are the run's, not the question's.
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'retriever = "fake"\nreader = "fake-reader"\ncorpus = "{corpus}"\nquestions = "{questions}"\n'
        f'output_dir = "{tmp_path / "out"}"\nks = [1]\n[options.fake-reader]\nmax_words = 3\n',
        encoding="utf-8",
    )
    result = odqa(f'ask "{SEOUL}" --config {config} --json')
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)[0]["answer"].split()) == 3
    assert not (tmp_path / "out").exists()


def test_ask_bad_input_is_a_one_line_error(odqa, toy_files, tmp_path):
    corpus, _ = toy_files
    assert_one_line_error(odqa(f'ask "  " --retriever fake --corpus {corpus}'), 2, "question 1 is empty")
    index = tmp_path / "idx"
    odqa(f"index --retriever fake --corpus {corpus} --index-dir {index}")
    assert_one_line_error(odqa(f'ask "x" --index-dir {index} --corpus {corpus}'), 2, "not both")
    assert_one_line_error(odqa(f'ask "x" --retriever fake --corpus {corpus} --passages -1'), 2, "--passages")
    assert_one_line_error(odqa(f'ask "x" --retriever fake --post fake-strip --corpus {corpus}'), 2, "--reader")
    assert odqa("ask --retriever fake").exit_code == 2  # no question: click's usage error


def test_highlight_marks_the_answer_in_colour_or_brackets():
    text = "The Han River flows through Seoul and into the Yellow Sea."
    start = text.index("Han River")
    assert highlight(text, start, start + 9, color=False) == (
        "The [Han River] flows through Seoul and into the Yellow Sea."
    )
    assert highlight(text, start, start + 9, color=True).startswith("The \x1b[1;33mHan River\x1b[0m flows")
    assert highlight(text, start, start + 9, color=False, context=5) == "The [Han River] flow…"


def test_display_width_counts_wide_characters_twice():
    assert display_width("부산") == 4 and display_width("Busan") == 5
    assert fit("서울 다음으로", 8) == "서울 다…" and fit("부산", 6) == "부산  "
    assert display_width(fit("서울 다음으로 인구가 많은 도시", 11)) == 11


def test_answer_table_marks_exact_matches():
    questions = [Question("a", "서울 다음으로 인구가 많은 도시는?", ("부산",)), Question("b", "Q?", ("x", "y"))]
    table = answer_table(questions, [[Prediction("a", "부산")], [Prediction("b", "z")]], limit=5)
    lines = table.splitlines()
    assert lines[0] == "answers (2 of 2 questions; ✓ exact match):"
    assert lines[3].endswith("✓") and "부산" in lines[3]
    assert lines[4].endswith("✗") and "x / y" in lines[4]
    assert answer_table(questions, [[], []], limit=1).splitlines()[-1].endswith("(none)     ✗")


def test_run_ends_with_a_table_of_questions_gold_and_predicted_answers(odqa, toy_files, tmp_path):
    corpus, questions = toy_files
    out = tmp_path / "out"
    result = odqa(
        f"run --retriever fake --reader fake-reader --corpus {corpus} --questions {questions} --output-dir {out}"
    )
    assert result.exit_code == 0, result.output
    predictions = json.loads((out / "predictions.json").read_text())
    table = result.output[result.output.index("answers (3 of 3 questions") :].splitlines()
    rows = table[3:]
    assert len(rows) == len(TOY_QUESTIONS)
    for question, row in zip(TOY_QUESTIONS, rows):
        assert row.startswith(question.text[:10]) and question.answers[0] in row
        correct = exact_match(predictions[question.id], question.answers)
        assert row.endswith("✓" if correct else "✗")
    quiet = odqa(
        f"run --retriever fake --reader fake-reader --corpus {corpus} --questions {questions} "
        f"--output-dir {out} --show 0"
    )
    assert quiet.exit_code == 0 and "answers (" not in quiet.output
    as_json = odqa(
        f"run --retriever fake --reader fake-reader --corpus {corpus} --questions {questions} "
        f"--output-dir {out} --json"
    )
    assert as_json.exit_code == 0 and "nbest" not in json.loads(as_json.output)


def test_summary_records_every_option_and_the_stage_timings(toy_files, tmp_path):
    corpus, questions = toy_files
    summary = run_and_read_summary(
        f"run --retriever fake --reader fake-reader --post fake-strip --corpus {corpus} --questions {questions} "
        "--top-k 4 --n-best 2 --k 1,4 --metric squad --split-words 50",
        tmp_path / "out",
    )
    assert summary["components"] == {
        "fake": {"tokens": "words"},
        "fake-reader": {"max_words": 2, "model": None},
        "fake-strip": {"chars": " .,!?"},
    }
    assert summary["settings"] == {"n_best": 2, "batch_size": 1024, "ks": [1, 4], "metric": "squad"}
    assert summary["inputs"] == {
        "corpus": str(corpus),
        "questions": str(questions),
        "split_words": 50,
        "stride": None,
        "dedupe": True,
    }
    assert set(summary["timings"]) == {"train_s", "index_s", "retrieve_s", "read_s"}
    assert summary["timings"]["train_s"] == 0.0  # nothing was trained on the way


def test_evaluate_accepts_the_words_sample_and_sample_train(odqa, tmp_path):
    for word, path in (
        ("sample", data.sample_questions_path()),
        ("sample-train", data.sample_train_questions_path()),
    ):
        qs = data.load_questions(path)
        predictions = {q.id: q.answers[0] for q in qs[:10]}  # ten right, the rest missing
        file = tmp_path / f"{word}.json"
        file.write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
        result = odqa(f"evaluate --predictions {file} --questions {word} --json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["exact_match"] == pytest.approx(100 * 10 / len(qs))
    # A file of that name in the current directory is read instead of the bundled questions.
    (tmp_path / "sample").write_text("not questions")
    result = odqa(f"evaluate --predictions {file} --questions sample")
    assert_one_line_error(result, None, "sample line 1 column 1: malformed JSON")


def test_ask_on_a_stored_index_of_the_sample_fuses_it_like_a_run(odqa, tmp_path):
    index = tmp_path / "idx"
    assert odqa(f"index --retriever fake --corpus {data.sample_corpus_path()} --index-dir {index}").exit_code == 0
    result = odqa(f'ask "한글을 만든 임금은?" --index-dir {index} --fuser fake-sum -o fake-sum.depth=3 --json')
    assert result.exit_code == 0, result.output
    passages = json.loads(result.output)[0]["passages"]
    assert len(passages) == 3 and "한글" in {p["title"] for p in passages}
