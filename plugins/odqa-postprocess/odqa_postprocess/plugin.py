"""The ``postprocess`` odqa plugin: registers the postprocessors ``clean``, ``strip-particles`` and ``vote``."""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_postprocessors(register):
    from odqa_postprocess.postprocessors import CleanPostprocessor, StripParticlesPostprocessor, VotePostprocessor

    register(CleanPostprocessor)
    register(StripParticlesPostprocessor)
    register(VotePostprocessor)
