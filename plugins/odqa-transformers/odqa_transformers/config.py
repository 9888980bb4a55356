"""Training configs and the trainers made of them.

:class:`TrainingConfig` holds what every odqa training run has — the model to start from (or the offline
bootstrap's size and vocabulary), the schedule, the batch, the device, the folds — and checks it; the dense
retriever's ``TrainConfig`` and the readers' ``ReaderTrainConfig`` add their own fields and checks.

:class:`ConfigTrainer` is an :class:`odqa_core.interfaces.Trainer` (what ``odqa sweep`` trains with) whose options
are the fields of such a config. Creating one validates its settings (one-line usage errors) and imports no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from odqa_core.errors import UsageError
from odqa_core.interfaces import EpochCheckpoint, Trainer
from odqa_core.types import Document, Question

#: ``keep_folds``: the best fold's checkpoints only, or every fold's.
KEEP_FOLDS = ("best", "all")


@dataclass
class TrainingConfig:
    """The settings every odqa training run has (``odqa train dpr --help`` / ``odqa train reader --help``)."""

    #: Learning rates used when ``lr`` is None: fine-tuning a pretrained ``model`` vs. training a bootstrap one.
    default_lr_pretrained: ClassVar[float]
    default_lr_bootstrap: ClassVar[float]

    #: A HuggingFace model or an odqa checkpoint to start from; None: the offline bootstrap.
    model: str | None = None
    #: Without ``model``: the size of the bootstrap model (:data:`odqa_transformers.bootstrap.BERT_SIZES`) and of
    #: the WordPiece vocabulary learned from the corpus.
    bootstrap_size: str = "tiny"
    vocab_size: int = 16000
    epochs: int = 3
    lr: float | None = None
    #: A fraction of the steps (below 1) or a step count.
    warmup: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 16
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"
    folds: int = 1
    keep_folds: str = "best"
    dev_fraction: float = 0.1
    #: Also save every epoch's checkpoint as ``epoch-N/`` (``best/`` as always).
    keep_epochs: bool = False
    #: With ``folds > 1``: train only this fold (1-based), directly into the output directory.
    fold: int | None = None

    @property
    def learning_rate(self) -> float:
        """``lr``, else the default for a pretrained model or a bootstrap one."""
        if self.lr is not None:
            return self.lr
        return self.default_lr_pretrained if self.model else self.default_lr_bootstrap

    def check_common(self, positive: Sequence[str] = ()) -> None:
        """What every training config must satisfy: positive counts (epochs, batch size, gradient accumulation,
        folds, vocabulary size and the fields named in ``positive``), a positive learning rate, a warmup fraction
        or step count, a known ``keep_folds``, a dev fraction within 0-1, a boolean ``keep_epochs``, a ``fold``
        (when set) within ``1..folds`` of a k-fold run, and a known bootstrap size when there is no ``model``.
        One-line usage errors."""
        for name in ("epochs", "batch_size", "grad_accum", "folds", "vocab_size", *positive):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.keep_epochs, bool):
            raise UsageError(f"keep-epochs must be true or false, got {self.keep_epochs!r}")
        fold = self.fold
        if fold is not None:
            if isinstance(fold, bool) or not isinstance(fold, int):
                raise UsageError(f"fold must be an integer, got {fold!r}")
            if self.folds < 2:
                raise UsageError(f"fold {fold} needs a k-fold run (folds of 2 or more), got folds {self.folds}")
            if not 1 <= fold <= self.folds:
                raise UsageError(f"fold {fold} is out of range for folds {self.folds}")
        if self.lr is not None and not self.lr > 0:
            raise UsageError(f"learning rate must be positive, got {self.lr}")
        if not self.warmup >= 0:
            raise UsageError(f"warmup must be a fraction of the steps (0-1) or a step count, got {self.warmup}")
        if self.keep_folds not in KEEP_FOLDS:
            raise UsageError(f"keep-folds must be one of {', '.join(KEEP_FOLDS)}, got {self.keep_folds!r}")
        if not 0 < self.dev_fraction < 1:
            raise UsageError(f"dev fraction must be between 0 and 1, got {self.dev_fraction}")
        if self.model is None:
            from odqa_transformers.bootstrap import bert_size

            bert_size(self.bootstrap_size)

    def to_json(self) -> dict[str, Any]:
        """Every field (tuples as lists, as JSON has them) and the ``learning_rate`` in effect."""
        fields = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        return {**fields, "learning_rate": self.learning_rate}


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
