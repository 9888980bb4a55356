"""A sharded dpr index (odqa_core.shards, no dense-specific code): each shard encodes its passages and writes its
own vectors and FAISS index; the vectors equal the single-process encode and the flat top k is the same."""

from __future__ import annotations

import numpy as np
import pytest
from odqa_dense.retriever import DPRRetriever

from odqa_core import UsageError
from odqa_core.pipeline import load_retriever
from odqa_core.shards import build_sharded_index, merge_top_k


def test_sharded_flat_index_equals_the_single_index(micro_checkpoint, sample_documents, sample_questions, tmp_path):
    questions = [q.text for q in sample_questions]
    single = DPRRetriever(model=micro_checkpoint, device="cpu")
    single.index(sample_documents)
    build_sharded_index(DPRRetriever(model=micro_checkpoint, device="cpu"), sample_documents, tmp_path / "idx", 3)
    sharded = load_retriever(tmp_path / "idx")
    assert len(sharded.shards) == 3
    vectors = np.concatenate([shard.retriever.passage_vectors for shard in sharded.shards])
    assert np.abs(vectors - single.passage_vectors).max() <= 1e-5
    a, b = single.search(questions, 10), sharded.search(questions, 10)
    assert np.array_equal(a.indices, b.indices)
    assert np.allclose(a.scores, b.scores, atol=1e-5)
    assert np.allclose(single.score_all(questions), sharded.score_all(questions), atol=1e-5)


def test_sharded_search_encodes_the_questions_once(
    micro_checkpoint, sample_documents, sample_questions, tmp_path, monkeypatch
):
    questions = [q.text for q in sample_questions]
    single = DPRRetriever(model=micro_checkpoint, device="cpu")
    single.index(sample_documents)
    build_sharded_index(DPRRetriever(model=micro_checkpoint, device="cpu"), sample_documents, tmp_path / "idx", 3)
    sharded = load_retriever(tmp_path / "idx")
    sharded.warm_up()
    # the shards of one process share one copy of the model
    encoders = {id(shard.retriever.encoder) for shard in sharded.shards}
    assert len(encoders) == 1
    encoded: list[int] = []
    encode_queries = DPRRetriever.encode_queries

    def counting(self, queries):
        encoded.append(len(queries))
        return encode_queries(self, queries)

    monkeypatch.setattr(DPRRetriever, "encode_queries", counting)
    got = sharded.search(questions, 10)
    assert encoded == [len(questions)]  # once for the 3 shards, not once per shard
    want = single.search(questions, 10)
    assert np.array_equal(got.indices, want.indices)
    assert np.allclose(got.scores, want.scores, atol=1e-5)
    assert sharded.search([], 10).indices.shape == (0, 10)
    # scoring through the shards (what the cross and sequential fusers call) encodes once too, and equals the single
    encoded.clear()
    got_all = sharded.score_all(questions)
    assert encoded == [len(questions)]
    assert np.allclose(got_all, single.score_all(questions), atol=1e-5)
    rng = np.random.default_rng(0)
    candidates = rng.integers(0, len(sample_documents), (len(questions), 7))
    encoded.clear()
    got_some = sharded.score(questions, candidates)
    assert encoded == [len(questions)]
    assert np.allclose(got_some, single.score(questions, candidates), atol=1e-5)


def test_search_prepared_is_search_with_zero_constants(micro_checkpoint, sample_documents, sample_questions):
    questions = [q.text for q in sample_questions[:20]]
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    retriever.index(sample_documents)
    prepared = retriever.prepare_queries(questions)
    assert prepared.dtype == np.float32 and prepared.shape == (len(questions), retriever.encoder.dim)
    results, constants = retriever.search_prepared(prepared, 7, floor=0.5)  # a sparse-only keyword: ignored
    want = retriever.search(questions, 7)
    assert np.array_equal(results.indices, want.indices) and np.array_equal(results.scores, want.scores)
    assert constants.shape == (len(questions),) and not constants.any()


@pytest.mark.parametrize(
    ("index_type", "options"),
    [("hnsw", {"hnsw_m": 8, "ef_construction": 16, "ef_search": 4}), ("ivf", {"nlist": 4, "nprobe": 1})],
)
def test_approximate_shards_merge_their_own_answers(
    micro_checkpoint, sample_documents, sample_questions, tmp_path, index_type, options
):
    """Each shard builds, stores and loads its own approximate index; the sharded top k is the exact merge of the
    shards' approximate answers (not the flat answer, nor one approximate index over everything)."""
    questions = [q.text for q in sample_questions]
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu", index_type=index_type, **options)
    build_sharded_index(retriever, sample_documents, tmp_path / "idx", 3)
    sharded = load_retriever(tmp_path / "idx")
    for i, shard in enumerate(sharded.shards):
        assert shard.retriever._index.index_type == index_type
        assert (tmp_path / "idx" / f"shard-{i:04d}" / "index.faiss").is_file()
    k = 10
    parts = []
    for shard in sharded.shards:
        own = shard.retriever.search(questions, k)  # the shard alone, encoding its own questions
        parts.append((own.indices, own.scores))
    indices, scores = merge_top_k(parts, sharded.offsets, k)
    got = sharded.search(questions, k)
    assert np.array_equal(got.indices, indices)
    assert np.array_equal(got.scores, scores)
    # the shards' vectors are the single encode's, and the stored vectors score exactly (score_all)
    single = DPRRetriever(model=micro_checkpoint, device="cpu")
    single.index(sample_documents)
    vectors = np.concatenate([shard.retriever.passage_vectors for shard in sharded.shards])
    assert np.abs(vectors - single.passage_vectors).max() <= 1e-5
    assert np.allclose(sharded.score_all(questions), single.score_all(questions), atol=1e-5)


def test_ray_resources_ask_for_a_gpu_only_where_the_cluster_has_one():
    assert DPRRetriever(model="m").ray_resources({"CPU": 2.0}) == {"num_cpus": 1}
    assert DPRRetriever(model="m").ray_resources({"CPU": 16.0, "GPU": 8.0}) == {"num_cpus": 1, "num_gpus": 1}
    assert DPRRetriever(model="m", device="cuda").ray_resources({"GPU": 1.0}) == {"num_cpus": 1, "num_gpus": 1}
    assert DPRRetriever(model="m", device="cpu").ray_resources({"CPU": 16.0, "GPU": 8.0}) == {"num_cpus": 1}
    with pytest.raises(UsageError, match="no GPU"):
        DPRRetriever(model="m", device="cuda").ray_resources({"CPU": 2.0})


def test_ray_shard_builds_ask_the_retriever_for_their_resources():
    from odqa_core._ray_engine import task_resources  # imports no Ray

    gpu_cluster = {"CPU": 16.0, "GPU": 8.0}
    assert task_resources(DPRRetriever(model="m"), gpu_cluster) == {"num_cpus": 1, "num_gpus": 1}
    assert task_resources(DPRRetriever(model="m"), {"CPU": 2.0}) == {"num_cpus": 1}
    assert task_resources(object(), gpu_cluster) == {"num_cpus": 1}  # a retriever without the hook: one CPU


SWEEP_GRID = """
[sweep]
output_dir = "out"
cache_dir = "cache"
metric = "mrr@10"
{shards}
[pipeline]
ks = [1, 5, 10, 20]
{retrievers}
[axes]
"pipeline.top_k" = [10, 20]
"""
#: Columns that differ between two runs of the same cell (times, what this run trained or reused).
VOLATILE = {"trained", "train_s", "index_s", "retrieve_s", "read_s", "cell_s", "finished"}


@pytest.mark.parametrize(
    "retrievers",
    [
        'retriever = "bm25"',
        'retrievers = ["bm25", "dpr"]\nfuser = "cross"\n[pipeline.options.dpr]\nmodel = "{model}"\ndevice = "cpu"',
    ],
    ids=["bm25", "bm25+dpr"],
)
def test_sweep_over_sharded_indexes_gives_the_single_index_metrics(micro_checkpoint, tmp_path, retrievers):
    """``sweep.shards``: the sweep's indexes (sparse, and dense under the cross fuser, which scores candidates
    through the shards) are sharded, and every cell's metrics equal the single indexes'."""
    import csv

    from odqa_core.shards import is_sharded
    from odqa_core.testing import run_cli

    rows = {}
    for label, shards in (("single", ""), ("sharded", "shards = 2")):
        directory = tmp_path / label
        directory.mkdir()
        grid = directory / "grid.toml"
        grid.write_text(SWEEP_GRID.format(shards=shards, retrievers=retrievers.format(model=micro_checkpoint)))
        result = run_cli(f"sweep --config {grid}")
        assert result.exit_code == 0, result.output
        with open(directory / "out" / "results.csv", newline="", encoding="utf-8") as fh:
            rows[label] = [{k: v for k, v in row.items() if k not in VOLATILE} for row in csv.DictReader(fh)]
        indexes = list((directory / "cache" / "indexes").iterdir())
        assert indexes and all(is_sharded(path) == bool(shards) for path in indexes)
    assert len(rows["single"]) == 2 and "mrr@10" in rows["single"][0]
    assert rows["sharded"] == rows["single"]


class _FakeRay:
    """What :class:`odqa_core._ray_engine.ShardBuilders` asks of Ray: the cluster's resources, and actor classes
    made with options (recorded in ``asked``)."""

    def __init__(self, resources):
        self.resources = resources
        self.asked = []

    def cluster_resources(self):
        return self.resources

    def remote(self, **options):
        self.asked.append(options)

        class Actor:
            @staticmethod
            def remote(*args):
                return args

        return lambda cls: Actor


@pytest.mark.parametrize(
    ("cluster", "resources", "actors"),
    [
        ({"CPU": 16.0, "GPU": 2.0}, {"num_cpus": 1, "num_gpus": 1}, 2),  # one actor per GPU, not per CPU
        ({"CPU": 3.0}, {"num_cpus": 1}, 3),  # one per CPU
    ],
)
def test_ray_shard_builders_are_one_gpu_actor_per_gpu(monkeypatch, cluster, resources, actors):
    from odqa_core import _ray_engine

    ray = _FakeRay(cluster)
    monkeypatch.setattr(_ray_engine, "init", lambda address: ray)
    builders = _ray_engine.ShardBuilders(object, list, DPRRetriever, {"model": "m"}, None, 8, None)
    assert ray.asked == [{**resources, "max_restarts": 0, "max_task_retries": 0}]
    assert len(builders.actors) == actors
