"""Sharded sparse indexes (odqa_core.shards with the sparse retrievers' corpus-wide statistics): a sharded index
returns the single index's top k, ids and float32 scores bit for bit, ties included, for every weighting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sparse_testdata import RANDOM_CORPUS_SETTINGS, VARIANTS, assert_same_as_single, kill_a_worker_then_rebuild

from odqa_core import Document, IndexFormatError, UsageError, data, plugins
from odqa_core.pipeline import load_retriever
from odqa_core.shards import ShardedRetriever, build_sharded_index
from odqa_core.storage import sha256_file
from odqa_core.testing import assert_one_line_error, run_cli

KORQUAD = Path("/work/shared/data/korquad/KorQuAD_v1.0_dev.json")


def _options(variant: str, **extra) -> tuple[str, dict]:
    if variant == "tfidf":
        return "tfidf", dict(extra)
    return "bm25", {"variant": variant, **extra}


@pytest.fixture(scope="module")
def sample():
    documents = data.load_corpus(str(data.sample_corpus_path()))
    questions = [q.text for q in data.load_questions(str(data.sample_questions_path()))]
    return documents, questions + ["", "the and of", "한글 한글 한글"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("analyzer", ["char-ngram", "regex"])
def test_sharded_equals_single_on_the_sample(sample, variant, analyzer, tmp_path):
    documents, questions = sample
    name, options = _options(variant, analyzer=analyzer)
    single = plugins.create("retriever", name, options)
    single.index(documents)
    for n_shards in (1, 2, 5):
        path = tmp_path / f"idx-{n_shards}"
        build_sharded_index(plugins.create("retriever", name, options), documents, path, n_shards)
        sharded = load_retriever(path)
        assert isinstance(sharded, ShardedRetriever) and len(sharded.shards) == n_shards
        assert [d.id for d in sharded.documents] == [d.id for d in documents]
        assert_same_as_single(single, sharded, questions)


def test_each_shard_is_an_ordinary_store_weighed_with_the_corpus_statistics(sample, tmp_path):
    documents, questions = sample
    build_sharded_index(plugins.create("retriever", "bm25", {}), documents, tmp_path / "idx", 3)
    top = json.loads((tmp_path / "idx" / "shards.json").read_text())
    assert [(s["start"], s["stop"]) for s in top["shards"]][-1][1] == len(documents)
    assert top["statistics"]["n_docs"] == len(documents)
    single = plugins.create("retriever", "bm25", {})
    single.index(documents)
    for entry in top["shards"]:
        shard = plugins.get_component_class("retriever", "bm25").load(tmp_path / "idx" / entry["name"])
        manifest = json.loads((tmp_path / "idx" / entry["name"] / "manifest.json").read_text())
        assert manifest["params"]["shard"]["build_id"] == top["build_id"]
        # corpus-wide idf: the single index's, term for term
        assert np.array_equal(shard._impacts.idf, single._impacts.idf)
        assert shard.get_sparse_embedding().vocabulary == single.get_sparse_embedding().vocabulary


@RANDOM_CORPUS_SETTINGS
@given(
    words=st.lists(st.lists(st.integers(0, 40), max_size=25), min_size=1, max_size=60),
    queries=st.lists(st.lists(st.integers(0, 45), max_size=8), min_size=1, max_size=12),
    n_shards=st.integers(1, 7),
    variant=st.sampled_from(VARIANTS),
    sublinear=st.booleans(),
)
def test_sharded_equals_single_on_random_corpora(words, queries, n_shards, variant, sublinear, tmp_path_factory):
    # The local engine seeds each shard with the k-th best score of the shards before it; k = 10 and the
    # corpus size go past a shard's size, small vocabularies make ties across shards.
    documents = [Document(id=f"d{i}", text=" ".join(f"w{t}" for t in doc)) for i, doc in enumerate(words)]
    texts = [" ".join(f"w{t}" for t in q) for q in queries]
    n_shards = min(n_shards, len(documents))
    name, options = _options(variant, **({"sublinear_tf": sublinear} if variant == "tfidf" else {}))
    single = plugins.create("retriever", name, options)
    single.index(documents)
    path = tmp_path_factory.mktemp("sharded") / "idx"
    build_sharded_index(plugins.create("retriever", name, options), documents, path, n_shards)
    assert_same_as_single(single, load_retriever(path), texts, ks=(1, 3, 10, len(documents)))


def test_later_shards_are_searched_above_the_k_th_score_merged_before_them(sample, tmp_path):
    # The local engine passes every shard after the first the k-th best score merged so far (positive here: the
    # questions match many documents), and those shards return only the documents above it, padded.
    documents, questions = sample
    build_sharded_index(plugins.create("retriever", "bm25", {}), documents, tmp_path / "idx", 3)
    sharded = load_retriever(tmp_path / "idx")
    calls = []
    for shard in sharded.shards:
        search_prepared = shard.retriever.search_prepared

        def recording(prepared, k, floor=None, search_prepared=search_prepared):
            results, constants = search_prepared(prepared, k, floor=floor)
            calls.append((floor, results))
            return results, constants

        shard.retriever.search_prepared = recording
    merged = sharded.search(questions, 5)
    assert calls[0][0] is None
    for floor, results in calls[1:]:
        assert floor is not None and (floor > 0).any()
        seeded = floor > 0  # a floor <= 0 (fewer than k documents scoring above 0 so far) is none
        assert (results.indices[seeded] == -1).any()  # documents at or below the floor were left out
        hits = results.indices[seeded] >= 0
        assert (results.scores[seeded][hits] > np.broadcast_to(floor[seeded, None], hits.shape)[hits]).all()
    assert (merged.indices >= 0).all()


@pytest.mark.skipif(not KORQUAD.is_file(), reason="KorQuAD dev set not present")
@pytest.mark.parametrize("variant", ["okapi", "bm25+", "tfidf"])
def test_sharded_equals_single_on_korquad(variant, tmp_path):
    documents = data.load_corpus(str(KORQUAD))
    questions = [q.text for q in data.load_questions(str(KORQUAD))][::10]
    name, options = _options(variant, analyzer="char-ngram")
    single = plugins.create("retriever", name, options)
    single.index(documents)
    build_sharded_index(plugins.create("retriever", name, options), documents, tmp_path / "idx", 4)
    assert_same_as_single(single, load_retriever(tmp_path / "idx"), questions, ks=(1, 20, 100))


# --------------------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def korean_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    return str(data.sample_corpus_path()), str(data.sample_questions_path()), root


def test_cli_sharded_round_trip(korean_files, tmp_path):
    corpus, questions, _ = korean_files
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    for extra, path in (("", single), ("--shards 3", sharded)):
        result = run_cli(f"index --retriever bm25 --corpus {corpus} --index-dir {path} -o variant=bm25+ {extra}")
        assert result.exit_code == 0, result.output
    runs = {}
    for path in (single, sharded):
        out = tmp_path / f"{path.name}.jsonl"
        result = run_cli(f"retrieve --index-dir {path} --questions {questions} --top-k 20 --output {out}")
        assert result.exit_code == 0, result.output
        runs[path.name] = out.read_text()
        result = run_cli(f"evaluate --run {out} --questions {questions} --index-dir {path} --json")
        assert result.exit_code == 0, result.output
    assert runs["single"] == runs["sharded"]
    answers = [run_cli(f"ask 한글을 만든 임금은? --index-dir {path} --json") for path in (single, sharded)]
    assert all(a.exit_code == 0 for a in answers), answers[1].output
    assert answers[0].output == answers[1].output


def test_cli_sharded_build_with_a_process_pool(korean_files, tmp_path):
    corpus, questions, _ = korean_files
    result = run_cli(f"index --retriever tfidf --corpus {corpus} --index-dir {tmp_path / 'a'} --shards 2 --workers 2")
    assert result.exit_code == 0, result.output
    result = run_cli(f"index --retriever tfidf --corpus {corpus} --index-dir {tmp_path / 'b'} --shards 2")
    assert result.exit_code == 0, result.output
    a, b = load_retriever(tmp_path / "a"), load_retriever(tmp_path / "b")
    qs = [q.text for q in data.load_questions(questions)]
    assert_same_as_single(a, b, qs, ks=(10,))


# ----------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def built(sample, tmp_path):
    documents, _ = sample
    path = tmp_path / "idx"
    build_sharded_index(plugins.create("retriever", "bm25", {}), documents, path, 3)
    return path


def _rewrite_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def _reseal(index: Path) -> None:
    """Record the shards' current manifests in the shard table and the table in the top manifest, as a build of
    another odqa version would have written them."""

    def digests(table):
        for entry in table["shards"]:
            entry["manifest_sha256"] = sha256_file(index / entry["name"] / "manifest.json")

    _rewrite_json(index / "shards.json", digests)

    def files(manifest):
        manifest["files"]["shards.json"] = {
            "bytes": (index / "shards.json").stat().st_size,
            "sha256": sha256_file(index / "shards.json"),
        }

    _rewrite_json(index / "manifest.json", files)


def _retrieve_error(index: Path, tmp_path: Path, contains: str) -> None:
    out = tmp_path / "run.jsonl"
    result = run_cli(f"retrieve --index-dir {index} --questions {data.sample_questions_path()} --output {out}")
    assert_one_line_error(result, contains=contains)
    assert not out.exists()


def test_missing_shard(built, tmp_path):
    import shutil

    shutil.rmtree(built / "shard-0001")
    _retrieve_error(built, tmp_path, "shard-0001")
    with pytest.raises(IndexFormatError, match="shard 1 .* is missing"):
        load_retriever(built)


def test_corrupted_shard(built, tmp_path):
    array = built / "shard-0002" / "t_imp.npy"
    raw = bytearray(array.read_bytes())
    raw[-1] ^= 0xFF
    array.write_bytes(bytes(raw))
    _retrieve_error(built, tmp_path, "shard-0002")


def test_foreign_version_shard(built, tmp_path):
    _rewrite_json(built / "shard-0000" / "manifest.json", lambda m: m.update(format_version=99))
    _reseal(built)
    _retrieve_error(built, tmp_path, "shard-0000")
    with pytest.raises(IndexFormatError, match="format version 99"):
        load_retriever(built)


def test_shard_from_another_build(sample, built, tmp_path):
    import shutil

    documents, _ = sample
    other = tmp_path / "other"
    build_sharded_index(plugins.create("retriever", "bm25", {}), documents, other, 3)
    shutil.rmtree(built / "shard-0001")
    shutil.copytree(other / "shard-0001", built / "shard-0001")
    _retrieve_error(built, tmp_path, "shard-0001")
    with pytest.raises(IndexFormatError, match="another build"):
        load_retriever(built)


def test_more_shards_than_documents_writes_nothing(sample, tmp_path):
    documents, _ = sample
    with pytest.raises(UsageError, match=f"{len(documents) + 1} shards for a corpus of {len(documents)}"):
        build_sharded_index(plugins.create("retriever", "bm25", {}), documents, tmp_path / "idx", len(documents) + 1)
    assert not os.path.exists(tmp_path / "idx")
    corpus = data.sample_corpus_path()
    result = run_cli(f"index --retriever bm25 --corpus {corpus} --index-dir {tmp_path / 'idx'} --shards 100000")
    assert_one_line_error(result, contains="100000 shards")
    assert not os.path.exists(tmp_path / "idx")


def test_interrupted_build_keeps_the_previous_index(sample, built, tmp_path, monkeypatch):
    from odqa_core import shards

    documents, questions = sample
    before = load_retriever(built).search(questions, 10)
    real = shards._write_shard
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(*args)

    monkeypatch.setattr(shards, "_write_shard", failing)
    with pytest.raises(RuntimeError, match="worker lost"):
        build_sharded_index(plugins.create("retriever", "tfidf", {}), documents, built, 4)
    after = load_retriever(built)
    assert after.name == "bm25" and len(after.shards) == 3
    assert np.array_equal(after.search(questions, 10).indices, before.indices)
    assert sorted(p.name for p in built.parent.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("fuser", ["sequential", "cross", "rrf"])
def test_fusers_through_sharded_sparse_indexes(sample, fuser, tmp_path):
    pytest.importorskip("odqa_fusion")
    documents, questions = sample
    singles, shardeds = [], []
    for name, options in (("bm25", {"analyzer": "char-ngram"}), ("tfidf", {"analyzer": "char-ngram"})):
        single = plugins.create("retriever", name, options)
        single.index(documents)
        singles.append(single)
        build_sharded_index(plugins.create("retriever", name, options), documents, tmp_path / name, 3)
        shardeds.append(load_retriever(tmp_path / name))
    options = {"sequential": {"candidates": 20}, "cross": {"lam_on": "tfidf"}, "rrf": {}}[fuser]
    fusion = plugins.create("fuser", fuser, options)
    a, b = fusion.fuse(singles, questions, 10), fusion.fuse(shardeds, questions, 10)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.scores.view(np.int32), b.scores.view(np.int32))


def test_a_pool_worker_killed_mid_build_fails_cleanly_and_the_rerun_completes(sample, tmp_path):
    documents, questions = sample
    index = kill_a_worker_then_rebuild(documents, questions, tmp_path, "SIGKILL", workers=2)
    single = plugins.create("retriever", "bm25", {})
    single.index(documents)
    assert_same_as_single(single, load_retriever(index), questions, ks=(1, 10))


def test_a_process_pool_builds_documents_without_title_or_metadata(sample, tmp_path):
    # such documents hold a read-only empty mapping, which pickle refuses: they travel to the pool as plain columns
    texts, questions = [d.text for d in sample[0]], sample[1]
    documents = [Document(id=str(i), text=t) for i, t in enumerate(texts)]
    build_sharded_index(plugins.create("retriever", "bm25", {}), documents, tmp_path / "idx", 3, workers=2)
    single = plugins.create("retriever", "bm25", {})
    single.index(documents)
    sharded = load_retriever(tmp_path / "idx")
    assert list(sharded.documents) == documents
    assert_same_as_single(single, sharded, questions, ks=(1, 10))
