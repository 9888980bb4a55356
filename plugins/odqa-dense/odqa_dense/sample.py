"""The bundled sample's demo DPR (``model=sample``), trained on first use and cached
(:func:`odqa_transformers.cache.cached_model`, which the readers' demo models share).

A demonstration of the pipeline on 60 documents, not a model to measure anything with: train real ones with
``odqa train dpr`` (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odqa_transformers.cache import cached_model

#: The demo DPR: bootstrap tiny BERT, Inverse Cloze Task then supervised epochs on the sample's training questions
#: except the third held out for tuning (``odqa_core.data.sample_tuning_split``: the cross fuser's demo λ).
DPR_RECIPE: dict[str, Any] = {"bootstrap_size": "tiny", "vocab_size": 8000, "epochs": 2, "batch_size": 16, "seed": 0}


def sample_dpr() -> Path:
    """The demo DPR checkpoint of the bundled sample (trained on first use)."""

    def train(output: Path) -> None:
        from odqa_core import data
        from odqa_dense.training import TrainConfig, train_dpr

        documents = data.load_corpus(data.sample_corpus_path())
        fit, _ = data.sample_tuning_split(data.load_questions(data.sample_train_questions_path()))
        train_dpr(documents, fit, TrainConfig(**DPR_RECIPE), output)

    return cached_model("dpr", {**DPR_RECIPE, "questions": "sample_tuning_split fit"}, train)
