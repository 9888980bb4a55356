"""Every postprocessor of the plugin meets the core's PostprocessorContract (with several option sets)."""

from __future__ import annotations

import pytest
from odqa_postprocess.postprocessors import CleanPostprocessor, StripParticlesPostprocessor, VotePostprocessor

from odqa_core import plugins
from odqa_core.testing import PostprocessorContract


def test_plugin_registers_the_postprocessors():
    registry = plugins.registry("postprocessor")
    expected = (("clean", CleanPostprocessor), ("strip-particles", StripParticlesPostprocessor))
    for name, cls in (*expected, ("vote", VotePostprocessor)):
        assert registry[name].cls is cls and registry[name].plugin == "postprocess"


def _ids(options: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in options.items()) or "default"


class TestClean(PostprocessorContract):
    @pytest.fixture(params=[{}, {"brackets": False}, {"whitespace": False}], ids=_ids)
    def make_postprocessor(self, request):
        return lambda: CleanPostprocessor(**request.param)


class TestStripParticles(PostprocessorContract):
    @pytest.fixture(
        params=[{}, {"min_stem": 1, "keep": []}, {"particles": ["에서", "는", "를"]}, {"analyzer": "kiwi"}], ids=_ids
    )
    def make_postprocessor(self, request):
        if request.param.get("analyzer") == "kiwi":
            pytest.importorskip("kiwipiepy")
        return lambda: StripParticlesPostprocessor(**request.param)


class TestVote(PostprocessorContract):
    @pytest.fixture(
        params=[{}, {"aggregate": "sum"}, {"aggregate": "max"}, {"aggregate": "count"}, {"temperature": 0.5}],
        ids=_ids,
    )
    def make_postprocessor(self, request):
        return lambda: VotePostprocessor(**request.param)
