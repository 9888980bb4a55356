"""The postprocessors' option errors share one wording (``odqa_core.options``): the component, the option, what
it must be and the value given."""

from __future__ import annotations

import pytest
from odqa_postprocess.postprocessors import CleanPostprocessor, StripParticlesPostprocessor, VotePostprocessor

from odqa_core import UsageError


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: CleanPostprocessor(brackets="yes"),
            "postprocessor 'clean': option 'brackets' must be true or false, got 'yes'",
        ),
        (
            lambda: StripParticlesPostprocessor(analyzer="mecab"),
            "postprocessor 'strip-particles': option 'analyzer' must be one of rules, kiwi, got 'mecab'",
        ),
        (
            lambda: StripParticlesPostprocessor(min_stem=0),
            "postprocessor 'strip-particles': option 'min_stem' must be a positive integer, got 0",
        ),
        (
            lambda: VotePostprocessor(aggregate="median"),
            "postprocessor 'vote': option 'aggregate' must be one of sum-softmax, sum, max, count, got 'median'",
        ),
        (
            lambda: VotePostprocessor(temperature="1"),
            "postprocessor 'vote': option 'temperature' must be a finite number, got '1'",
        ),
        (
            lambda: VotePostprocessor(temperature=0),
            "postprocessor 'vote': option 'temperature' must be a number > 0, got 0",
        ),
    ],
)
def test_option_errors_use_the_shared_wording(make, message):
    with pytest.raises(UsageError) as info:
        make()
    assert str(info.value) == message
