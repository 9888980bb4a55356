"""Sharded indexes, the generic part (odqa_core.shards), with the fake retriever: layout, exact merge, global
positions for fusers, bad input, interrupted builds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odqa_core import IndexFormatError, UsageError, plugins
from odqa_core.pipeline import load_retriever
from odqa_core.shards import (
    ShardedRetriever,
    add_constants,
    build_sharded_index,
    is_sharded,
    iter_stored_documents,
    merge_top_k,
    shard_ranges,
)
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS, assert_one_line_error, run_cli

QUERIES = [q.text for q in TOY_QUESTIONS] + ["", "the the the", "Jeju Hallasan volcano Korea"]


def _single():
    retriever = plugins.create("retriever", "fake", {})
    retriever.index(TOY_DOCUMENTS)
    return retriever


@pytest.fixture
def sharded(fake_plugins, tmp_path):
    path = tmp_path / "idx"
    build_sharded_index(plugins.create("retriever", "fake", {}), TOY_DOCUMENTS, path, 3)
    return path


def test_ranges_are_contiguous_and_balanced():
    assert shard_ranges(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_ranges(3, 3) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(UsageError, match="4 shards for a corpus of 3 documents"):
        shard_ranges(3, 4)
    with pytest.raises(UsageError, match=">= 1"):
        shard_ranges(3, 0)


def test_merge_breaks_ties_by_global_position():
    # shard 0 holds rows 0-2, shard 1 rows 3-5; equal scores across shards go by global position
    a = (np.array([[2, 0, 1]]), np.array([[1.0, 0.5, 0.5]], np.float32))
    b = (np.array([[0, 2, 1]]), np.array([[1.0, 0.5, 0.25]], np.float32))
    indices, scores = merge_top_k([a, b], [0, 3], 5)
    assert indices.tolist() == [[2, 3, 0, 1, 5]]
    assert scores.tolist() == [[1.0, 1.0, 0.5, 0.5, 0.5]]


def test_running_merge_takes_a_seeded_shards_hits_and_ignores_its_padding():
    from odqa_core.shards import _merge_running, _seed_floor

    # merged so far: global rows 1, 0, 2 (k = 3); the next shard starts at row 3 and was searched above 0.5
    indices, scores = np.array([[1, 0, 2], [0, 1, 2]]), np.array([[2.0, 1.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    floor = _seed_floor(scores, 3)
    assert floor.tolist() == [0.5, 0.0]  # the second question has no positive k-th score: no floor for it
    part = (np.array([[0, -1, -1], [1, 0, 2]]), np.array([[1.0, -np.inf, -np.inf], [0.0, 0.0, 0.0]], np.float32))
    merged = _merge_running(indices, scores, part, 3, 3)
    assert merged[0].tolist() == [[1, 0, 3], [0, 1, 2]]  # a tie goes to the earlier row
    assert merged[1].tolist() == [[2.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    assert _seed_floor(scores[:, :2], 3) is None  # fewer than k hits merged


def test_constants_added_after_the_merge_keep_position_order_in_new_ties():
    indices = np.array([[5, 1, 3]])
    scores = np.array([[1.0 + 2**-23, 1.0, 0.5]], np.float32)
    add_constants(indices, scores, np.array([1000.0]))
    assert scores[0, 0] == scores[0, 1]  # the addition rounded them equal
    assert indices.tolist() == [[1, 5, 3]]


def test_sharded_index_layout(sharded):
    assert is_sharded(sharded)
    manifest = json.loads((sharded / "manifest.json").read_text())
    table = json.loads((sharded / "shards.json").read_text())
    assert manifest["layout"] == "sharded" and manifest["name"] == "fake"
    assert [(s["name"], s["start"], s["stop"]) for s in table["shards"]] == [
        ("shard-0000", 0, 3),
        ("shard-0001", 3, 6),
        ("shard-0002", 6, 8),
    ]
    for entry in table["shards"]:
        shard = json.loads((sharded / entry["name"] / "manifest.json").read_text())
        assert shard["params"]["shard"]["build_id"] == table["build_id"]
        assert shard["name"] == "fake"
    assert [d.id for d in iter_stored_documents(sharded)] == [d.id for d in TOY_DOCUMENTS]


def test_sharded_search_and_scores_equal_the_single_index(sharded):
    single, loaded = _single(), load_retriever(sharded)
    assert isinstance(loaded, ShardedRetriever)
    assert [d.id for d in loaded.documents] == [d.id for d in TOY_DOCUMENTS]
    assert loaded.documents[-1].id == TOY_DOCUMENTS[-1].id
    for k in (1, 3, 10, 50):
        a, b = single.search(QUERIES, k), loaded.search(QUERIES, k)
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    assert np.array_equal(single.score_all(QUERIES), loaded.score_all(QUERIES))
    candidates = np.array([[7, 0, 4, 4, 5]] * len(QUERIES))
    assert np.array_equal(single.score(QUERIES, candidates), loaded.score(QUERIES, candidates))
    with pytest.raises(UsageError, match="candidate rows"):
        loaded.score(QUERIES, candidates + 10)


def test_fusers_work_through_the_shards(sharded):
    single, loaded = _single(), load_retriever(sharded)
    fuser = plugins.create("fuser", "fake-sum", {"depth": 4})
    a = fuser.fuse([single, single], QUERIES, 5)
    b = fuser.fuse([loaded, loaded], QUERIES, 5)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)


def test_cli_index_retrieve_evaluate(fake_plugins, toy_files, tmp_path):
    corpus, questions = toy_files
    runs = []
    for extra, name in (("", "single"), ("--shards 4", "sharded")):
        index = tmp_path / name
        result = run_cli(f"index --retriever fake --corpus {corpus} --index-dir {index} {extra}")
        assert result.exit_code == 0, result.output
        out = tmp_path / f"{name}.jsonl"
        result = run_cli(f"retrieve --index-dir {index} --questions {questions} --top-k 5 --output {out}")
        assert result.exit_code == 0, result.output
        runs.append(out.read_text())
        result = run_cli(f"evaluate --run {out} --questions {questions} --index-dir {index} --json")
        assert result.exit_code == 0, result.output
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    "flags, message",
    [
        ("--shards 11", "11 shards for a corpus of 8 documents"),
        ("--shards 0", "--shards must be at least 1"),
        ("--workers 2", "apply to a sharded index"),
        ("--shards 2 --ray-address 127.0.0.1:1", "--ray-address needs --engine ray"),
    ],
)
def test_cli_bad_shard_options_write_nothing(fake_plugins, toy_files, tmp_path, flags, message):
    corpus, _ = toy_files
    index = tmp_path / "idx"
    result = run_cli(f"index --retriever fake --corpus {corpus} --index-dir {index} {flags}")
    assert_one_line_error(result, contains=message)
    assert not index.exists()


def test_missing_and_modified_shards_are_named(sharded):
    manifest = sharded / "shard-0001" / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"fake"', '"fake" '))
    with pytest.raises(IndexFormatError, match=r"shard-0001: shard 1 of .* was modified"):
        load_retriever(sharded)
    manifest.unlink()
    with pytest.raises(IndexFormatError, match=r"shard-0001: shard 1 of .* is missing"):
        load_retriever(sharded)


def test_tampered_shard_table_is_refused(sharded):
    table = sharded / "shards.json"
    table.write_text(table.read_text().replace('"stop": 3', '"stop": 4'))
    with pytest.raises(IndexFormatError, match="shards.json"):
        load_retriever(sharded)


def test_failed_build_keeps_the_previous_index(sharded, monkeypatch):
    from odqa_core import shards

    real, calls = shards._write_shard, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args)

    monkeypatch.setattr(shards, "_write_shard", failing)
    with pytest.raises(RuntimeError, match="killed"):
        build_sharded_index(plugins.create("retriever", "fake", {}), TOY_DOCUMENTS[:5], sharded, 5)
    loaded = load_retriever(sharded)
    assert len(loaded.shards) == 3 and len(loaded.documents) == len(TOY_DOCUMENTS)
    assert [p.name for p in sharded.parent.iterdir() if p.name.startswith(".")] == []
    monkeypatch.setattr(shards, "_write_shard", real)
    build_sharded_index(plugins.create("retriever", "fake", {}), TOY_DOCUMENTS[:5], sharded, 5)
    assert len(load_retriever(sharded).shards) == 5


def test_a_sharded_retriever_is_not_rebuilt_in_place(sharded):
    loaded = load_retriever(sharded)
    with pytest.raises(UsageError, match="--shards"):
        loaded.index(TOY_DOCUMENTS)
    with pytest.raises(UsageError, match="--shards"):
        loaded.save(sharded.parent / "copy")
