"""The postprocessors through ``odqa run`` (the core's fake retriever and reader on the bundled sample)."""

from __future__ import annotations

import json

import pytest

from odqa_core.testing import FakePlugin, assert_one_line_error, registered_plugin, run_and_read_summary, run_cli


@pytest.fixture(autouse=True)
def _fakes():
    with registered_plugin(FakePlugin(), "odqa-fakes"):
        yield


def test_run_with_the_postprocessors(tmp_path):
    out = tmp_path / "out"
    summary = run_and_read_summary(
        "run --retriever fake --reader fake-reader --post clean,strip-particles,vote --top-k 3 "
        "-o vote.aggregate=sum -o strip-particles.min_stem=1 -o clean.brackets=true",
        out,
    )
    assert summary["postprocessors"] == ["clean", "strip-particles", "vote"]
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    predictions = json.loads((out / "predictions.json").read_text())
    assert nbest and set(predictions) == set(nbest)
    for qid, entries in nbest.items():
        answers = [e["text"] for e in entries]
        assert len(set(answers)) == len(answers), "vote leaves one entry per answer"
        assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
        assert predictions[qid] == answers[0]


@pytest.mark.parametrize(
    "options, culprit",
    [
        ("-o vote.aggregate=median", "aggregate"),
        ("-o clean.brackets=maybe", "brackets"),
        ("-o strip-particles.min_stem=0", "min_stem"),
        ("-o strip-particles.analyzer=mecab", "analyzer"),
        ("-o vote.no_such_option=1", "no_such_option"),
    ],
)
def test_bad_option_is_one_line(tmp_path, options, culprit):
    out = tmp_path / "out"
    result = run_cli(
        f"run --retriever fake --reader fake-reader --post clean,strip-particles,vote --output-dir {out} {options}"
    )
    assert_one_line_error(result, 2, culprit)
    assert not out.exists()
