"""Sharded sparse indexes on the Ray engine (a local ``ray.init(num_cpus=2)``): shards built on Ray actors equal the
local build, searching through one actor per shard equals the single index, a worker killed mid-build fails the
build with one line and leaves the previous index, and an unreachable cluster is one line. Skipped without Ray (the
``odqa[ray]`` extra; tox env ``scale``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sparse_testdata import KillsItsWorker, assert_same_as_single, kill_a_worker_then_rebuild

from odqa_core import data, plugins
from odqa_core.pipeline import load_retriever
from odqa_core.shards import ShardedRetriever, build_sharded_index
from odqa_core.testing import assert_one_line_error, run_cli

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def sample():
    documents = data.load_corpus(str(data.sample_corpus_path()))
    return documents, [q.text for q in data.load_questions(str(data.sample_questions_path()))]


@pytest.mark.parametrize("variant", ["bm25+", "tfidf"])
def test_ray_build_and_search_equal_the_single_index(local_ray, sample, variant, tmp_path):
    documents, questions = sample
    name, options = ("tfidf", {}) if variant == "tfidf" else ("bm25", {"variant": variant})
    single = plugins.create("retriever", name, options)
    single.index(documents)
    build_sharded_index(plugins.create("retriever", name, options), documents, tmp_path / "ray", 3, engine="ray")
    build_sharded_index(plugins.create("retriever", name, options), documents, tmp_path / "local", 3)
    for shard in ("shard-0000", "shard-0002"):  # the same arrays, whichever engine built them
        for array in ("t_imp.npy", "t_order.npy", "idf.npy"):
            assert (tmp_path / "ray" / shard / array).read_bytes() == (
                tmp_path / "local" / shard / array
            ).read_bytes()
    on_ray = ShardedRetriever.load(tmp_path / "ray", {"engine": "ray"})
    assert on_ray.engine == "ray" and len(on_ray.shards) == 3
    for k in (1, 10, len(documents)):
        a, b = single.search(questions, k), on_ray.search(questions, k)
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    assert np.array_equal(single.score_all(questions), on_ray.score_all(questions))
    candidates = (np.arange(len(questions) * 4).reshape(-1, 4) * 13) % len(documents)
    assert np.array_equal(single.score(questions, candidates), on_ray.score(questions, candidates))
    assert len(load_retriever(tmp_path / "ray").shards) == 3  # read without Ray too


def test_cli_ray_engine_round_trip(local_ray, tmp_path):
    corpus, questions = data.sample_corpus_path(), data.sample_questions_path()
    index = tmp_path / "idx"
    result = run_cli(f"index --retriever bm25 --corpus {corpus} --index-dir {index} --shards 2 --engine ray")
    assert result.exit_code == 0, result.output
    runs = []
    for extra in ("", "-o engine=ray"):
        out = tmp_path / f"run{len(runs)}.jsonl"
        result = run_cli(f"retrieve --index-dir {index} --questions {questions} --output {out} {extra}")
        assert result.exit_code == 0, result.output
        runs.append(out.read_text())
    assert runs[0] == runs[1]


def test_a_ray_worker_killed_mid_build_fails_cleanly_and_the_rerun_completes(local_ray, sample, tmp_path):
    # Ray's workers do not have the tests on their path: the test retriever travels by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[KillsItsWorker.__module__])
    try:
        documents, questions = sample
        index = kill_a_worker_then_rebuild(documents, questions, tmp_path, "Ray worker", engine="ray", workers=2)
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[KillsItsWorker.__module__])
    single = plugins.create("retriever", "bm25", {})
    single.index(documents)
    assert_same_as_single(single, load_retriever(index), questions, ks=(1, 10, len(documents)))


def test_unreachable_ray_address_is_one_line_and_writes_nothing(tmp_path):
    corpus = data.sample_corpus_path()
    index = tmp_path / "idx"
    result = run_cli(
        f"index --retriever bm25 --corpus {corpus} --index-dir {index} --shards 2 --engine ray "
        "--ray-address 127.0.0.1:9"
    )
    assert_one_line_error(result, contains="127.0.0.1:9")
    assert not index.exists()
