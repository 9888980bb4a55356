"""The ``dpr`` trainer (what ``odqa sweep`` trains with), ``keep_epochs`` and single-fold training, also through
``odqa train dpr --keep-epochs --fold N`` — micro bootstrap BERT on the bundled sample."""

from __future__ import annotations

import dataclasses
import json

import pytest
from dense_testdata import assert_same_weights, question_rows, write_jsonl
from odqa_dense.encoder import BiEncoder
from odqa_dense.trainers import DPRTrainer
from odqa_dense.training import TrainConfig
from odqa_transformers.loop import group_folds
from odqa_transformers.testing import BAD_FOLD_ARGUMENTS, assert_bad_fold_is_a_usage_error

from odqa_core import EpochCheckpoint, Trainer, UsageError, data, plugins
from odqa_core.storage import open_store
from odqa_core.testing import run_cli

#: Settings as a TOML grid cell gives them (lists, not tuples): micro BERT, short inputs, mean pooling.
SETTINGS = {
    "bootstrap_size": "micro",
    "vocab_size": 1000,
    "passage_max_length": 64,
    "query_max_length": 32,
    "eval_ks": [1, 5, 20],
    "device": "cpu",
    "pooling": "mean",
    "lr": 3e-3,
    "batch_size": 16,
    "select": "mrr@10",
    "ict_epochs": 0,
}


@pytest.fixture(scope="module")
def train_questions():
    return data.load_questions(data.sample_train_questions_path())[:90]


def make(**overrides):
    return plugins.create("trainer", "dpr", {**SETTINGS, **overrides})


# --- creation -------------------------------------------------------------------------------------------------------


def test_created_from_the_registry():
    trainer = make(epochs=2)
    assert isinstance(trainer, Trainer) and isinstance(trainer, DPRTrainer)
    assert (trainer.kind, trainer.name, trainer.stage) == ("trainer", "dpr", "retriever")
    assert (trainer.model_option, trainer.epochs_option) == ("model", "epochs")
    assert trainer.config() == {**SETTINGS, "epochs": 2}
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    assert DPRTrainer.option_names() == [name for name in fields if name != "keep_epochs"]


def test_unknown_setting_is_a_usage_error_naming_it():
    with pytest.raises(UsageError, match="'hard_negativez'.*valid options: .*hard_negatives"):
        make(hard_negativez=2)
    with pytest.raises(UsageError, match="'keep_epochs'"):  # a trainer always keeps every epoch
        make(keep_epochs=True)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"fold": 6, "folds": 5}, "^fold 6 is out of range for folds 5$"),
        ({"fold": 0, "folds": 5}, "fold 0 is out of range"),
        ({"fold": 1}, "fold 1 needs a k-fold run"),
        ({"fold": "2", "folds": 3}, "fold must be an integer"),
        ({"folds": 3}, "folds 3 needs a fold"),
        ({"eval_ks": ["1", 5]}, "eval-ks"),
        ({"select": "f1@3"}, "select"),
        ({"bootstrap_size": "huge"}, "bootstrap size"),
        ({"encoders": "twin"}, "encoders must be one of shared, separate, shared-heads"),
        ({"head_lr": 1e-3}, "head-lr applies to encoders=shared-heads only"),
    ],
)
def test_bad_value_fails_at_creation(overrides, match):
    with pytest.raises(UsageError, match=match):
        make(**overrides)


def test_shared_heads_and_head_lr_are_trainer_settings():
    """A sweep axis ``train.dpr.encoders`` may take shared-heads, and ``train.dpr.head_lr`` its heads' rate."""
    trainer = make(encoders="shared-heads", head_lr=1e-3)
    config = trainer.train_config()
    assert (config.encoders, config.head_lr) == ("shared-heads", 1e-3)
    assert "head_lr" in DPRTrainer.option_names()


def test_keep_epochs_and_fold_in_the_config():
    assert TrainConfig(keep_epochs=True).digest() == TrainConfig().digest()  # same weights either way
    assert TrainConfig(folds=3, fold=2).digest() != TrainConfig(folds=3, fold=1).digest()
    with pytest.raises(UsageError, match="keep-epochs"):
        TrainConfig(keep_epochs="yes").validate()


# --- training -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_documents, train_questions):
    """Two supervised epochs after one ICT epoch; no dev questions (a held-out share selects)."""
    output = tmp_path_factory.mktemp("trainer") / "dpr"
    checkpoints = make(epochs=2, ict_epochs=1, seed=0).train(sample_documents, train_questions, output)
    return checkpoints, output


def test_train_returns_a_checkpoint_per_epoch(trained):
    checkpoints, output = trained
    report = json.loads((output / "report.json").read_text())
    assert all(isinstance(c, EpochCheckpoint) for c in checkpoints)
    assert [c.epoch for c in checkpoints] == [1, 2]
    assert [c.path for c in checkpoints] == [output / "epoch-1", output / "epoch-2"]
    assert [c.dev_metric for c in checkpoints] == [row["metric"] for row in report["epochs"]]
    assert [c.loss for c in checkpoints] == [row["loss"] for row in report["epochs"]]
    assert all(type(c.dev_metric) is float and type(c.loss) is float for c in checkpoints)
    assert report["config"]["keep_epochs"] is True
    for c in checkpoints:
        store = open_store(c.path, kind="checkpoint", name="dpr")
        assert store.params["epoch"] == c.epoch and store.params["dev_metric"] == c.dev_metric
        assert not any(name.startswith("training_state") for name in store.manifest["files"])
        encoder = BiEncoder.load(str(c.path))
        assert encoder.pooling == "mean" and encoder.encode(["부산"], "question", 16, desc="").shape == (1, 32)
    assert_same_weights(output / "best", output / f"epoch-{report['best']['epoch']}")
    assert_same_weights(output / "last", output / "epoch-2")


def test_ict_pretraining_keeps_no_epochs(trained):
    _, output = trained
    assert sorted(p.name for p in output.iterdir()) == ["best", "epoch-1", "epoch-2", "ict", "last", "report.json"]
    assert sorted(p.name for p in (output / "ict").iterdir()) == ["best", "last", "report.json"]
    ict = json.loads((output / "ict" / "report.json").read_text())
    assert ict["config"]["keep_epochs"] is False and [row["epoch"] for row in ict["epochs"]] == [1]


def test_training_one_fold(sample_documents, train_questions, tmp_path):
    trainer = make(epochs=1, folds=3, fold=2, seed=1)
    dev = data.load_questions(data.sample_questions_path())[:10]
    checkpoints = trainer.train(sample_documents, train_questions, tmp_path, dev_questions=dev)
    assert [(c.epoch, c.path) for c in checkpoints] == [(1, tmp_path / "epoch-1")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "epoch-1", "last", "report.json"]
    report = json.loads((tmp_path / "report.json").read_text())
    held = group_folds(train_questions, 3, 1)[1]
    assert report["n_dev"] == len(held) and report["n_test"] == len(dev)
    assert report["n_train"] + report["skipped_train"] + len(held) == len(train_questions)
    assert report["config"]["fold"] == 2 and report["done"] is True
    assert set(report["epochs"][0]["test"]) == {"doc", "answer"}  # dev_questions are reported as test
    assert report["epochs"][0]["metric"] == checkpoints[0].dev_metric


# --- command line ---------------------------------------------------------------------------------------------------


def test_train_dpr_keep_epochs_and_fold(train_questions, tmp_path):
    questions = write_jsonl(tmp_path / "train.jsonl", question_rows(train_questions))
    output = tmp_path / "out"
    result = run_cli(
        f"train dpr --questions {questions} --bootstrap micro --vocab-size 1000 --epochs 2 --pooling mean "
        "--lr 3e-3 --passage-max-length 64 --query-max-length 32 --device cpu --eval-k 1,5,20 --ict-epochs 0 "
        f"--folds 3 --fold 3 --keep-epochs --output {output}"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in output.iterdir()) == ["best", "epoch-1", "epoch-2", "last", "report.json"]
    report = json.loads((output / "report.json").read_text())
    assert report["n_dev"] == len(group_folds(train_questions, 3, 42)[2])
    assert open_store(output / "epoch-1", kind="checkpoint", name="dpr").params["epoch"] == 1
    help_text = run_cli("train dpr --help").output
    assert "--keep-epochs" in help_text and "--fold INTEGER" in help_text


@pytest.mark.parametrize(("arguments", "contains"), BAD_FOLD_ARGUMENTS)
def test_train_dpr_bad_fold_is_a_usage_error(arguments, contains, tmp_path):
    assert_bad_fold_is_a_usage_error("train dpr", arguments, contains, tmp_path / "out")
