"""A sharded dpr index (odqa_core.shards, no dense-specific code): each shard encodes its passages and writes its
own vectors and FAISS index; the vectors equal the single-process encode and the flat top k is the same."""

from __future__ import annotations

import numpy as np
from odqa_dense.retriever import DPRRetriever

from odqa_core.pipeline import load_retriever
from odqa_core.shards import build_sharded_index


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
