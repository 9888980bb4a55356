"""odqa-transformers: the transformer toolkit the odqa plugins that run a model share (a library: it registers
nothing).

- :mod:`odqa_transformers.hf` — finding and loading HuggingFace models offline, devices, precisions
- :mod:`odqa_transformers.bootstrap` — a WordPiece tokenizer trained on the corpus and a small BERT/T5 from a config
- :mod:`odqa_transformers.cache` — where odqa caches what it builds; the bundled sample's demo models
- :mod:`odqa_transformers.config` — the training-config base and the trainer (``odqa sweep``'s) made of a config
- :mod:`odqa_transformers.loop` — the training loop's pieces: the optimizer step, folds, output, resumable state
- :mod:`odqa_transformers.encoder_checkpoint` — the DPR checkpoint layout, and reading its encoders
- :mod:`odqa_transformers.cli` — the options and steps the ``odqa train`` commands share
- :mod:`odqa_transformers.model_families` — tiny offline models of the families users bring, for tests
"""

from __future__ import annotations

__version__ = "0.1.0"
