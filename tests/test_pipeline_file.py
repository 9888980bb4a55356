"""``odqa run --config pipeline.toml`` and the reader outputs of ``odqa run`` (fake components only)."""

from __future__ import annotations

import json

import pytest

from odqa_core.data import load_questions
from odqa_core.qa_metrics import evaluate_predictions
from odqa_core.testing import (
    TOY_QUESTIONS,
    assert_one_line_error,
    assert_refused_writing_nothing,
    run_and_read_summary,
)


@pytest.fixture(autouse=True)
def _fakes(fake_plugins):
    yield


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_runs_the_pipeline_it_describes(odqa, toy_files, tmp_path):
    corpus, questions = toy_files
    out = tmp_path / "out"
    config = _write(
        tmp_path / "pipeline.toml",
        f"""
retriever = "fake"
reader = "fake-reader"
post = ["fake-strip"]
corpus = "{corpus}"
questions = "{questions}"
output_dir = "{out}"
top_k = 3
n_best = 2
ks = [1, 3]

[options.fake]
tokens = "chars"

[options.fake-reader]
max_words = 1
""",
    )
    result = odqa(f"run --config {config}")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["retrievers"] == ["fake"] and summary["reader"] == "fake-reader"
    assert summary["postprocessors"] == ["fake-strip"] and summary["top_k"] == 3
    assert summary["components"]["fake"] == {"tokens": "chars"}
    assert summary["components"]["fake-reader"] == {"max_words": 1, "model": None}
    assert set(summary["retrieval"]["metrics"]["doc"]) == {"acc@1", "acc@3", "mrr@1", "mrr@3", "recall@1", "recall@3"}
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert all(1 <= len(entries) <= 2 for entries in nbest.values())
    for entries in nbest.values():
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0)
        assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
    # The summary's EM/F1 are the official-script numbers of the written predictions file.
    predictions = json.loads((out / "predictions.json").read_text())
    expected = evaluate_predictions(predictions, load_questions(questions)).to_json()
    assert summary["reader_metrics"] == expected
    assert "exact_match" in result.output and "reader (fake-reader + fake-strip)" in result.output


def test_command_line_flags_override_the_file(toy_files, tmp_path):
    corpus, questions = toy_files
    config = _write(
        tmp_path / "p.toml",
        f'retrievers = ["fake"]\nreader = "fake-reader"\ncorpus = "{corpus}"\nquestions = "{questions}"\n'
        f'top_k = 3\noutput_dir = "{tmp_path / "from-file"}"\n[options.fake]\ntokens = "words"\n',
    )
    out = tmp_path / "from-flags"
    summary = run_and_read_summary(f"run --config {config} --top-k 2 -o fake.tokens=chars --metric squad", out)
    assert summary["top_k"] == 2 and summary["components"]["fake"] == {"tokens": "chars"}
    assert summary["reader_metrics"]["metric"] == "squad"
    assert not (tmp_path / "from-file").exists()


def test_questions_without_answers_are_answered_but_not_scored(odqa, toy_files, tmp_path):
    corpus, _ = toy_files
    questions = _write(
        tmp_path / "bare.jsonl", "".join(json.dumps({"id": q.id, "question": q.text}) + "\n" for q in TOY_QUESTIONS)
    )
    out = tmp_path / "o"
    result = odqa(
        f"run --retriever fake --reader fake-reader --corpus {corpus} --questions {questions} --output-dir {out}"
    )
    assert result.exit_code == 0, result.output
    assert set(json.loads((out / "predictions.json").read_text())) == {q.id for q in TOY_QUESTIONS}
    metrics = json.loads((out / "summary.json").read_text())["reader_metrics"]
    assert metrics["exact_match"] is None and metrics["n_scored"] == 0 and metrics["n_unanswerable"] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('retriever = "fake"\nbogus = 1\n', "unknown key 'bogus'"),
        ('retriever = "fake"\ntop_k = "ten"\n', "'top_k' must be a int"),
        ('retriever = "fake"\ndedupe = 1\n', "'dedupe' must be a bool"),
        ('retriever = "fake"\nks = [1, "5"]\n', "'ks' must be a list of ints"),
        ('retriever = "fake"\nretrievers = ["fake"]\n', "not both"),
        ('retriever = "fake"\noptions = {fake = 3}\n', "options.fake must be a table"),
        ('retriever = "fake\n', "not valid TOML"),
        ('retriever = "fake"\n[options.fake]\ntokens = inf\n', "bad.toml: option 'fake.tokens' must be a finite"),
        ('retriever = "fake"\n[options.fake]\ntokens = -inf\n', "got -Infinity"),
        ('retriever = "fake"\n[options.fake]\ntokens = nan\n', "got NaN"),
        ('retriever = "fake"\n[options.fake]\ntokens = [1.0, nan]\n', "got NaN in [1.0, NaN]"),
    ],
)
def test_bad_pipeline_files_are_one_line_errors(odqa, tmp_path, text, message):
    config = _write(tmp_path / "bad.toml", text)
    out = tmp_path / "o"
    result = odqa(f"run --config {config} --output-dir {out}")
    assert_one_line_error(result, 2, message)
    assert not out.exists()


def test_missing_pipeline_file(odqa, tmp_path):
    result = odqa(f"run --config {tmp_path / 'nope.toml'} --output-dir {tmp_path / 'o'}")
    assert_one_line_error(result, 2, "nope.toml")


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("--retriever fake --retriever example-title", "fuser"),  # several retrievers need a fuser
        ("--retriever fake --post fake-strip", "add a --reader"),  # postprocessors need a reader
    ],
)
def test_an_incomplete_pipeline_is_a_usage_error(stages, message, toy_files, tmp_path):
    corpus, _ = toy_files
    out = tmp_path / "o"
    assert_refused_writing_nothing(f"run {stages} --corpus {corpus} --output-dir {out}", out, 2, message)


def test_the_reader_reads_only_the_best_reader_top_k_passages(toy_files, tmp_path):
    corpus, questions = toy_files
    out = tmp_path / "o"
    summary = run_and_read_summary(
        f"run --retriever fake --reader fake-reader --corpus {corpus} --questions {questions} "
        "--top-k 3 --reader-top-k 1 --n-best 5",
        out,
    )
    assert summary["top_k"] == 3 and summary["reader_top_k"] == 1
    assert "acc@3" in summary["retrieval"]["metrics"]["doc"]  # retrieval is still evaluated to top_k
    rows = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    first = {row["id"]: row["hits"][0]["doc_id"] for row in rows}
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    for qid, entries in nbest.items():
        assert entries and {e["doc_id"] for e in entries} <= {first[qid]}


def test_reader_top_k_must_be_positive(odqa, toy_files, tmp_path):
    corpus, questions = toy_files
    result = odqa(
        f"run --retriever fake --reader fake-reader --corpus {corpus} --reader-top-k 0 --output-dir {tmp_path}/o"
    )
    assert_one_line_error(result, 2, "reader top-k")
    assert not (tmp_path / "o").exists()
