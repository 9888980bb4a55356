"""The bundled sample's demo readers (``model=sample``), trained on first use and cached.

The caching, hashing and atomic placement are odqa-dense's (:mod:`odqa_dense.sample`), shared with the demo DPR.
Each demo reader is a bootstrap model trained on the sample corpus and the sample's training questions (disjoint
from the evaluation questions), with BM25-retrieved passages added as in retrieved-passage training (and, for the
generative one, synthetic cloze questions). On 60
documents and 180 questions it shows the pipeline working; it is not a reader to measure anything with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: What both demo readers share: a bootstrap ``tiny`` model, 12 epochs, BM25's top 2 passages added to each question.
_COMMON: dict[str, Any] = {
    "bootstrap_size": "tiny",
    "vocab_size": 8000,
    "epochs": 12,
    "batch_size": 16,
    "lr": 1e-3,
    "retrieved": 2,
    "seed": 0,
}
#: ReaderTrainConfig settings of each demo reader.
RECIPES: dict[str, dict[str, Any]] = {
    "extractive": {**_COMMON, "reader": "extractive", "reader_options": {"max_length": 256, "doc_stride": 96}},
    "generative": {
        **_COMMON,
        "reader": "generative",
        "reader_options": {"max_length": 256, "mode": "fid"},
        # Without cloze questions the bootstrap T5 learns nothing from 180 questions (EM/F1 0 on the sample's
        # evaluation questions); with 4 per passage it answers some (benchmarks/RESULTS.md §8).
        "cloze": 4,
    },
}


def sample_model(reader: str) -> Path:
    """The demo checkpoint of ``reader`` for the bundled sample (trained on first use)."""
    from odqa_dense.sample import cached_model

    from odqa_core.errors import UsageError

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
