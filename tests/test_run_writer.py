"""The block run writer writes the same bytes as the per-hit ``json.dumps`` writer it replaced (kept here as the
reference), for JSONL and TREC, whatever the documents, scores, k and destination."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import odqa_core._runs
from odqa_core._runs import score_strings, write_run
from odqa_core.types import Document, Question, RankedResults


def reference_write_run(
    path: Path, questions: Sequence[Question], results: RankedResults, fmt: str = "jsonl", tag: str = "odqa"
) -> None:
    """The writer before the block writer: one ``json.dumps`` (or f-string) per hit."""
    docs = results.documents
    with open(path, "w", encoding="utf-8") as fh:
        for row, question in enumerate(questions):
            pairs = [(docs[i], float(s)) for i, s in zip(results.indices[row].tolist(), results.scores[row].tolist())]
            if fmt == "trec":
                for rank, (doc, score) in enumerate(pairs, 1):
                    fh.write(f"{question.id} Q0 {doc.id} {rank} {score:.6f} {tag}\n")
                continue
            hits = []
            for doc, score in pairs:
                hit: dict[str, Any] = {"doc_id": doc.id, "score": round(score, 6)}
                if doc.source_ids != (doc.id,):
                    hit["source_ids"] = list(doc.source_ids)
                hits.append(hit)
            fh.write(json.dumps({"id": question.id, "question": question.text, "hits": hits}, ensure_ascii=False))
            fh.write("\n")


# Ids with spaces, quotes, backslashes, control characters, Hangul and astral characters: everything JSON escapes
# (or, with ensure_ascii=False, does not).
identifiers = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
scores_float32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
interesting_scores = st.sampled_from(
    # exact ties at the 7th decimal (1/128 = 0.0078125 rounds half to even), signed zeros, repr's 1e-05 range
    [0.0, -0.0, 1 / 128, 3 / 128, -5 / 128, 5e-7, -4e-7, 1.5e-6, 1e-5, 9.99e-5, 1e-4, 1 / 3, -12.3456785, 1e9, 3.4e38]
)


@st.composite
def run_inputs(draw: Any) -> tuple[list[Question], RankedResults]:
    n_docs = draw(st.integers(1, 8))
    ids = draw(st.lists(identifiers, min_size=n_docs, max_size=n_docs, unique=True))
    documents = []
    for doc_id in ids:
        kind = draw(st.sampled_from(["plain", "passage", "merged", "own id"]))
        metadata: dict[str, Any] = {}
        if kind == "passage":
            metadata["source_ids"] = (draw(identifiers),)
        elif kind == "merged":  # duplicates merged into this document
            metadata["source_ids"] = (doc_id, *draw(st.lists(identifiers, min_size=1, max_size=3)))
        elif kind == "own id":  # source_ids written out but equal to [id]: not printed
            metadata["source_ids"] = (doc_id,)
        documents.append(Document(doc_id, "text", metadata=metadata))
    n_questions = draw(st.integers(1, 5))
    k = draw(st.integers(0, 2 * n_docs + 1))  # smaller and larger than the corpus (rows then repeat documents)
    questions = [
        Question(draw(identifiers), draw(st.text(max_size=12)) or "?") for _ in range(n_questions)
    ]  # ids need not be unique for the writer
    indices = np.array(
        [[draw(st.integers(0, n_docs - 1)) for _ in range(k)] for _ in range(n_questions)], dtype=np.int64
    ).reshape(n_questions, k)
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.float16]))
    values = [draw(st.one_of(scores_float32, interesting_scores)) for _ in range(n_questions * k)]
    with np.errstate(over="ignore"):
        scores = np.array(values, dtype=np.float64).astype(dtype).reshape(n_questions, k)
    if not np.isfinite(scores).all():  # float16 overflow: a non-finite score is refused, tested in test_runs
        scores = np.nan_to_num(scores, posinf=1.0, neginf=-1.0)
    return questions, RankedResults(indices, scores, documents)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=run_inputs(), fmt=st.sampled_from(["jsonl", "trec"]), block_hits=st.sampled_from([1, 3, 1 << 16]))
def test_block_writer_writes_the_bytes_of_the_per_hit_writer(tmp_path, inputs, fmt, block_hits):
    questions, results = inputs
    reference_write_run(tmp_path / "reference", questions, results, fmt=fmt)
    with mock.patch.object(odqa_core._runs, "_BLOCK_HITS", block_hits):  # blocks of one, several and all rows
        write_run(tmp_path / "run", questions, results, fmt=fmt)
    assert (tmp_path / "run").read_bytes() == (tmp_path / "reference").read_bytes()


def _korean_run() -> tuple[list[Question], RankedResults]:
    documents = [
        Document("문서-1#0", "가", metadata={"source_ids": ("문서-1",)}),
        Document('say "hi"\\', "나"),
        Document("d3", "다", metadata={"source_ids": ("d3", "d3-copy", "😀")}),
    ]
    questions = [Question("q-1", "한국의 수도는?"), Question("q\t2", "tab\tand\nnewline")]
    scores = np.array([[12.3456789, 0.0, -0.0], [-1.0000005, 1e-5, 123456.125]], np.float32)
    return questions, RankedResults(np.array([[0, 1, 2], [2, 2, 0]]), scores, documents)


@pytest.mark.parametrize("fmt", ["jsonl", "trec"])
def test_standard_output_gets_the_same_bytes(tmp_path, capsysbinary, fmt):
    questions, results = _korean_run()
    reference_write_run(tmp_path / "reference", questions, results, fmt=fmt)
    write_run("-", questions, results, fmt=fmt)
    assert capsysbinary.readouterr().out == (tmp_path / "reference").read_bytes()


def test_the_korean_run_reads_as_today(tmp_path):
    """A fixed example, checked by eye: rounding to 6 decimals, -0.0 kept, 1e-05 as repr writes it."""
    questions, results = _korean_run()
    write_run(tmp_path / "run.jsonl", questions, results)
    first, second = (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    assert first == (
        '{"id": "q-1", "question": "한국의 수도는?", "hits": [{"doc_id": "문서-1#0", "score": 12.345679, '
        '"source_ids": ["문서-1"]}, {"doc_id": "say \\"hi\\"\\\\", "score": 0.0}, {"doc_id": "d3", "score": -0.0, '
        '"source_ids": ["d3", "d3-copy", "😀"]}]}'
    )
    assert [hit["score"] for hit in json.loads(second)["hits"]] == [-1.0, 1e-05, 123456.125]
    assert '"score": 1e-05' in second


def test_score_strings_match_round_and_percent_f_on_every_kind_of_float32():
    """Random bit patterns cover every exponent; the fast path must agree with Python on all of them."""
    bits = np.random.default_rng(0).integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[np.isfinite(values)]
    floats = values.tolist()
    assert score_strings(values, "json").tolist() == [repr(round(v, 6)) for v in floats]
    assert score_strings(values, "trec").tolist() == [f"{v:.6f}" for v in floats]


def test_an_interrupted_write_keeps_the_previous_run(tmp_path, monkeypatch):
    """Stopped after its first block was written: the previous file is kept and no temporary is left."""
    questions, results = _korean_run()
    path = tmp_path / "run.jsonl"
    path.write_text("previous run\n")
    blocks = []
    format_block = odqa_core._runs._jsonl_block

    def stopped_at_the_second_block(*args):
        if blocks:
            raise KeyboardInterrupt
        blocks.append(format_block(*args))
        return blocks[-1]

    monkeypatch.setattr(odqa_core._runs, "_BLOCK_HITS", 1)  # one question per block
    monkeypatch.setattr(odqa_core._runs, "_jsonl_block", stopped_at_the_second_block)
    with pytest.raises(KeyboardInterrupt):
        write_run(path, questions, results)
    assert len(blocks) == 1 and blocks[0].startswith('{"id": "q-1"')
    assert path.read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.jsonl"]


def test_more_questions_than_ranked_rows_is_refused_before_writing(tmp_path):
    questions, results = _korean_run()
    with pytest.raises(ValueError, match="3 questions but ranked results for 2"):
        write_run(tmp_path / "run.jsonl", [*questions, questions[0]], results)
    assert not list(tmp_path.iterdir())
