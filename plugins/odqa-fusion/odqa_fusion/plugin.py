"""The ``fusion`` odqa plugin: registers the fusers ``sequential``, ``cross`` and ``rrf`` (numpy only).

They are registered by reference (see :mod:`odqa_core.hookspecs`): numpy is imported when a fuser is first used.
"""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_fusers(register):
    register("odqa_fusion.fusers:SequentialFuser", name="sequential")
    register("odqa_fusion.fusers:CrossFuser", name="cross")
    register("odqa_fusion.fusers:RRFFuser", name="rrf")
