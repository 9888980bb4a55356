"""The training-config base (what every training run has, its checks and learning-rate defaults) and the trainer
whose options are a config's fields — with a small config of its own, as a third plugin would write one."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
from odqa_transformers.config import ConfigTrainer, TrainingConfig

from odqa_core import EpochCheckpoint, UsageError


@dataclass
class ToyConfig(TrainingConfig):
    default_lr_pretrained = 1e-5
    default_lr_bootstrap = 1e-3

    depth: int = 2
    ks: tuple[int, ...] = (1, 5)

    def validate(self) -> ToyConfig:
        self.check_common(("depth",))
        return self


class ToyTrainer(ConfigTrainer):
    name = "toy"
    stage = "reader"
    config_class = ToyConfig

    def train_config(self, **overrides):
        return ToyConfig(**{**self.settings, **overrides}).validate()

    def run_training(self, documents, questions, config, output, dev_questions):
        assert config.keep_epochs  # a trainer keeps every epoch for the sweep to choose from
        rows = [{"epoch": e, "metric": e / 10, "loss": 1 / e} for e in range(1, config.epochs + 1)]
        return {"epochs": rows}


def test_the_learning_rate_defaults_to_the_pretrained_or_the_bootstrap_rate():
    assert ToyConfig().learning_rate == 1e-3
    assert ToyConfig(model="klue/bert-base").learning_rate == 1e-5
    assert ToyConfig(model="klue/bert-base", lr=3e-4).learning_rate == 3e-4


def test_to_json_has_every_field_and_the_rate_in_effect():
    out = ToyConfig(ks=(1, 20)).to_json()
    assert out["ks"] == [1, 20] and out["learning_rate"] == 1e-3
    assert set(out) == {f.name for f in dataclasses.fields(ToyConfig)} | {"learning_rate"}
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"batch_size": True}, "batch-size must be a positive integer, got True"),
        ({"depth": 0}, "depth must be a positive integer, got 0"),  # the subclass's own count
        ({"lr": -1.0}, "learning rate must be positive"),
        ({"warmup": -0.5}, "warmup must be a fraction"),
        ({"keep_folds": "some"}, "keep-folds must be one of best, all"),
        ({"dev_fraction": 1.0}, "dev fraction must be between 0 and 1"),
        ({"keep_epochs": "yes"}, "keep-epochs must be true or false"),
        ({"fold": 2}, "fold 2 needs a k-fold run"),
        ({"folds": 3, "fold": 4}, "fold 4 is out of range for folds 3"),
        ({"bootstrap_size": "huge"}, "unknown bootstrap size 'huge'"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(overrides, message):
    with pytest.raises(UsageError, match=message) as info:
        ToyConfig(**overrides).validate()
    assert "\n" not in str(info.value)


def test_a_model_needs_no_bootstrap_size():
    ToyConfig(model="somewhere", bootstrap_size="huge").validate()


def test_the_trainer_takes_the_config_fields_as_options():
    assert "keep_epochs" not in ToyTrainer.option_names()
    assert {"epochs", "depth", "ks", "fold"} <= set(ToyTrainer.option_names())
    with pytest.raises(UsageError, match="unknown toy training setting"):
        ToyTrainer(depths=3)
    with pytest.raises(UsageError, match="epochs must be a positive integer"):
        ToyTrainer(epochs=0)
    with pytest.raises(UsageError, match="folds 3 needs a fold"):
        ToyTrainer(folds=3)
    assert ToyTrainer(folds=3, fold=2, depth=4).config() == {"folds": 3, "fold": 2, "depth": 4}


def test_training_gives_every_epochs_checkpoint(tmp_path):
    checkpoints = ToyTrainer(epochs=2).train([], [], tmp_path)
    assert checkpoints == [
        EpochCheckpoint(1, tmp_path / "epoch-1", 0.1, 1.0),
        EpochCheckpoint(2, tmp_path / "epoch-2", 0.2, 0.5),
    ]
