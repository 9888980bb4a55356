"""The ``extractive`` and ``generative`` trainers: :func:`odqa_readers.training.train_reader` as
:class:`odqa_core.interfaces.Trainer` s, one per reader (the trainer's name is the reader it trains).

``odqa sweep`` creates one per grid cell with training settings by :class:`~odqa_readers.training.ReaderTrainConfig`
field name (``epochs``, ``lr``, ``retrieved``, ``reader_options``, ``fold``, ...), calls :meth:`train` and hands the
chosen epoch's checkpoint to the reader's ``model`` option. Every epoch's checkpoint is kept (``epoch-N/``); with
``folds > 1`` a trainer trains the one ``fold`` it is given.

Creating a trainer validates its settings (one-line usage errors) and imports no torch; training does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odqa_dense.trainers import check_one_model

from odqa_core.errors import UsageError
from odqa_core.interfaces import EpochCheckpoint, Trainer
from odqa_core.types import Document, Question
from odqa_readers.training import ReaderTrainConfig, parse_reader_config, train_reader

#: ReaderTrainConfig fields a trainer does not take: the reader is the trainer's name, and every epoch is kept.
_NOT_OPTIONS = ("reader", "keep_epochs")


class TransformerReaderTrainer(Trainer):
    """Trains the reader named like the trainer; options are ``odqa train reader``'s settings by field name."""

    stage = "reader"

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(ReaderTrainConfig) if f.name not in _NOT_OPTIONS]

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self.option_names()))
        if unknown:  # from_options reports these first; this guards direct construction
            raise UsageError(f"unknown {self.name} training setting(s) {', '.join(unknown)}")
        self.settings = dict(settings)
        config = self.train_config()  # a bad value fails now, with the config's one-line usage error
        check_one_model(config.folds, config.fold)

    def train_config(self, **overrides: Any) -> ReaderTrainConfig:
        """A validated :class:`ReaderTrainConfig` of the settings, for this trainer's reader."""
        values = {**self.settings, **overrides, "reader": self.name}
        if isinstance(values.get("retrievers"), str):
            values["retrievers"] = [values["retrievers"]]
        for name in ("retrievers", "reader_options", "retrieval_options"):  # copies: the caller's stay untouched
            if isinstance(values.get(name), (list, dict)):
                values[name] = type(values[name])(values[name])
        return parse_reader_config(values).validate()

    def config(self) -> dict[str, Any]:
        return dict(self.settings)

    def train(
        self,
        documents: Sequence[Document],
        questions: Sequence[Question],
        output: Path,
        *,
        dev_questions: Sequence[Question] | None = None,
    ) -> list[EpochCheckpoint]:
        output = Path(output)
        config = self.train_config(keep_epochs=True)
        report = train_reader(documents, questions, config, output, dev_questions=dev_questions)
        return [
            EpochCheckpoint(row["epoch"], output / f"epoch-{row['epoch']}", float(row["metric"]), float(row["loss"]))
            for row in report["epochs"]
        ]


class ExtractiveTrainer(TransformerReaderTrainer):
    """Trains an ``extractive`` (span) reader."""

    name = "extractive"


class GenerativeTrainer(TransformerReaderTrainer):
    """Trains a ``generative`` (seq2seq) reader."""

    name = "generative"
