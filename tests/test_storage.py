from __future__ import annotations

import json

import numpy as np
import pytest

from odqa_core.errors import IndexFormatError, UsageError
from odqa_core.storage import atomic_write_lines, atomic_write_text, open_store, write_store
from odqa_core.types import Document, top_k_rows


def _write(path, **params):
    with write_store(path, kind="retriever", name="toy", format_version=3, config={"a": 1}) as writer:
        writer.save_array("values", np.arange(10, dtype=np.float32))
        writer.save_json("vocab", ["x", "y"])
        writer.save_documents([Document("d", "text", "title", {"source_ids": ("d", "e")})])
        writer.params.update(params)


def test_round_trip_with_manifest(tmp_path):
    _write(tmp_path / "s", n=10)
    reader = open_store(tmp_path / "s", kind="retriever", name="toy", format_version=3)
    assert reader.params == {"n": 10} and reader.config == {"a": 1}
    np.testing.assert_array_equal(reader.load_array("values"), np.arange(10))
    assert reader.load_json("vocab") == ["x", "y"]
    assert reader.load_documents()[0].source_ids == ("d", "e")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"values.npy", "vocab.json", "documents.jsonl"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "reader"}, "expected a 'reader'"),
        ({"name": "other"}, "expected 'other'"),
        ({"format_version": 4}, "format version 3"),
    ],
)
def test_wrong_kind_name_or_version(tmp_path, kwargs, message):
    _write(tmp_path / "s")
    with pytest.raises(IndexFormatError, match=message):
        open_store(tmp_path / "s", **kwargs)


def test_missing_directory_manifest_and_files(tmp_path):
    with pytest.raises(IndexFormatError, match="no such index"):
        open_store(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexFormatError, match="not an odqa index"):
        open_store(tmp_path / "empty")
    _write(tmp_path / "s")
    (tmp_path / "s" / "vocab.json").unlink()
    with pytest.raises(IndexFormatError, match="missing file 'vocab.json'"):
        open_store(tmp_path / "s")


def test_garbled_manifest(tmp_path):
    _write(tmp_path / "s")
    (tmp_path / "s" / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="unreadable manifest"):
        open_store(tmp_path / "s")


def test_failed_write_leaves_old_store_and_no_temporaries(tmp_path):
    _write(tmp_path / "s", generation=1)
    with (
        pytest.raises(RuntimeError),
        write_store(tmp_path / "s", kind="retriever", name="toy", format_version=3, config={}) as writer,
    ):
        writer.save_array("values", np.zeros(3))
        raise RuntimeError("crash")
    assert open_store(tmp_path / "s").params == {"generation": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_refuses_to_overwrite_something_that_is_not_a_store(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not an odqa store"):
        _write(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_object_arrays_are_refused(tmp_path):
    with (
        pytest.raises(TypeError),
        write_store(tmp_path / "s", kind="x", name="y", format_version=1, config={}) as writer,
    ):
        writer.save_array("bad", np.array([{"a": 1}], dtype=object))


def test_atomic_text_and_lines(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    assert (tmp_path / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), atomic_write_lines(tmp_path / "a.txt") as fh:
        fh.write("partial")
        raise RuntimeError
    assert (tmp_path / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_top_k_rows_ties_by_index():
    scores = np.array([[1.0, 3.0, 3.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    idx, top = top_k_rows(scores, 2)
    assert idx.tolist() == [[1, 2], [0, 1]]
    assert top.tolist() == [[3.0, 3.0], [0.0, 0.0]]
    idx, _ = top_k_rows(scores, 10)
    assert idx.tolist()[0] == [1, 2, 4, 0, 3]
