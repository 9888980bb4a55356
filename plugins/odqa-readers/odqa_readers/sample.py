"""The bundled sample's demo readers (``model=sample``), trained on first use and cached.

The readers plugin module hands :func:`sample_model` to :func:`odqa_readers.base.provide_demo_models`: a demo
reader is trained by :mod:`odqa_readers.training`, which builds on :mod:`odqa_readers.base`, so the base class only
holds the hook. The caching, hashing and atomic placement are odqa-transformers'
(:func:`odqa_transformers.cache.cached_model`), shared with the demo DPR.
Both demo readers learn from the sample corpus and the sample's 180 training questions (disjoint from the 107
evaluation questions). The extractive one is the lexical span scorer (:mod:`odqa_readers.lexical`): no neural
pre-training, so 180 questions are enough for sensible answers. The generative one is a bootstrap T5 with BM25's
top 2 passages and synthetic cloze questions added; on 60 documents it shows the generative pipeline working, it
is not a reader to measure anything with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odqa_transformers.cache import cached_model

from odqa_core.errors import UsageError

#: ReaderTrainConfig settings of each demo reader.
RECIPES: dict[str, dict[str, Any]] = {
    # The lexical span scorer, not a bootstrap BERT: on the sample's 107 evaluation questions it answers EM 41 / F1 57
    # where the bootstrap reader answered EM 0 / F1 10-12 (benchmarks/RESULTS.md §11), in a tenth of the training
    # time. Gold passages only: on 18 held-out training questions BM25's top-2 passages added lowered dev EM
    # (44.4 → 38.9); nothing was chosen on the evaluation questions.
    "extractive": {"reader": "extractive", "model": "lexical", "seed": 0},
    "generative": {
        "bootstrap_size": "tiny",
        "vocab_size": 8000,
        "epochs": 12,
        "batch_size": 16,
        "lr": 1e-3,
        "retrieved": 2,
        "seed": 0,
        "reader": "generative",
        "reader_options": {"max_length": 256, "mode": "fid"},
        # Without cloze questions the bootstrap T5 learns nothing from 180 questions (EM/F1 0 on the sample's
        # evaluation questions); with 4 per passage it answers some (benchmarks/RESULTS.md §8).
        "cloze": 4,
    },
}


def sample_model(reader: str) -> Path:
    """The demo checkpoint of ``reader`` for the bundled sample (trained on first use)."""
    if reader not in RECIPES:
        raise UsageError(f"there is no demo model for reader {reader!r} (model=sample); give -o {reader}.model=PATH")
    recipe = RECIPES[reader]

    def train(output: Path) -> None:
        from odqa_core import data
        from odqa_readers.training import parse_reader_config, train_reader

        documents = data.load_corpus(data.sample_corpus_path())
        questions = data.load_questions(data.sample_train_questions_path())
        train_reader(documents, questions, parse_reader_config(recipe), output)

    return cached_model(reader, recipe, train)
