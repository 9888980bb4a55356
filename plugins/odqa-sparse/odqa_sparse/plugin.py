"""The ``sparse`` odqa plugin: registers the analyzers and the ``tfidf`` / ``bm25`` retrievers.

Registration imports only light modules (``re``, numpy, odqa_core); scipy and numba are imported when a retriever
indexes, loads or warms up, so ``odqa plugins`` stays fast.
"""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_analyzers(register):
    from odqa_sparse.analyzers import CharNgramAnalyzer, HFTokenizerAnalyzer, KiwiAnalyzer, RegexAnalyzer

    register(RegexAnalyzer)
    register(CharNgramAnalyzer)
    register(HFTokenizerAnalyzer)
    register(KiwiAnalyzer)


@odqa_core.hookimpl
def register_retrievers(register):
    from odqa_sparse.retrievers import BM25Retriever, TfidfRetriever

    register(BM25Retriever)
    register(TfidfRetriever)
