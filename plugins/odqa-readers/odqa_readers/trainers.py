"""The ``extractive`` and ``generative`` trainers: :func:`odqa_readers.training.train_reader` as
:class:`odqa_core.interfaces.Trainer` s, one per reader (the trainer's name is the reader it trains).

``odqa sweep`` creates one per grid cell with training settings by :class:`~odqa_readers.training.ReaderTrainConfig`
field name (``epochs``, ``lr``, ``retrieved``, ``reader_options``, ``fold``, ...), calls :meth:`train` and hands the
chosen epoch's checkpoint to the reader's ``model`` option. Every epoch's checkpoint is kept (``epoch-N/``); with
``folds > 1`` a trainer trains the one ``fold`` it is given.

Creating a trainer validates its settings (one-line usage errors) and imports no torch; training does.
"""

from __future__ import annotations

from typing import Any

from odqa_transformers.config import ConfigTrainer

from odqa_readers.training import ReaderTrainConfig, parse_reader_config, train_reader


class TransformerReaderTrainer(ConfigTrainer):
    """Trains the reader named like the trainer; options are ``odqa train reader``'s settings by field name."""

    stage = "reader"
    config_class = ReaderTrainConfig
    #: The reader is the trainer's name, and every epoch is kept.
    not_options = ("reader", "keep_epochs")

    def train_config(self, **overrides: Any) -> ReaderTrainConfig:
        """A validated :class:`ReaderTrainConfig` of the settings, for this trainer's reader."""
        values = {**self.settings, **overrides, "reader": self.name}
        if isinstance(values.get("retrievers"), str):
            values["retrievers"] = [values["retrievers"]]
        # Copies: the caller's stay untouched.
        for name in ("retrievers", "reader_options", "retrieval_options", "lexical_options"):
            if isinstance(values.get(name), (list, dict)):
                values[name] = type(values[name])(values[name])
        return parse_reader_config(values).validate()

    def run_training(self, documents, questions, config, output, dev_questions) -> dict[str, Any]:
        return train_reader(documents, questions, config, output, dev_questions=dev_questions)


class ExtractiveTrainer(TransformerReaderTrainer):
    """Trains an ``extractive`` (span) reader."""

    name = "extractive"


class GenerativeTrainer(TransformerReaderTrainer):
    """Trains a ``generative`` (seq2seq) reader."""

    name = "generative"
