from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from odqa_core import storage
from odqa_core.errors import IndexFormatError, UsageError
from odqa_core.outputs import atomic_write_lines, atomic_write_text
from odqa_core.storage import open_store, sha256_file, write_store
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


# --- manifests stay inside their directory -------------------------------------------------------------------------


def _list_in_manifest(store, name, file):
    """Make the manifest of ``store`` list ``name`` with the true size and checksum of ``file``, as a crafted index
    would to confirm that file's content."""
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": file.stat().st_size, "sha256": sha256_file(file)}
    (store / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../secret", "../../secret", "sub/../../secret", "ABSOLUTE", "..", ".", ""])
def test_a_manifest_naming_a_file_outside_its_directory_is_refused(tmp_path, name):
    secret = tmp_path / "secret"
    secret.write_text("password")
    _write(tmp_path / "s")
    _list_in_manifest(tmp_path / "s", str(secret) if name == "ABSOLUTE" else name, secret)
    with pytest.raises(IndexFormatError, match="not a file inside the store"):
        open_store(tmp_path / "s")


def test_a_symlink_leading_out_of_the_store_is_refused(tmp_path):
    _write(tmp_path / "s")
    outside = tmp_path / "vocab-elsewhere.json"
    (tmp_path / "s" / "vocab.json").rename(outside)
    (tmp_path / "s" / "vocab.json").symlink_to(outside)  # same bytes, same checksum: only the link is wrong
    with pytest.raises(IndexFormatError, match="symlink leading out of the store"):
        open_store(tmp_path / "s")


def test_a_symlink_inside_the_store_is_fine(tmp_path):
    _write(tmp_path / "s")
    store = tmp_path / "s"
    (store / "vocab.json").rename(store / "vocab-real.json")
    (store / "vocab.json").symlink_to("vocab-real.json")
    _list_in_manifest(store, "vocab-real.json", store / "vocab-real.json")
    assert open_store(store).load_json("vocab") == ["x", "y"]


def test_store_reader_paths_stay_inside(tmp_path):
    _write(tmp_path / "s")
    reader = open_store(tmp_path / "s")
    reader.manifest["files"]["../escape.npy"] = {}
    with pytest.raises(IndexFormatError, match="not a file inside the store"):
        reader.path("../escape.npy")


# --- malformed manifests and document tables: one-line errors ------------------------------------------------------


def _edit_manifest(store, edit):
    manifest = json.loads((store / "manifest.json").read_text())
    edit(manifest)
    (store / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(files=None), "no file list"),
        (lambda m: m["files"].update({"values.npy": None}), "entry of 'values.npy' is not an object"),
        (lambda m: m.pop("name"), "has no 'name'"),
        (lambda m: m.pop("kind"), "has no 'kind'"),
        (lambda m: m.update(name=7), "has no 'name'"),
        (lambda m: m.update(config=[1]), "'config' is not an object"),
    ],
)
def test_malformed_manifests_are_one_line_errors(tmp_path, edit, message):
    _write(tmp_path / "s")
    _edit_manifest(tmp_path / "s", edit)
    with pytest.raises(IndexFormatError, match=message):
        open_store(tmp_path / "s")


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"id": "d", "text": "fine"}\n{not json\n', "line 2: not a stored document"),
        ('["a list"]\n', "line 1: not a stored document .*JSON object"),
        ('{"id": "d"}\n', "line 1: .*'text'"),
        ('{"text": "no id"}\n', "line 1: .*KeyError"),
    ],
)
def test_a_document_table_that_is_not_json_is_a_one_line_error(tmp_path, content, message):
    _write(tmp_path / "s")
    table = tmp_path / "s" / "documents.jsonl"
    table.write_text(content)
    _list_in_manifest(tmp_path / "s", "documents.jsonl", table)  # the checksum matches: only the content is bad
    with pytest.raises(IndexFormatError, match=f"documents.jsonl {message}"):
        open_store(tmp_path / "s").load_documents()


def test_a_document_table_that_is_not_utf8_is_a_one_line_error(tmp_path):
    _write(tmp_path / "s")
    table = tmp_path / "s" / "documents.jsonl"
    table.write_bytes(b'{"id": "d", "text": "\xff\xfe"}\n')
    _list_in_manifest(tmp_path / "s", "documents.jsonl", table)
    with pytest.raises(IndexFormatError, match="not UTF-8"):
        open_store(tmp_path / "s").load_documents()


def test_cli_reports_a_manifest_without_name_in_one_line(tmp_path, fake_plugins, toy_files):
    from odqa_core.testing import assert_one_line_error, run_cli

    corpus, questions = toy_files
    assert run_cli(f"index --retriever fake --corpus {corpus} --index-dir {tmp_path / 'i'}").exit_code == 0
    _edit_manifest(tmp_path / "i", lambda m: m.pop("name"))
    result = run_cli(f"retrieve --index-dir {tmp_path / 'i'} --questions {questions} --output {tmp_path / 'r'}")
    assert_one_line_error(result, contains="has no 'name'")


# --- checksums: verified once, hashed again when a file changes ---------------------------------------------------


def _flip_a_byte(file, keep_mtime=False):
    before = file.stat()
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert file.stat().st_mtime_ns == before.st_mtime_ns


@pytest.fixture
def remember_fresh_files(monkeypatch, tmp_path):
    """Files written moments ago are remembered as verified too (they normally wait out the racy window); the
    record goes to this test's own cache directory."""
    monkeypatch.setattr(storage, "RACY_WINDOW_NS", -60_000_000_000)
    monkeypatch.setenv("ODQA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def hashed(monkeypatch):
    """The names of the files ``open_store`` hashes."""
    names = []
    real = storage.sha256_file

    def counting(path, *args, **kwargs):
        names.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(storage, "sha256_file", counting)
    return names


def test_a_verified_unchanged_store_is_not_hashed_again(tmp_path, remember_fresh_files, hashed):
    _write(tmp_path / "s")
    hashed.clear()
    open_store(tmp_path / "s")
    assert sorted(hashed) == ["documents.jsonl", "values.npy", "vocab.json"]
    hashed.clear()
    open_store(tmp_path / "s")
    assert hashed == []
    # The record is in the user's cache directory, never in the store.
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "documents.jsonl",
        "manifest.json",
        "values.npy",
        "vocab.json",
    ]
    assert list(storage.verified_cache_dir().glob("*.json"))


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_a_file_corrupted_after_a_verified_load_is_detected(tmp_path, remember_fresh_files, keep_mtime):
    # With the modification time put back, the inode change time (which utime cannot set back) still differs.
    _write(tmp_path / "s")
    open_store(tmp_path / "s")
    time.sleep(0.05)  # past the file system's timestamp tick, so that the change is visible in the timestamps
    _flip_a_byte(tmp_path / "s" / "values.npy", keep_mtime=keep_mtime)
    with pytest.raises(IndexFormatError, match="values.npy: checksum mismatch"):
        open_store(tmp_path / "s")


def test_files_changed_within_the_racy_window_are_hashed_at_every_load(tmp_path, hashed):
    _write(tmp_path / "s")
    for _ in range(2):
        hashed.clear()
        open_store(tmp_path / "s")
        assert len(hashed) == 3


def test_a_manifest_expecting_another_checksum_is_checked_again(tmp_path, remember_fresh_files):
    _write(tmp_path / "s")
    open_store(tmp_path / "s")
    _edit_manifest(tmp_path / "s", lambda m: m["files"]["vocab.json"].update(sha256="0" * 64))
    with pytest.raises(IndexFormatError, match="vocab.json: checksum mismatch"):
        open_store(tmp_path / "s")


def test_verify_false_hashes_nothing_and_records_nothing(tmp_path, remember_fresh_files, hashed):
    _write(tmp_path / "s")
    hashed.clear()
    open_store(tmp_path / "s", verify=False)
    assert hashed == []
    assert not storage.verified_cache_dir().exists()


def test_a_read_only_store_and_an_unwritable_cache_still_verify(tmp_path, remember_fresh_files, monkeypatch, hashed):
    _write(tmp_path / "s")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("ODQA_CACHE_DIR", str(blocked))  # the cache cannot be made: hashing every time
    (tmp_path / "s").chmod(0o555)
    try:
        for _ in range(2):
            hashed.clear()
            assert open_store(tmp_path / "s").load_json("vocab") == ["x", "y"]
            assert len(hashed) == 3
    finally:
        (tmp_path / "s").chmod(0o755)
