"""The retriever contract for ``dpr``: odqa checkpoints (flat, HNSW and IVF indexes) and a HuggingFace model dir."""

from __future__ import annotations

import pytest
from odqa_dense.retriever import DPRRetriever

from odqa_core.testing import RetrieverContract


class TestDPRContract(RetrieverContract):
    # The toy corpus has 8 passages: IVF gets a single list there (at least 39 points per list), so this run only
    # checks the IVF plumbing; test_dense_index.py searches real multi-list IVF indexes.
    @pytest.fixture(params=["flat", "hnsw", "ivf"])
    def make_retriever(self, request, micro_checkpoint):
        return lambda: DPRRetriever(model=micro_checkpoint, device="cpu", index_type=request.param)


class TestDPRHuggingFaceModelContract(RetrieverContract):
    # A HuggingFace directory has no recorded pooling; cls would tie every score of an untrained model (conftest).
    @pytest.fixture
    def make_retriever(self, hf_model_dir):
        return lambda: DPRRetriever(model=hf_model_dir, device="cpu", pooling="mean")


class TestDPRNoTitleSmallBatchContract(RetrieverContract):
    @pytest.fixture
    def make_retriever(self, micro_checkpoint):
        return lambda: DPRRetriever(model=micro_checkpoint, device="cpu", include_title=False, batch_size=3)
