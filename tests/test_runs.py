"""Run files: writing refuses scores JSON cannot hold; reading gives one-line errors for anything malformed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odqa_core._runs import read_run, write_run
from odqa_core.errors import DataError
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS
from odqa_core.types import RankedResults


def _results(scores) -> RankedResults:
    scores = np.asarray(scores, np.float32)
    indices = np.tile(np.arange(scores.shape[1], dtype=np.int64), (scores.shape[0], 1))
    return RankedResults(indices, scores, TOY_DOCUMENTS)


@pytest.mark.parametrize("fmt", ["jsonl", "trec"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_write_run_refuses_non_finite_scores_and_keeps_the_old_file(tmp_path, fmt, bad):
    path = tmp_path / "run.jsonl"
    path.write_text("previous run\n")
    questions = TOY_QUESTIONS[:2]
    with pytest.raises(DataError) as info:
        write_run(path, questions, _results([[3.0, 2.0], [1.0, bad]]), fmt=fmt)
    message = str(info.value)
    assert "\n" not in message and repr(questions[1].id) in message and "rank 2" in message
    assert path.read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.jsonl"]


def test_written_runs_are_strict_json_and_read_back(tmp_path):
    path = tmp_path / "run.jsonl"
    questions = TOY_QUESTIONS[:2]
    write_run(path, questions, _results([[3.0, 2.0], [1.0, 0.5]]))
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in a run file")) for line in lines]
    assert [r["id"] for r in rows] == [q.id for q in questions]
    runs = read_run(path, TOY_DOCUMENTS)
    assert [h.doc_id for h in runs[questions[0].id]] == [TOY_DOCUMENTS[0].id, TOY_DOCUMENTS[1].id]


def test_read_run_accepts_a_byte_order_mark_and_integer_ids(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": 7, "hits": [{"doc_id": 3, "source_ids": [3, "3b"]}]}\n')
    hit = read_run(path)["7"][0]
    assert hit.doc_id == "3" and hit.source_ids == ("3", "3b")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"id": "q", "hits": []}\n{"id": "r", "hits": [{"doc_id": "caf\xe9"}]}\n', "line 2: not UTF-8 text"),
        (b'{"id": "q", "hits": [{"doc_id": "d"}, 1]}\n', 'line 1: hit 2 has no "doc_id"'),
        (b'{"id": "q", "hits": {"doc_id": "d"}}\n', 'line 1: not a run line (expected an object with "id"'),
        (b'{"hits": []}\n', 'line 1: not a run line (expected an object with "id"'),
        (b'{"id": "q", "hits": [{"doc_id": "d", "source_ids": "d"}]}\n', '"source_ids" must be a list'),
        (b'{"id": "q", "hits": [{"doc_id": "d\n', "line 1: malformed JSON (Invalid control character at column"),
        (b"q Q0 d 1 2.0\n", "line 1: expected a jsonl or 6-column TREC run line"),
        (b"\n\n", "the run file is empty"),
    ],
)
def test_read_run_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "run.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_run(path)
    assert problem in str(info.value) and "\n" not in str(info.value)
