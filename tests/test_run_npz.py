"""The npz run format: an exact round trip, the evaluation of jsonl, one-line errors for anything else, no pickle."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import odqa_core._runs
from odqa_core._runs import read_npz_run, read_run, write_run
from odqa_core.errors import DataError, UsageError
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS, assert_one_line_error
from odqa_core.types import Document, Question, RankedResults

DOCUMENTS = (
    Document("문서-1#0", "첫 번째 구절", metadata={"source_ids": ("문서-1",)}),
    Document("doc 2", "second", metadata={"source_ids": ("doc 2", "dup-of-2")}),
    Document("d3", "third"),
    Document("d4", "fourth"),
)
QUESTIONS = (Question("질문-1", "무엇?"), Question("q2", "what?"))


def _results() -> RankedResults:
    indices = np.array([[1, 0, 3], [2, 3, 0]], np.int64)
    scores = np.array([[12.3456789, 1e-7, -0.0], [3.4e38, 1.5, -2.25]], np.float32)
    return RankedResults(indices, scores, DOCUMENTS)


def test_round_trip_of_ids_scores_and_source_ids_is_exact(tmp_path):
    results = _results()
    write_run(tmp_path / "run.npz", QUESTIONS, results, fmt="npz", tag="bm25")
    run = read_npz_run(tmp_path / "run.npz")
    assert run.header["k"] == 3 and run.header["tag"] == "bm25"
    assert run.question_ids.tolist() == [q.id for q in QUESTIONS]
    assert run.scores.dtype == np.float32 and run.scores.tobytes() == results.scores.tobytes()  # bit for bit
    ids = run.doc_ids[run.indices]
    assert ids.tolist() == results.ids().tolist()
    assert [run.sources(d) for d in range(len(run.doc_ids))] == [doc.source_ids for doc in DOCUMENTS]


@pytest.mark.parametrize("documents", [None, DOCUMENTS])
def test_read_run_gives_the_same_hits_as_from_the_jsonl_of_the_same_results(tmp_path, documents):
    write_run(tmp_path / "run.jsonl", QUESTIONS, _results())
    write_run(tmp_path / "run.npz", QUESTIONS, _results(), fmt="npz")
    assert read_run(tmp_path / "run.npz", documents) == read_run(tmp_path / "run.jsonl", documents)


def test_an_npz_run_is_recognised_by_its_content_whatever_its_name(tmp_path):
    write_run(tmp_path / "run.bin", QUESTIONS, _results(), fmt="npz")  # no ".npz" appended by numpy
    assert [p.name for p in tmp_path.iterdir()] == ["run.bin"]
    assert list(read_run(tmp_path / "run.bin")) == [q.id for q in QUESTIONS]


def test_evaluate_gives_identical_metrics_for_jsonl_and_npz_of_one_retrieval(odqa, toy_index, toy_files, tmp_path):
    _, questions = toy_files
    reports = []
    for fmt in ("jsonl", "npz"):
        run_file = tmp_path / f"run.{fmt}"
        retrieve = f"retrieve --index-dir {toy_index} --questions {questions} --top-k 3 --format {fmt} --output"
        assert odqa(f"{retrieve} {run_file}").exit_code == 0
        result = odqa(f"evaluate --run {run_file} --questions {questions} --index-dir {toy_index} --k 1,3 --json")
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[0] == reports[1] and reports[0]["n_questions"] > 0


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _written(tmp_path) -> bytes:
    write_run(tmp_path / "good.npz", TOY_QUESTIONS[:2], _toy_results(), fmt="npz")
    return (tmp_path / "good.npz").read_bytes()


def _toy_results() -> RankedResults:
    indices = np.tile(np.arange(2, dtype=np.int64), (2, 1))
    return RankedResults(indices, np.array([[3.0, 2.0], [1.0, 0.5]], np.float32), TOY_DOCUMENTS)


def _with_array(good: bytes, name: str, value: np.ndarray) -> bytes:
    with np.load(io.BytesIO(good)) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays[name] = value
    return _npz_bytes(**arrays)


def _with_header(good: bytes, header: dict) -> bytes:
    return _with_array(good, "header", np.frombuffer(json.dumps(header).encode(), np.uint8))


def _flip_a_score_byte(good: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        info = archive.getinfo("scores.npy")
    # the member's data: after its local header (30 bytes, the name, the extra field) and the .npy header
    position = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 1
    damaged = bytearray(good)
    damaged[position] ^= 0x40
    return bytes(damaged)


CORRUPTIONS = {
    "truncated": (lambda good: good[: len(good) // 2], "not an npz run file"),
    "damaged": (_flip_a_score_byte, "Bad CRC-32"),
    "foreign npz": (lambda good: _npz_bytes(matrix=np.eye(2)), "no 'header' array"),
    "foreign header": (lambda good: _with_header(good, {"format": "other"}), "not an odqa run header"),
    "newer version": (lambda good: _with_header(good, {"format": "odqa-run", "version": 99}), "version 99"),
    "object array": (lambda good: _with_array(good, "question_ids", np.array(["q", 1], dtype=object)), "pickle"),
    "text named .npz": (lambda good: b'{"id": "q", "hits": []}\n', "not a zip archive"),
    "npy named .npz": (lambda good: _npy_bytes(np.arange(3)), "not a zip archive"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_corrupt_truncated_or_foreign_npz_is_a_one_line_error(odqa, toy_files, tmp_path, case):
    _, questions = toy_files
    damage, problem = CORRUPTIONS[case]
    run_file = tmp_path / "run.npz"
    run_file.write_bytes(damage(_written(tmp_path)))
    with pytest.raises(DataError) as info:
        read_run(run_file)
    assert problem in str(info.value) and "\n" not in str(info.value)
    assert_one_line_error(odqa(f"evaluate --run {run_file} --questions {questions}"), 1, problem)


def test_an_index_outside_the_documents_is_refused(tmp_path):
    good = _written(tmp_path)
    with np.load(io.BytesIO(good)) as archive:
        indices = archive["indices"]
    (tmp_path / "run.npz").write_bytes(_with_array(good, "indices", indices + 5))
    with pytest.raises(DataError, match="an index outside doc_ids"):
        read_run(tmp_path / "run.npz")


def test_npz_to_standard_output_is_refused_before_retrieving(odqa, toy_index, toy_files, tmp_path, monkeypatch):
    _, questions = toy_files
    monkeypatch.chdir(tmp_path)
    result = odqa(f"retrieve --index-dir {toy_index} --questions {questions} --format npz --output -")
    assert_one_line_error(result, 2, "standard output")
    assert result.stdout == "" and not (tmp_path / "-").exists()
    with pytest.raises(UsageError):
        write_run("-", QUESTIONS, _results(), fmt="npz")


def test_a_failed_write_leaves_the_existing_run_whole(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    write_run(path, QUESTIONS, _results(), fmt="npz")
    before = path.read_bytes()

    def savez_then_fail(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(odqa_core._runs.np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_run(path, QUESTIONS[:1], _results(), fmt="npz")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temporary left


def test_non_finite_scores_are_refused_and_the_existing_run_kept(tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(b"previous")
    results = _results()
    results.scores[1, 2] = np.nan
    with pytest.raises(DataError, match="rank 3"):
        write_run(path, QUESTIONS, results, fmt="npz")
    assert path.read_bytes() == b"previous"
