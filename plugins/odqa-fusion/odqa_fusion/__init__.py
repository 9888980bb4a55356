"""odqa-fusion: fusers that combine any registered retrievers.

- :mod:`odqa_fusion.scoring` — score normalization and candidate-list arithmetic (unions, lookups), vectorized
- :mod:`odqa_fusion.fusers` — ``sequential``, ``cross`` and ``rrf``
"""

from __future__ import annotations

__version__ = "0.1.0"
