"""Every fuser of the plugin meets the core's FuserContract (in all its modes)."""

from __future__ import annotations

import pytest
from odqa_fusion.fusers import CrossFuser, RRFFuser, SequentialFuser

from odqa_core import plugins
from odqa_core.testing import FuserContract


def test_plugin_registers_the_fusers():
    registry = plugins.registry("fuser")
    for name, cls in (("sequential", SequentialFuser), ("cross", CrossFuser), ("rrf", RRFFuser)):
        assert registry[name].cls is cls and registry[name].plugin == "fusion"


class TestSequential(FuserContract):
    @pytest.fixture(params=[2, 100])
    def make_fuser(self, request):
        return lambda: SequentialFuser(candidates=request.param)


class TestCross(FuserContract):
    @pytest.fixture(
        params=[
            {"mode": "whole"},
            {"mode": "whole", "normalization": "min-max"},
            {"mode": "whole", "normalization": "z-score", "memory_mb": 1},
            {"mode": "union", "depth": 3},
            {"mode": "union", "depth": 3, "missing": "zero", "normalization": "min-max"},
            {"mode": "union", "depth": 3, "missing": "exact", "normalization": "z-score"},
        ],
        ids=lambda p: "-".join(map(str, p.values())),
    )
    def make_fuser(self, request):
        # The contract's two retrievers are both named "fake": weights go by position.
        return lambda: CrossFuser(weights=[1.0, 1.1], **request.param)


class TestRRF(FuserContract):
    @pytest.fixture(params=[{}, {"depth": 2, "rrf_k": 1, "weights": [2.0, 0.5]}], ids=["default", "shallow"])
    def make_fuser(self, request):
        return lambda: RRFFuser(**request.param)
