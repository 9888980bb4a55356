"""odqa-dense: dense passage retrieval (DPR) for odqa.

- :mod:`odqa_dense.hf` — finding and loading HuggingFace models offline, devices, precisions (shared by plugins)
- :mod:`odqa_dense.bootstrap` — a WordPiece tokenizer trained on the corpus and a small BERT from a config
- :mod:`odqa_dense.encoder` — the bi-encoder, fast length-sorted encoding, safetensors checkpoints
- :mod:`odqa_dense.vectors` — FAISS inner-product indexes (flat, HNSW, IVF)
- :mod:`odqa_dense.retriever` — the ``dpr`` retriever
- :mod:`odqa_dense.training` — DPR training: in-batch + hard negatives, per-epoch retrieval evaluation, k-fold
"""

from __future__ import annotations

__version__ = "0.1.0"
