"""The ``postprocess`` odqa plugin: registers the postprocessors ``clean``, ``strip-particles`` and ``vote``.

They are registered by reference (see :mod:`odqa_core.hookspecs`): their module is imported when one is first used.
"""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_postprocessors(register):
    register("odqa_postprocess.postprocessors:CleanPostprocessor", name="clean")
    register("odqa_postprocess.postprocessors:StripParticlesPostprocessor", name="strip-particles")
    register("odqa_postprocess.postprocessors:VotePostprocessor", name="vote")
