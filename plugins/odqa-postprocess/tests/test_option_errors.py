"""The postprocessors' option errors share one wording (``odqa_core.options``): the component, the option, what
it must be and the value given."""

from __future__ import annotations

import pytest
from odqa_postprocess.postprocessors import CleanPostprocessor, StripParticlesPostprocessor, VotePostprocessor

from odqa_core import UsageError


@pytest.mark.parametrize(
    ("component", "name", "option", "value", "must_be"),
    [
        (CleanPostprocessor, "clean", "brackets", "yes", "true or false"),
        (StripParticlesPostprocessor, "strip-particles", "analyzer", "mecab", "one of rules, kiwi"),
        (StripParticlesPostprocessor, "strip-particles", "min_stem", 0, "a positive integer"),
        (VotePostprocessor, "vote", "aggregate", "median", "one of sum-softmax, sum, max, count"),
        (VotePostprocessor, "vote", "temperature", "1", "a finite number"),
        (VotePostprocessor, "vote", "temperature", 0, "a number > 0"),
    ],
)
def test_option_errors_use_the_shared_wording(component, name, option, value, must_be):
    with pytest.raises(UsageError) as info:
        component(**{option: value})
    # The whole message, letter for letter: "got" shows the value as given ('yes' quoted, 0 bare).
    assert str(info.value) == f"postprocessor '{name}': option '{option}' must be {must_be}, got {value!r}"
