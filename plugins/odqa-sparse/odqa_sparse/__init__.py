"""odqa-sparse: TF-IDF and BM25 retrievers with fast exact top-k search, and text analyzers.

Names are imported lazily so that ``import odqa_sparse`` (and plugin registration) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BM25Retriever": "odqa_sparse.retrievers",
    "TfidfRetriever": "odqa_sparse.retrievers",
    "SparseRetriever": "odqa_sparse.retrievers",
    "SparseEmbedding": "odqa_sparse.embedding",
    "RegexAnalyzer": "odqa_sparse.analyzers",
    "CharNgramAnalyzer": "odqa_sparse.analyzers",
    "HFTokenizerAnalyzer": "odqa_sparse.analyzers",
    "KiwiAnalyzer": "odqa_sparse.analyzers",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'odqa_sparse' has no attribute {name!r}")
    return getattr(import_module(module), name)
