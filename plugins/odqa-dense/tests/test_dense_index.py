"""FAISS indexes (flat / HNSW / IVF) and the ``dpr`` index: exactness, persistence, the model it was built with."""

from __future__ import annotations

import numpy as np
import pytest
from odqa_dense.retriever import DPRRetriever
from odqa_dense.vectors import VectorIndex, default_nlist

from odqa_core import DataError, IndexFormatError, UsageError
from odqa_core.storage import open_store, write_store


@pytest.fixture(scope="module")
def random_vectors():
    rng = np.random.default_rng(7)
    passages = rng.standard_normal((2000, 32)).astype(np.float32)
    queries = rng.standard_normal((60, 32)).astype(np.float32)
    return passages, queries


@pytest.fixture(scope="module")
def exact(random_vectors):
    passages, queries = random_vectors
    return VectorIndex(passages, "flat").search(queries, 10)


def brute_force(passages, queries, k):
    scores = queries @ passages.T
    order = np.lexsort((np.broadcast_to(np.arange(len(passages)), scores.shape), -scores), axis=-1)[:, :k]
    return order, np.take_along_axis(scores, order, 1)


def assert_ranked(indices, scores, n):
    assert indices.dtype == np.int64 and scores.dtype == np.float32
    assert ((indices >= 0) & (indices < n)).all(), "a ranking contains -1 or an out-of-range index"
    assert (np.diff(scores, axis=1) <= 0).all(), "not best first"
    tied = np.diff(scores, axis=1) == 0
    assert (np.diff(indices, axis=1)[tied] > 0).all(), "ties not broken by index"
    for row in indices:
        assert len(set(row.tolist())) == len(row)


# --- VectorIndex --------------------------------------------------------------------------------------------------


def test_flat_is_brute_force(random_vectors, exact):
    passages, queries = random_vectors
    indices, scores = exact
    expected_indices, expected_scores = brute_force(passages, queries, 10)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


def test_hnsw_recall_against_flat(random_vectors, exact):
    passages, queries = random_vectors
    index = VectorIndex(passages, "hnsw")
    indices, scores = index.search(queries, 10)
    assert_ranked(indices, scores, len(passages))
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(indices.tolist(), exact[0].tolist())])
    assert recall >= 0.95, recall


def test_ivf_with_every_list_probed_is_exact(random_vectors, exact):
    passages, queries = random_vectors
    index = VectorIndex(passages, "ivf")
    assert index.nlist == default_nlist(len(passages)) > 1
    indices, scores = index.search(queries, 10, nprobe=index.nlist)
    np.testing.assert_array_equal(indices, exact[0])
    np.testing.assert_allclose(scores, exact[1], rtol=1e-6, atol=1e-6)


def test_ivf_one_probe_large_k_is_filled_and_sorted(random_vectors):
    passages, queries = random_vectors
    index = VectorIndex(passages, "ivf", nlist=40)
    # One probed list holds ~50 vectors: k=200 cannot be met from it, those rows come from an exact search.
    indices, scores = index.search(queries, 200, nprobe=1)
    assert indices.shape == scores.shape == (len(queries), 200)
    assert_ranked(indices, scores, len(passages))
    expected_indices, _ = brute_force(passages, queries, 200)
    np.testing.assert_array_equal(indices, expected_indices)
    # ... while a small k from one list is a (cheaper) approximate answer, still well formed.
    indices, scores = index.search(queries, 5, nprobe=1)
    assert_ranked(indices, scores, len(passages))


def test_k_larger_than_the_index_is_clamped(random_vectors):
    passages, queries = random_vectors
    for index_type in ("flat", "hnsw", "ivf"):
        index = VectorIndex(passages[:50], index_type)
        indices, scores = index.search(queries[:3], 500)
        assert indices.shape == (3, 50), index_type
        assert_ranked(indices, scores, 50)


def test_ties_are_broken_by_index():
    vectors = np.repeat(np.eye(4, dtype=np.float32), 3, axis=0)  # rows 0-2 identical, 3-5 identical, ...
    for index_type in ("flat", "hnsw"):
        indices, scores = VectorIndex(vectors, index_type).search(np.eye(4, dtype=np.float32)[[1]], 12)
        assert indices[0, :3].tolist() == [3, 4, 5], index_type
        assert_ranked(indices, scores, 12)


@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_ties_at_the_kth_place_keep_the_lowest_indices(index_type):
    """Duplicate passages tie; where a tie straddles the k-th place, the lowest indices make the cut (FAISS's heap
    alone keeps any of them), so a search to depth k is the first k of a search of every passage."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((60, 16)).astype(np.float32)[rng.integers(0, 60, 600)]  # each ~10 times
    queries = rng.standard_normal((64, 16)).astype(np.float32)
    index = VectorIndex(vectors, index_type, nlist=4)  # ivf probing all 4 lists: exact
    full, full_scores = index.search(queries, 600, nprobe=4)
    for k in (1, 5, 10, 25, 50, 100):
        indices, scores = index.search(queries, k, nprobe=4)
        np.testing.assert_array_equal(indices, full[:, :k], err_msg=f"k={k}")
        np.testing.assert_array_equal(scores, full_scores[:, :k])
        assert_ranked(indices, scores, 600)


def test_no_queries_and_wrong_dimension(random_vectors):
    passages, _ = random_vectors
    index = VectorIndex(passages[:100], "flat")
    indices, scores = index.search(np.zeros((0, 32), np.float32), 5)
    assert indices.shape == scores.shape == (0, 5)
    with pytest.raises(UsageError, match="32-dim"):
        index.search(np.zeros((2, 16), np.float32), 5)


def test_unknown_index_type():
    with pytest.raises(UsageError, match="flat, hnsw, ivf"):
        VectorIndex(np.zeros((3, 4), np.float32), "annoy")


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf"])
def test_vector_index_save_load_round_trip(random_vectors, index_type, tmp_path):
    passages, queries = random_vectors
    index = VectorIndex(passages, index_type)
    with write_store(tmp_path / "s", kind="test", name="vectors", format_version=1, config={}) as writer:
        index.save(writer)
    assert (tmp_path / "s" / "index.faiss").is_file() == (index_type != "flat")
    loaded = VectorIndex.load(open_store(tmp_path / "s"))
    assert (loaded.index_type, loaded.nlist, len(loaded), loaded.dim) == (index_type, index.nlist, 2000, 32)
    np.testing.assert_array_equal(loaded.vectors, passages)
    for nprobe in (1, 4, index.nlist or 1):
        before = index.search(queries, 10, nprobe=nprobe, ef_search=16)
        after = loaded.search(queries, 10, nprobe=nprobe, ef_search=16)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])


def test_loaded_ivf_honours_nprobe(random_vectors, exact, tmp_path):
    """nprobe must reach the FAISS object read back from disk (not just a Python attribute on a proxy)."""
    passages, queries = random_vectors
    with write_store(tmp_path / "s", kind="test", name="vectors", format_version=1, config={}) as writer:
        VectorIndex(passages, "ivf", nlist=40).save(writer)
    loaded = VectorIndex.load(open_store(tmp_path / "s"))
    full = loaded.search(queries, 10, nprobe=40)
    np.testing.assert_array_equal(full[0], exact[0])
    one = loaded.search(queries, 10, nprobe=1)
    assert not np.array_equal(one[0], exact[0]), "probing one of 40 lists found the exact top-10 for 60 queries"


def test_vectors_that_disagree_with_the_manifest_are_refused(random_vectors, tmp_path):
    passages, _ = random_vectors
    with write_store(tmp_path / "s", kind="test", name="vectors", format_version=1, config={}) as writer:
        VectorIndex(passages[:100], "flat").save(writer)
        writer.params["count"] = 99
    with pytest.raises(IndexFormatError, match="manifest says"):
        VectorIndex.load(open_store(tmp_path / "s"))


# --- the dpr retriever's index ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_queries(sample_questions):
    return [q.text for q in sample_questions[:25]]


@pytest.fixture(scope="module")
def built(tmp_path_factory, micro_checkpoint, sample_documents):
    """A flat dpr index over the bundled sample, saved."""
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    retriever.index(sample_documents)
    path = tmp_path_factory.mktemp("dpr") / "index"
    retriever.save(path)
    return retriever, path


def test_stored_vectors_are_the_passage_vectors(built, sample_documents):
    retriever, path = built
    stored = np.load(path / "vectors.npy", allow_pickle=False)
    assert stored.dtype == np.float32 and stored.shape == (len(sample_documents), 32)
    np.testing.assert_array_equal(stored, retriever.passage_vectors)
    np.testing.assert_array_equal(DPRRetriever.load(path).passage_vectors, stored)
    np.testing.assert_allclose(retriever.encode_passages(sample_documents), stored, rtol=1e-5, atol=1e-5)


def test_manifest_records_the_model(built, micro_checkpoint):
    retriever, path = built
    params = open_store(path).params
    assert params["model_fingerprint"] == retriever.encoder.fingerprint != ""
    assert params["dim"] == 32 and params["count"] == len(retriever.documents)
    assert params["pooling"] == "mean" and params["encoders"] == "shared"


def test_search_vectors_equals_search(built, sample_queries):
    retriever, _ = built
    by_text = retriever.search(sample_queries, 7)
    by_vector = retriever.search_vectors(retriever.encode_queries(sample_queries), 7)
    np.testing.assert_array_equal(by_text.indices, by_vector.indices)
    np.testing.assert_array_equal(by_text.scores, by_vector.scores)
    assert retriever.encode_queries(sample_queries).shape == (len(sample_queries), 32)


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf"])
def test_dpr_save_load_round_trip(micro_checkpoint, sample_documents, sample_queries, index_type, tmp_path):
    # nlist=4 on the 58-passage sample: a real multi-list IVF (FAISS only advises more training points).
    options = {"nlist": 4, "nprobe": 1} if index_type == "ivf" else {}
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu", index_type=index_type, **options)
    retriever.index(sample_documents)
    retriever.save(tmp_path / "index")
    loaded = DPRRetriever.load(tmp_path / "index")
    assert loaded.config() == retriever.config()
    before, after = retriever.search(sample_queries, 10), loaded.search(sample_queries, 10)
    np.testing.assert_array_equal(before.indices, after.indices)
    np.testing.assert_array_equal(before.scores, after.scores)
    assert_ranked(after.indices, after.scores, len(sample_documents))


def test_ivf_nprobe_is_a_runtime_option(built, micro_checkpoint, sample_documents, sample_queries, tmp_path):
    exact_retriever, _ = built
    expected = exact_retriever.search(sample_queries, 10)
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu", index_type="ivf", nlist=4, nprobe=1)
    retriever.index(sample_documents)
    retriever.save(tmp_path / "index")
    full = DPRRetriever.load(tmp_path / "index", {"nprobe": 4, "batch_size": 5}).search(sample_queries, 10)
    np.testing.assert_array_equal(full.indices, expected.indices)
    np.testing.assert_allclose(full.scores, expected.scores, rtol=1e-5, atol=1e-5)


def test_searching_with_another_model_is_refused(built, other_micro_checkpoint, sample_queries):
    _, path = built
    retriever = DPRRetriever.load(path, {"model": other_micro_checkpoint})
    with pytest.raises(DataError, match="built with another model"):
        retriever.search(sample_queries, 5)


def test_searching_with_another_dimension_is_refused(built, wide_checkpoint, sample_queries):
    _, path = built
    retriever = DPRRetriever.load(path, {"model": wide_checkpoint})
    with pytest.raises(DataError, match="128-dim.*32-dim"):
        retriever.search(sample_queries, 5)


def test_a_copy_of_the_model_is_the_same_model(built, micro_checkpoint, sample_queries, tmp_path):
    import shutil

    retriever, path = built
    copy = shutil.copytree(micro_checkpoint, tmp_path / "copied-model")
    results = DPRRetriever.load(path, {"model": str(copy)}).search(sample_queries, 5)
    np.testing.assert_array_equal(results.indices, retriever.search(sample_queries, 5).indices)


@pytest.mark.parametrize(("option", "value"), [("pooling", "mean"), ("index_type", "hnsw"), ("include_title", False)])
def test_index_time_options_cannot_change_at_load(built, option, value):
    _, path = built
    with pytest.raises(UsageError, match=f"'{option}'.*fixed when the index is built"):
        DPRRetriever.load(path, {option: value})


def test_not_indexed_yet_is_a_usage_error(micro_checkpoint):
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    for call in (
        lambda: retriever.search(["q"], 3),
        lambda: retriever.search_vectors(np.zeros((1, 32), np.float32), 3),
        lambda: retriever.passage_vectors,
        lambda: retriever.save("never-written"),
    ):
        with pytest.raises(UsageError, match="no index"):
            call()


def test_no_model_is_a_usage_error(sample_documents):
    with pytest.raises(UsageError, match="needs a model"):
        DPRRetriever(device="cpu").index(sample_documents)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"index_type": "annoy"}, "index_type"),
        ({"device": "tpu"}, "device"),
        ({"precision": "fp8"}, "precision"),
        ({"pooling": "max"}, "pooling"),
        ({"batch_size": 0}, "batch_size"),
        ({"nprobe": True}, "nprobe"),
        ({"nlist": 0}, "nlist"),
        ({"query_max_length": "64"}, "query_max_length"),
        ({"include_title": "yes"}, "include_title"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_options_are_usage_errors(options, match):
    with pytest.raises(UsageError, match=match):
        DPRRetriever.from_options(options)


def test_fp16_on_cpu_is_a_usage_error(micro_checkpoint, sample_documents):
    with pytest.raises(UsageError, match="fp16"):
        DPRRetriever(model=micro_checkpoint, device="cpu", precision="fp16").index(sample_documents)


def test_ivf_with_more_lists_than_vectors(random_vectors):
    passages, queries = random_vectors
    index = VectorIndex(passages[:60], "ivf", nlist=500)
    assert index.nlist == 60
    indices, scores = index.search(queries[:5], 60, nprobe=60)
    np.testing.assert_array_equal(indices, brute_force(passages[:60], queries[:5], 60)[0])


def test_relative_model_path_is_stored_absolute(
    micro_checkpoint, sample_documents, sample_queries, tmp_path, monkeypatch
):
    import shutil
    from pathlib import Path

    shutil.copytree(micro_checkpoint, tmp_path / "models" / "m")
    monkeypatch.chdir(tmp_path)
    retriever = DPRRetriever(model="models/m", device="cpu")
    retriever.index(sample_documents)
    retriever.save(tmp_path / "index")
    monkeypatch.chdir(tmp_path / "models")  # somewhere "models/m" means nothing
    loaded = DPRRetriever.load(tmp_path / "index")
    assert Path(loaded.model).is_absolute() and Path(loaded.model) == (tmp_path / "models" / "m").resolve()
    np.testing.assert_array_equal(
        loaded.search(sample_queries, 5).indices, retriever.search(sample_queries, 5).indices
    )


def test_huggingface_question_model(hf_model_dir, vocab_texts, sample_documents, sample_queries, tmp_path):
    from odqa_transformers.bootstrap import bootstrap_encoder

    _, question = bootstrap_encoder(vocab_texts, "micro", 500, 512, 8)
    question.save_pretrained(str(tmp_path / "question"))
    retriever = DPRRetriever(
        model=hf_model_dir, question_model=str(tmp_path / "question"), device="cpu", pooling="mean"
    )
    retriever.index(sample_documents)
    assert retriever.encoder.encoders == "separate"
    retriever.save(tmp_path / "index")
    assert open_store(tmp_path / "index").params["encoders"] == "separate"
    loaded = DPRRetriever.load(tmp_path / "index")
    np.testing.assert_array_equal(
        loaded.search(sample_queries, 5).indices, retriever.search(sample_queries, 5).indices
    )
    # dropping (or swapping) the question tower is another model
    with pytest.raises(DataError, match="another model"):
        DPRRetriever.load(tmp_path / "index", {"question_model": None}).search(sample_queries, 5)
