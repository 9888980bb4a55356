"""The ``dpr`` trainer: :func:`odqa_dense.training.train_dpr` as an :class:`odqa_core.interfaces.Trainer`.

``odqa sweep`` creates one per grid cell with training settings by :class:`~odqa_dense.training.TrainConfig` field
name (``epochs``, ``lr``, ``hard_negatives``, ``fold``, ...), calls :meth:`DPRTrainer.train` and hands the chosen
epoch's checkpoint to the ``dpr`` retriever's ``model`` option. Every epoch's checkpoint is kept (``epoch-N/``).
With ``folds > 1`` a trainer trains the one ``fold`` it is given (its held-out questions select the epochs).

Creating a trainer validates its settings (one-line usage errors) and imports no torch; training does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from odqa_core.errors import UsageError
from odqa_core.interfaces import EpochCheckpoint, Trainer
from odqa_core.types import Document, Question
from odqa_dense.training import TrainConfig, train_dpr

#: TrainConfig fields that are tuples (TOML and JSON give lists).
_TUPLES = ("eval_ks",)


def check_one_model(folds: int, fold: int | None) -> None:
    """A trainer trains one model: with ``folds > 1`` it needs the ``fold`` to train (a one-line usage error)."""
    if folds > 1 and fold is None:
        raise UsageError(f"folds {folds} needs a fold (1-{folds}): a trainer trains one fold's model")


class ConfigTrainer(Trainer):
    """A trainer whose options are the fields of a training-config dataclass (less :attr:`not_options`), run by a
    training function that keeps every epoch's checkpoint as ``epoch-N/`` and reports each epoch's dev metric.

    Subclasses set :attr:`config_class` and implement :meth:`train_config` and :meth:`run_training`.
    """

    config_class: ClassVar[type]
    #: Config fields a trainer does not take: it always keeps every epoch.
    not_options: ClassVar[tuple[str, ...]] = ("keep_epochs",)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.config_class) if f.name not in cls.not_options]

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self.option_names()))
        if unknown:  # from_options reports these first; this guards direct construction
            raise UsageError(f"unknown {self.name} training setting(s) {', '.join(unknown)}")
        self.settings = dict(settings)
        config = self.train_config()  # a bad value fails now, with the config's one-line usage error
        check_one_model(config.folds, config.fold)

    def train_config(self, **overrides: Any) -> Any:
        """A validated config of the settings and ``overrides`` (a fresh one each call)."""
        raise NotImplementedError

    def run_training(
        self, documents: Sequence[Document], questions: Sequence[Question], config: Any, output: Path, dev_questions
    ) -> dict[str, Any]:
        """Train with ``config`` into ``output``; the report, whose ``epochs`` rows have epoch, metric and loss."""
        raise NotImplementedError

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
        report = self.run_training(documents, questions, self.train_config(keep_epochs=True), output, dev_questions)
        return [
            EpochCheckpoint(row["epoch"], output / f"epoch-{row['epoch']}", float(row["metric"]), float(row["loss"]))
            for row in report["epochs"]
        ]


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
