"""The ``fusion`` odqa plugin: registers the fusers ``sequential``, ``cross`` and ``rrf`` (numpy only)."""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_fusers(register):
    from odqa_fusion.fusers import CrossFuser, RRFFuser, SequentialFuser

    register(SequentialFuser)
    register(CrossFuser)
    register(RRFFuser)
