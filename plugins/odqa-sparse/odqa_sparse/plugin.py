"""The ``sparse`` odqa plugin: registers the analyzers and the ``tfidf`` / ``bm25`` retrievers.

Components are registered by reference ("module:Class", see :mod:`odqa_core.hookspecs`): loading the plugin imports
only this module, so ``odqa --help`` and ``odqa plugins`` stay fast; numpy, scipy, numba and kiwipiepy are imported
when a component is first used.
"""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_analyzers(register):
    register("odqa_sparse.analyzers:RegexAnalyzer", name="regex")
    register("odqa_sparse.analyzers:CharNgramAnalyzer", name="char-ngram")
    register("odqa_sparse.analyzers:HFTokenizerAnalyzer", name="hf")
    register("odqa_sparse.analyzers:KiwiAnalyzer", name="kiwi")


@odqa_core.hookimpl
def register_retrievers(register):
    register("odqa_sparse.retrievers:BM25Retriever", name="bm25")
    register("odqa_sparse.retrievers:TfidfRetriever", name="tfidf")
