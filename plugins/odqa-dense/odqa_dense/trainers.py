"""The ``dpr`` trainer: :func:`odqa_dense.training.train_dpr` as an :class:`odqa_core.interfaces.Trainer`.

``odqa sweep`` creates one per grid cell with training settings by :class:`~odqa_dense.training.TrainConfig` field
name (``epochs``, ``lr``, ``hard_negatives``, ``fold``, ...), calls :meth:`DPRTrainer.train` and hands the chosen
epoch's checkpoint to the ``dpr`` retriever's ``model`` option. Every epoch's checkpoint is kept (``epoch-N/``).
With ``folds > 1`` a trainer trains the one ``fold`` it is given (its held-out questions select the epochs).

Creating a trainer validates its settings (one-line usage errors) and imports no torch; training does.
"""

from __future__ import annotations

from typing import Any

from odqa_transformers.config import ConfigTrainer

from odqa_dense.training import TrainConfig, train_dpr

#: TrainConfig fields that are tuples (TOML and JSON give lists).
_TUPLES = ("eval_ks",)


class DPRTrainer(ConfigTrainer):
    """Trains a ``dpr`` retriever's bi-encoder; options are ``odqa train dpr``'s settings by field name."""

    name = "dpr"
    stage = "retriever"
    config_class = TrainConfig

    def train_config(self, **overrides: Any) -> TrainConfig:
        """A validated :class:`TrainConfig` of the settings (a fresh one each call: validation fills defaults)."""
        values = {**self.settings, **overrides}
        for name in _TUPLES:
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        if isinstance(values.get("negative_options"), dict):
            values["negative_options"] = dict(values["negative_options"])
        return TrainConfig(**values).validate()

    def run_training(self, documents, questions, config, output, dev_questions) -> dict[str, Any]:
        return train_dpr(documents, questions, config, output, dev_questions=dev_questions)
