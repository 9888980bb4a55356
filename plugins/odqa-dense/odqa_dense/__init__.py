"""odqa-dense: dense passage retrieval (DPR) for odqa.

The HuggingFace loading, the offline bootstrap and the training loop's pieces are odqa-transformers' (shared with
the readers).

- :mod:`odqa_dense.encoder` — the bi-encoder, fast length-sorted encoding, safetensors checkpoints
- :mod:`odqa_dense.vectors` — FAISS inner-product indexes (flat, HNSW, IVF)
- :mod:`odqa_dense.retriever` — the ``dpr`` retriever
- :mod:`odqa_dense.training` — DPR training: in-batch + hard negatives, per-epoch retrieval evaluation, k-fold
"""

from __future__ import annotations

__version__ = "0.1.0"
