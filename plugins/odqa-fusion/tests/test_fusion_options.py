"""The fusers' option errors share one wording (``odqa_core.options``): the fuser, the option, what it must be
and the value given."""

from __future__ import annotations

import math

import pytest
from odqa_fusion.fusers import CrossFuser, RRFFuser, SequentialFuser

from odqa_core import UsageError


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: SequentialFuser(candidates=0),
            "fuser 'sequential': option 'candidates' must be a positive integer, got 0",
        ),
        (lambda: CrossFuser(lam=-1), "fuser 'cross': option 'lam' must be a number >= 0, got -1"),
        (lambda: CrossFuser(lam=True), "fuser 'cross': option 'lam' must be a finite number, got True"),
        (lambda: CrossFuser(mode="both"), "fuser 'cross': option 'mode' must be one of whole, union, got 'both'"),
        (lambda: CrossFuser(memory_mb=0.5), "fuser 'cross': option 'memory_mb' must be a number >= 1, got 0.5"),
        (
            lambda: CrossFuser(weights={"bm25": -1}),
            "fuser 'cross': option 'weights.bm25' must be a number >= 0, got -1",
        ),
        (lambda: RRFFuser(rrf_k=math.nan), "fuser 'rrf': option 'rrf_k' must be a finite number, got nan"),
        (lambda: RRFFuser(depth=2.5), "fuser 'rrf': option 'depth' must be a positive integer, got 2.5"),
    ],
)
def test_option_errors_use_the_shared_wording(make, message):
    with pytest.raises(UsageError) as info:
        make()
    assert str(info.value) == message
