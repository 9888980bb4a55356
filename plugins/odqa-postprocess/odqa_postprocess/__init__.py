"""odqa-postprocess: postprocessors that rewrite or re-rank a reader's n-best answers (pure Python).

- :mod:`odqa_postprocess.postprocessors` — ``clean`` (whitespace and unbalanced bracket/quote cleanup),
  ``strip-particles`` (a trailing Korean particle) and ``vote`` (n-best voting across passages)
- :mod:`odqa_postprocess.korean` — the particle rules of ``strip-particles`` (pure Python, no dependency)
"""

from __future__ import annotations

__version__ = "0.1.0"
