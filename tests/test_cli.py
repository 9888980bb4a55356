"""The CLI through click's CliRunner, with the fake components registered as a plugin."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from odqa_core.cli import cli
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS


@pytest.fixture
def runner(fake_plugins):
    return CliRunner()


@pytest.fixture
def toy_files(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in TOY_DOCUMENTS))
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(
            json.dumps(
                {"id": q.id, "question": q.text, "answers": list(q.answers), "doc_ids": list(q.doc_ids)},
                ensure_ascii=False,
            )
            + "\n"
            for q in TOY_QUESTIONS
        )
    )
    return corpus, questions


def assert_one_line_error(result, code=None, contains=""):
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert contains in lines[0], lines[0]


def test_help_lists_commands_and_examples(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("index", "retrieve", "evaluate", "run", "plugins"):
        assert command in result.output
        sub = runner.invoke(cli, [command, "--help"])
        assert sub.exit_code == 0 and ("Examples" in sub.output or "Environment" in sub.output), command


def test_plugins_json_lists_the_fakes(runner):
    result = runner.invoke(cli, ["plugins", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["odqa-fakes"]["components"]["retrievers"] == ["fake"]
    assert "example" in rows
    text = runner.invoke(cli, ["plugins"]).output
    assert "odqa-fakes" in text and "retrievers: fake" in text


def test_index_retrieve_evaluate(runner, toy_files, tmp_path):
    corpus, questions = toy_files
    index_dir, run_file = tmp_path / "idx", tmp_path / "run.jsonl"
    result = runner.invoke(
        cli, ["index", "--retriever", "fake", "--corpus", str(corpus), "--index-dir", str(index_dir)]
    )
    assert result.exit_code == 0, result.output
    assert (index_dir / "manifest.json").is_file()
    result = runner.invoke(
        cli,
        [
            "retrieve",
            "--index-dir",
            str(index_dir),
            "--questions",
            str(questions),
            "--top-k",
            "3",
            "--output",
            str(run_file),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in run_file.read_text().splitlines()]
    assert [r["id"] for r in rows] == [q.id for q in TOY_QUESTIONS]
    assert all(len(r["hits"]) == 3 for r in rows)
    assert rows[0]["hits"][0]["doc_id"] == "toy-1"
    result = runner.invoke(
        cli,
        [
            "evaluate",
            "--run",
            str(run_file),
            "--questions",
            str(questions),
            "--index-dir",
            str(index_dir),
            "--k",
            "1,3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["metrics"]["doc"]["acc@3"] == 1.0
    assert set(report["metrics"]) == {"doc", "answer"}
    table = runner.invoke(cli, ["evaluate", "--run", str(run_file), "--questions", str(questions)])
    assert "doc-acc" in table.output and "answer-acc" not in table.output  # no texts without corpus/index


def test_trec_run_format(runner, toy_files, tmp_path):
    corpus, questions = toy_files
    runner.invoke(cli, ["index", "--retriever", "fake", "--corpus", str(corpus), "--index-dir", str(tmp_path / "i")])
    result = runner.invoke(
        cli,
        [
            "retrieve",
            "--index-dir",
            str(tmp_path / "i"),
            "--questions",
            str(questions),
            "--top-k",
            "2",
            "--output",
            str(tmp_path / "run.trec"),
            "--format",
            "trec",
        ],
    )
    assert result.exit_code == 0, result.output
    first = (tmp_path / "run.trec").read_text().splitlines()[0].split()
    assert first[:4] == ["tq-1", "Q0", "toy-1", "1"]
    result = runner.invoke(
        cli,
        [
            "evaluate",
            "--run",
            str(tmp_path / "run.trec"),
            "--questions",
            str(questions),
            "--corpus",
            str(corpus),
            "--k",
            "1,2",
            "--json",
        ],
    )
    assert json.loads(result.output)["metrics"]["answer"]["acc@2"] > 0


def test_run_writes_every_output(runner, toy_files, tmp_path):
    corpus, questions = toy_files
    out = tmp_path / "out"
    result = runner.invoke(
        cli,
        [
            "run",
            "--retriever",
            "fake",
            "--retriever",
            "example-title",
            "--fuser",
            "fake-sum",
            "--reader",
            "fake-reader",
            "--post",
            "fake-strip,example-upper",
            "--corpus",
            str(corpus),
            "--questions",
            str(questions),
            "--output-dir",
            str(out),
            "--top-k",
            "3",
            "-o",
            "fake.tokens=chars",
            "-o",
            "fake-sum.depth=4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "index",
        "run.jsonl",
        "summary.json",
        "predictions.json",
        "nbest_predictions.json",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["components"]["fake"] == {"tokens": "chars"}
    assert summary["components"]["fake-sum"] == {"depth": 4}
    assert summary["retrieval"]["metrics"]["doc"]["acc@3"] > 0
    predictions = json.loads((out / "predictions.json").read_text())
    assert set(predictions) == {q.id for q in TOY_QUESTIONS}
    assert all(answer == answer.upper() for answer in predictions.values())
    assert (out / "index" / "fake" / "manifest.json").is_file()


def test_run_needs_a_fuser_for_several_retrievers(runner, toy_files, tmp_path):
    corpus, questions = toy_files
    result = runner.invoke(
        cli,
        [
            "run",
            "--retriever",
            "fake",
            "--retriever",
            "example-title",
            "--corpus",
            str(corpus),
            "--output-dir",
            str(tmp_path / "o"),
        ],
    )
    assert_one_line_error(result, 2, "fuser")
    assert not (tmp_path / "o").exists()


# --- bad input: one line, non-zero exit, nothing half-written ---------------------------------------------------


def test_missing_corpus_file(runner, tmp_path):
    result = runner.invoke(
        cli,
        [
            "index",
            "--retriever",
            "fake",
            "--corpus",
            str(tmp_path / "nope.jsonl"),
            "--index-dir",
            str(tmp_path / "idx"),
        ],
    )
    assert_one_line_error(result, contains="nope.jsonl")
    assert not (tmp_path / "idx").exists()


def test_malformed_json(runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [')
    result = runner.invoke(
        cli, ["index", "--retriever", "fake", "--corpus", str(bad), "--index-dir", str(tmp_path / "idx")]
    )
    assert_one_line_error(result, contains="bad.json")
    assert not (tmp_path / "idx").exists()


def test_empty_question_text(runner, toy_files, tmp_path):
    corpus, _ = toy_files
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "fine?"}\n{"id": "q2", "question": "   "}\n')
    runner.invoke(cli, ["index", "--retriever", "fake", "--corpus", str(corpus), "--index-dir", str(tmp_path / "i")])
    result = runner.invoke(
        cli,
        [
            "retrieve",
            "--index-dir",
            str(tmp_path / "i"),
            "--questions",
            str(questions),
            "--output",
            str(tmp_path / "run.jsonl"),
        ],
    )
    assert_one_line_error(result, contains="q2")
    assert not (tmp_path / "run.jsonl").exists()


def test_empty_document_text(runner, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "text": "something"}\n{"id": "d2", "text": ""}\n')
    result = runner.invoke(
        cli, ["index", "--retriever", "fake", "--corpus", str(corpus), "--index-dir", str(tmp_path / "idx")]
    )
    assert_one_line_error(result, contains="d2")
    assert not (tmp_path / "idx").exists()


def test_unknown_retriever_lists_available(runner, toy_files, tmp_path):
    corpus, _ = toy_files
    result = runner.invoke(
        cli, ["index", "--retriever", "nope", "--corpus", str(corpus), "--index-dir", str(tmp_path / "idx")]
    )
    assert_one_line_error(result, 2, "odqa plugins")
    assert "fake" in result.output


def test_unknown_option_and_malformed_option(runner, toy_files, tmp_path):
    corpus, _ = toy_files
    result = runner.invoke(
        cli,
        [
            "index",
            "--retriever",
            "fake",
            "--corpus",
            str(corpus),
            "--index-dir",
            str(tmp_path / "idx"),
            "-o",
            "speed=11",
        ],
    )
    assert_one_line_error(result, 2, "'speed'")
    result = runner.invoke(
        cli,
        [
            "index",
            "--retriever",
            "fake",
            "--corpus",
            str(corpus),
            "--index-dir",
            str(tmp_path / "idx"),
            "-o",
            "tokens",
        ],
    )
    assert_one_line_error(result, 2, "key=value")


def test_index_from_another_format_version(runner, toy_files, tmp_path):
    corpus, questions = toy_files
    runner.invoke(cli, ["index", "--retriever", "fake", "--corpus", str(corpus), "--index-dir", str(tmp_path / "i")])
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "i" / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(
        cli,
        [
            "retrieve",
            "--index-dir",
            str(tmp_path / "i"),
            "--questions",
            str(questions),
            "--output",
            str(tmp_path / "run.jsonl"),
        ],
    )
    assert_one_line_error(result, contains="format version 99")
    assert not (tmp_path / "run.jsonl").exists()


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_index_file(runner, toy_files, tmp_path, damage):
    corpus, questions = toy_files
    runner.invoke(cli, ["index", "--retriever", "fake", "--corpus", str(corpus), "--index-dir", str(tmp_path / "i")])
    victim = tmp_path / "i" / "matrix.npy"
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-5] ^= 0xFF
    victim.write_bytes(bytes(data))
    out = tmp_path / "run.jsonl"
    out.write_text("previous run\n")
    result = runner.invoke(
        cli, ["retrieve", "--index-dir", str(tmp_path / "i"), "--questions", str(questions), "--output", str(out)]
    )
    assert_one_line_error(result, contains="matrix.npy")
    assert out.read_text() == "previous run\n"  # nothing already written is lost


def test_run_file_that_does_not_match_the_questions(runner, toy_files, tmp_path):
    _, questions = toy_files
    run_file = tmp_path / "run.jsonl"
    run_file.write_text('{"id": "other", "hits": []}\n')
    result = runner.invoke(cli, ["evaluate", "--run", str(run_file), "--questions", str(questions)])
    assert_one_line_error(result, 2, "no ranking")
    run_file.write_text("not a run\n")
    assert_one_line_error(
        runner.invoke(cli, ["evaluate", "--run", str(run_file), "--questions", str(questions)]), contains="line 1"
    )


def test_bad_cutoffs_and_top_k(runner, toy_files, tmp_path):
    corpus, questions = toy_files
    result = runner.invoke(cli, ["evaluate", "--run", "x", "--questions", str(questions), "--k", "1,a"])
    assert_one_line_error(result, 2, "--k")
    result = runner.invoke(
        cli,
        [
            "run",
            "--retriever",
            "fake",
            "--corpus",
            str(corpus),
            "--questions",
            str(questions),
            "--top-k",
            "0",
            "--output-dir",
            str(tmp_path / "o"),
        ],
    )
    assert_one_line_error(result, 2, "top-k")
