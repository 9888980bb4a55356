"""The CLI through click's CliRunner, with the fake components registered as a plugin."""

from __future__ import annotations

import json
import os
import signal

import pytest

from odqa_core.testing import TOY_QUESTIONS, assert_one_line_error


@pytest.fixture(autouse=True)
def _fakes(fake_plugins):
    yield


def test_help_lists_commands_and_examples(odqa):
    result = odqa("--help")
    assert result.exit_code == 0
    for command in ("index", "retrieve", "evaluate", "run", "plugins"):
        assert command in result.output
        sub = odqa(f"{command} --help")
        assert sub.exit_code == 0 and ("Examples" in sub.output or "Environment" in sub.output), command


def test_plugins_json_lists_the_fakes(odqa):
    rows = {row["name"]: row for row in json.loads(odqa("plugins --json").output)}
    assert rows["odqa-fakes"]["components"]["retrievers"] == ["fake"]
    assert "example" in rows
    text = odqa("plugins").output
    assert "odqa-fakes" in text and "retrievers: fake" in text


def test_index_retrieve_evaluate(odqa, toy_files, toy_index, tmp_path):
    _, questions = toy_files
    run_file = tmp_path / "run.jsonl"
    assert (toy_index / "manifest.json").is_file()
    result = odqa(f"retrieve --index-dir {toy_index} --questions {questions} --top-k 3 --output {run_file}")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in run_file.read_text().splitlines()]
    assert [r["id"] for r in rows] == [q.id for q in TOY_QUESTIONS]
    assert all(len(r["hits"]) == 3 for r in rows)
    assert rows[0]["hits"][0]["doc_id"] == "toy-1"
    result = odqa(f"evaluate --run {run_file} --questions {questions} --index-dir {toy_index} --k 1,3 --json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["metrics"]["doc"]["acc@3"] == 1.0
    assert set(report["metrics"]) == {"doc", "answer"}
    table = odqa(f"evaluate --run {run_file} --questions {questions}").output
    assert "doc-acc" in table and "answer-acc" not in table  # no texts without corpus/index


def test_trec_run_format(odqa, toy_files, toy_index, tmp_path):
    corpus, questions = toy_files
    run_file = tmp_path / "run.trec"
    result = odqa(
        f"retrieve --index-dir {toy_index} --questions {questions} --top-k 2 --output {run_file} --format trec"
    )
    assert result.exit_code == 0, result.output
    assert run_file.read_text().splitlines()[0].split()[:4] == ["tq-1", "Q0", "toy-1", "1"]
    result = odqa(f"evaluate --run {run_file} --questions {questions} --corpus {corpus} --k 1,2 --json")
    assert json.loads(result.output)["metrics"]["answer"]["acc@2"] > 0


def test_run_writes_every_output(odqa, toy_files, tmp_path):
    corpus, questions = toy_files
    out = tmp_path / "out"
    result = odqa(
        "run --retriever fake --retriever example-title --fuser fake-sum --reader fake-reader "
        f"--post fake-strip,example-upper --corpus {corpus} --questions {questions} --output-dir {out} "
        "--top-k 3 -o fake.tokens=chars -o fake-sum.depth=4"
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "index",
        "run.jsonl",
        "summary.json",
        "predictions.json",
        "nbest_predictions.json",
        "odqa-output.json",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["components"]["fake"] == {"tokens": "chars"}
    assert summary["components"]["fake-sum"] == {"depth": 4}
    assert summary["retrieval"]["metrics"]["doc"]["acc@3"] > 0
    predictions = json.loads((out / "predictions.json").read_text())
    assert set(predictions) == {q.id for q in TOY_QUESTIONS}
    assert all(answer == answer.upper() for answer in predictions.values())
    assert (out / "index" / "fake" / "manifest.json").is_file()


# --- bad input: one line, non-zero exit, nothing half-written ---------------------------------------------------


def test_missing_corpus_file(odqa, tmp_path):
    result = odqa(f"index --retriever fake --corpus {tmp_path / 'nope.jsonl'} --index-dir {tmp_path / 'idx'}")
    assert_one_line_error(result, contains="nope.jsonl")
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize(
    "name, content, culprit",
    [
        ("bad.json", '{"data": [', "bad.json"),  # malformed JSON
        ("c.jsonl", '{"id": "d1", "text": "something"}\n{"id": "d2", "text": ""}\n', "d2"),  # empty document
    ],
)
def test_bad_corpus(odqa, tmp_path, name, content, culprit):
    (tmp_path / name).write_text(content)
    result = odqa(f"index --retriever fake --corpus {tmp_path / name} --index-dir {tmp_path / 'idx'}")
    assert_one_line_error(result, contains=culprit)
    assert not (tmp_path / "idx").exists()


def test_empty_question_text(odqa, toy_index, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "fine?"}\n{"id": "q2", "question": "   "}\n')
    result = odqa(f"retrieve --index-dir {toy_index} --questions {questions} --output {tmp_path / 'run.jsonl'}")
    assert_one_line_error(result, contains="q2")
    assert not (tmp_path / "run.jsonl").exists()


def test_unknown_retriever_lists_available(odqa, toy_files, tmp_path):
    corpus, _ = toy_files
    result = odqa(f"index --retriever nope --corpus {corpus} --index-dir {tmp_path / 'idx'}")
    assert_one_line_error(result, 2, "odqa plugins")
    assert "fake" in result.output


@pytest.mark.parametrize("option, message", [("speed=11", "'speed'"), ("tokens", "key=value")])
def test_unknown_or_malformed_option(odqa, toy_files, tmp_path, option, message):
    corpus, _ = toy_files
    result = odqa(f"index --retriever fake --corpus {corpus} --index-dir {tmp_path / 'idx'} -o {option}")
    assert_one_line_error(result, 2, message)


def test_index_from_another_format_version(odqa, toy_files, toy_index, tmp_path):
    _, questions = toy_files
    manifest = json.loads((toy_index / "manifest.json").read_text())
    manifest["format_version"] = 99
    (toy_index / "manifest.json").write_text(json.dumps(manifest))
    result = odqa(f"retrieve --index-dir {toy_index} --questions {questions} --output {tmp_path / 'run.jsonl'}")
    assert_one_line_error(result, contains="format version 99")
    assert not (tmp_path / "run.jsonl").exists()


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_index_file(odqa, toy_files, toy_index, tmp_path, damage):
    _, questions = toy_files
    victim = toy_index / "matrix.npy"
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-5] ^= 0xFF
    victim.write_bytes(bytes(data))
    out = tmp_path / "run.jsonl"
    out.write_text("previous run\n")
    result = odqa(f"retrieve --index-dir {toy_index} --questions {questions} --output {out}")
    assert_one_line_error(result, contains="matrix.npy")
    assert out.read_text() == "previous run\n"  # nothing already written is lost


def test_run_file_that_does_not_match_the_questions(odqa, toy_files, tmp_path):
    _, questions = toy_files
    run_file = tmp_path / "run.jsonl"
    run_file.write_text('{"id": "other", "hits": []}\n')
    assert_one_line_error(odqa(f"evaluate --run {run_file} --questions {questions}"), 2, "no ranking")
    run_file.write_text("not a run\n")
    assert_one_line_error(odqa(f"evaluate --run {run_file} --questions {questions}"), contains="line 1")


def test_bad_cutoffs_and_top_k(odqa, toy_files, tmp_path):
    corpus, questions = toy_files
    assert_one_line_error(odqa(f"evaluate --run x --questions {questions} --k 1,a"), 2, "--k")
    result = odqa(
        f"run --retriever fake --corpus {corpus} --questions {questions} --top-k 0 --output-dir {tmp_path}/o"
    )
    assert_one_line_error(result, 2, "top-k")


def test_train_group_lists_plugin_commands(odqa):
    result = odqa("train --help")
    assert result.exit_code == 0 and "Examples" in result.output


def test_retrieve_option_fixed_at_index_time(odqa, toy_files, toy_index, tmp_path):
    _, questions = toy_files
    run_file = tmp_path / "run.jsonl"
    result = odqa(f"retrieve --index-dir {toy_index} --questions {questions} --output {run_file} -o tokens=chars")
    assert_one_line_error(result, code=2, contains="fixed when the index is built")
    assert not run_file.exists()


# --- input files: checked before slow work, unreadable bytes are one-line errors --------------------------------


def _fail_if_called(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the missing input file was reported")

    return fail


def test_missing_questions_are_reported_before_the_index_loads(odqa, toy_index, tmp_path, monkeypatch):
    import odqa_core.pipeline

    missing = tmp_path / "no-questions.jsonl"
    monkeypatch.setattr(odqa_core.pipeline, "load_retriever", _fail_if_called("loading the index"))
    result = odqa(f"retrieve --index-dir {toy_index} --questions {missing} --output {tmp_path / 'run.jsonl'}")
    assert_one_line_error(result, 1, "no-questions.jsonl: no such file or directory")
    assert not (tmp_path / "run.jsonl").exists()


def test_run_reports_missing_questions_before_reading_the_corpus(odqa, toy_files, tmp_path, monkeypatch):
    import odqa_core._cli

    corpus, _ = toy_files
    monkeypatch.setattr(odqa_core._cli, "_load_corpus", _fail_if_called("reading the corpus"))
    out = tmp_path / "out"
    result = odqa(f"run --retriever fake --corpus {corpus} --questions {tmp_path / 'nope.jsonl'} --output-dir {out}")
    assert_one_line_error(result, 1, "nope.jsonl: no such file or directory")
    result = odqa(f"run --retriever fake --corpus {tmp_path / 'gone.jsonl'} --output-dir {out}")
    assert_one_line_error(result, 1, "gone.jsonl: no such file or directory")
    assert not out.exists()


def test_evaluate_reports_a_missing_run_before_loading_the_index(odqa, toy_files, toy_index, tmp_path, monkeypatch):
    import odqa_core.storage

    _, questions = toy_files
    monkeypatch.setattr(odqa_core.storage, "open_store", _fail_if_called("loading the index"))
    result = odqa(f"evaluate --run {tmp_path / 'no-run.jsonl'} --questions {questions} --index-dir {toy_index}")
    assert_one_line_error(result, 1, "no-run.jsonl: no such file or directory")


@pytest.mark.parametrize("culprit", ["run", "questions.jsonl", "questions.json", "corpus", "predictions"])
def test_non_utf8_input_files_of_evaluate(odqa, toy_files, tmp_path, culprit):
    corpus, questions = toy_files
    run_file, predictions = tmp_path / "run.jsonl", tmp_path / "predictions.json"
    run_file.write_text('{"id": "tq-1", "hits": [{"doc_id": "toy-1", "score": 1.0}]}\n', encoding="utf-8")
    predictions.write_text('{"tq-1": "x"}', encoding="utf-8")
    latin1 = "é, ü and ß in Latin-1\n".encode("latin-1")
    bad = {"run": run_file, "corpus": corpus, "predictions": predictions}.get(culprit, tmp_path / culprit)
    bad.write_bytes((run_file.read_bytes() if culprit == "run" else b"") + latin1)
    if culprit.startswith("questions"):
        questions = bad
    if culprit == "predictions":
        command = f"evaluate --predictions {predictions} --questions {questions}"
    else:
        command = f"evaluate --run {run_file} --questions {questions} --corpus {corpus}"
    assert_one_line_error(odqa(command), 1, "not UTF-8 text")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": "tq-1", "hits": [1]}', 'hit 1 has no "doc_id"'),
        ('{"id": "tq-1", "hits": "toy-1"}', 'a "hits" list'),
        ('{"id": "tq-1", "hits": [{"doc_id": "toy-1", "source_ids": 5}]}', '"source_ids" must be a list'),
        ('{"id": "tq-1", "hits": [{"doc_id": "toy-1"}', "malformed JSON"),
    ],
)
def test_malformed_run_lines(odqa, toy_files, tmp_path, line, problem):
    _, questions = toy_files
    run_file = tmp_path / "run.jsonl"
    run_file.write_text('{"id": "tq-2", "hits": []}\n' + line + "\n", encoding="utf-8")
    assert_one_line_error(odqa(f"evaluate --run {run_file} --questions {questions}"), 1, "run.jsonl line 2: ")
    assert problem in odqa(f"evaluate --run {run_file} --questions {questions}").output


# --- values that must be refused, Ctrl-C -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e999", "[1,NaN]", '{"a":[Infinity]}'])
def test_non_finite_option_values_are_refused(odqa, toy_files, tmp_path, value):
    corpus, questions = toy_files
    result = odqa(f"index --retriever fake --corpus {corpus} --index-dir {tmp_path / 'idx'} -o 'tokens={value}'")
    assert_one_line_error(result, 2, "option 'tokens' must be a finite number")
    assert not (tmp_path / "idx").exists()
    out = tmp_path / "out"
    result = odqa(
        f"run --retriever fake --corpus {corpus} --questions {questions} -o 'fake.x={value}' --output-dir {out}"
    )
    assert_one_line_error(result, 2, "option 'fake.x' must be a finite number")
    assert not out.exists()


def _interrupt() -> None:
    raise KeyboardInterrupt


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize(
    ("stop", "code", "message"),
    [(_interrupt, 130, "Interrupted"), (_terminate, 143, "Terminated")],
    ids=["ctrl-c", "kill"],
)
def test_a_stopped_command_exits_with_one_line_and_nothing_half_written(
    odqa, toy_files, toy_index, tmp_path, monkeypatch, stop, code, message
):
    """Ctrl-C (SIGINT) or kill (SIGTERM) while the run file is written: the shell's exit code (128 + signal), one
    line, the previous run kept and no temporary left behind."""
    import odqa_core._runs

    _, questions = toy_files
    output = tmp_path / "run.jsonl"
    output.write_text("previous run\n")

    format_block = odqa_core._runs._jsonl_block
    blocks = []

    def stopped_after_one_line(*args):
        if blocks:
            stop()
        blocks.append(format_block(*args))
        return blocks[-1]

    monkeypatch.setattr(odqa_core._runs, "_BLOCK_HITS", 1)  # one question (line) per block
    monkeypatch.setattr(odqa_core._runs, "_jsonl_block", stopped_after_one_line)
    handler = signal.getsignal(signal.SIGTERM)
    result = odqa(f"retrieve --index-dir {toy_index} --questions {questions} --output {output}")
    assert result.exit_code == code, result.output
    assert result.output.strip() == message
    assert len(blocks) == 1  # stopped after its first line was written
    assert output.read_text() == "previous run\n"
    assert not [p.name for p in tmp_path.iterdir() if "tmp" in p.name]
    assert signal.getsignal(signal.SIGTERM) is handler  # the command's SIGTERM handler is its own only
