"""The ``extractive`` and ``generative`` trainers (what ``odqa sweep`` trains with), ``keep_epochs`` and single-fold
training, also through ``odqa train reader --keep-epochs --fold N`` — micro bootstrap models on the bundled sample."""

from __future__ import annotations

import dataclasses
import json

import pytest
from odqa_readers.trainers import ExtractiveTrainer, GenerativeTrainer, TransformerReaderTrainer
from odqa_readers.training import ReaderTrainConfig
from odqa_transformers.loop import group_folds
from odqa_transformers.testing import BAD_FOLD_ARGUMENTS, assert_bad_fold_is_a_usage_error
from reader_testdata import train_micro_reader

from odqa_core import EpochCheckpoint, Trainer, UsageError, plugins
from odqa_core.storage import open_store
from odqa_core.testing import run_cli

#: Settings as a TOML grid cell gives them: micro models, small windows.
SETTINGS = {
    "bootstrap_size": "micro",
    "vocab_size": 600,
    "batch_size": 8,
    "lr": 2e-3,
    "seed": 0,
    "device": "cpu",
    "reader_options": {"max_length": 96, "doc_stride": 32},
}


def make(name="extractive", **overrides):
    return plugins.create("trainer", name, {**SETTINGS, **overrides})


# --- creation -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cls"), [("extractive", ExtractiveTrainer), ("generative", GenerativeTrainer)])
def test_created_from_the_registry(name, cls):
    options = {"mode": "fid", "max_length": 96} if name == "generative" else SETTINGS["reader_options"]
    trainer = make(name, epochs=2, reader_options=options)
    assert isinstance(trainer, Trainer) and isinstance(trainer, TransformerReaderTrainer) and type(trainer) is cls
    assert (trainer.kind, trainer.name, trainer.stage) == ("trainer", name, "reader")
    assert (trainer.model_option, trainer.epochs_option) == ("model", "epochs")
    assert trainer.config() == {**SETTINGS, "epochs": 2, "reader_options": options}
    assert trainer.train_config().reader == name  # the reader is the trainer's name
    fields = [f.name for f in dataclasses.fields(ReaderTrainConfig)]
    assert cls.option_names() == [f for f in fields if f not in ("reader", "keep_epochs")]


@pytest.mark.parametrize("option", ["reader", "keep_epochs", "epochz"])
def test_unknown_setting_is_a_usage_error_naming_it(option):
    with pytest.raises(UsageError, match=f"'{option}'.*valid options: .*epochs"):
        make(**{option: 1})


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"fold": 6, "folds": 5}, "^fold 6 is out of range for folds 5$"),
        ({"fold": 1}, "fold 1 needs a k-fold run"),
        ({"folds": 2}, "folds 2 needs a fold"),
        ({"select": "acc"}, "select must be one of"),
        ({"reader_options": {"bogus": 1}}, "unknown option 'bogus'"),
        ({"reader_options": {"mode": "fid"}}, "unknown option 'mode'"),  # a generative option, not extractive's
    ],
)
def test_bad_value_fails_at_creation(overrides, match):
    with pytest.raises(UsageError, match=match):
        make(**overrides)


def test_settings_are_not_changed_by_the_trainer():
    settings = {**SETTINGS, "retrievers": ["bm25"], "reader_options": {"max_length": 96}}
    trainer = plugins.create("trainer", "extractive", settings)
    trainer.train_config().reader_options["max_length"] = 1
    assert settings["reader_options"] == {"max_length": 96} and trainer.config() == settings


# --- training -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    documents, train, evaluation = sample
    output = tmp_path_factory.mktemp("trainer") / "extractive"
    checkpoints = make(epochs=2).train(documents, train[:40], output, dev_questions=evaluation[:10])
    return checkpoints, output


def test_train_returns_a_checkpoint_per_epoch(trained, sample):
    from odqa_readers.base import gold_results

    documents, _, evaluation = sample
    checkpoints, output = trained
    report = json.loads((output / "report.json").read_text())
    assert all(isinstance(c, EpochCheckpoint) for c in checkpoints)
    assert [(c.epoch, c.path) for c in checkpoints] == [(1, output / "epoch-1"), (2, output / "epoch-2")]
    assert [c.dev_metric for c in checkpoints] == [row["metric"] for row in report["epochs"]]
    assert [c.loss for c in checkpoints] == [row["loss"] for row in report["epochs"]]
    assert all(type(c.dev_metric) is float and type(c.loss) is float for c in checkpoints)
    assert sorted(p.name for p in output.iterdir()) == ["best", "epoch-1", "epoch-2", "report.json"]
    assert report["config"]["keep_epochs"] is True and report["config"]["reader"] == "extractive"
    for c in checkpoints:
        manifest = open_store(c.path, kind="checkpoint", name="extractive").manifest
        assert manifest["params"]["epoch"] == c.epoch and manifest["config"]["max_length"] == 96
        reader = plugins.create("reader", "extractive", {"model": str(c.path), "device": "cpu"})
        reader.warm_up()
        preds = reader.read(evaluation[:2], gold_results(evaluation[:2], documents), n_best=1)
        assert len(preds) == 2
    best = open_store(output / "best").manifest["files"]["model.safetensors"]
    same = open_store(output / f"epoch-{report['best']['epoch']}").manifest["files"]["model.safetensors"]
    assert best == same


def test_generative_trainer_trains_a_generative_reader(sample, tmp_path):
    documents, train, _ = sample
    options = {"mode": "fid", "max_length": 96, "chunk_stride": 24, "max_answer_length": 6}
    trainer = make("generative", epochs=1, reader_options=options)
    (checkpoint,) = trainer.train(documents, train[6:24], tmp_path / "g", dev_questions=train[:6])
    assert checkpoint.epoch == 1 and checkpoint.path == tmp_path / "g" / "epoch-1"
    reader = plugins.create("reader", "generative", {"model": str(checkpoint.path), "device": "cpu"})
    reader.warm_up()
    assert (reader.mode, reader.max_length) == ("fid", 96)


def test_training_one_fold(sample, tmp_path):
    documents, train, evaluation = sample
    questions = train[:30]
    checkpoints = make(epochs=1, folds=3, fold=2).train(documents, questions, tmp_path, dev_questions=evaluation[:5])
    assert [(c.epoch, c.path) for c in checkpoints] == [(1, tmp_path / "epoch-1")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "epoch-1", "report.json"]
    report = json.loads((tmp_path / "report.json").read_text())
    held = group_folds([q for q in questions if q.answers], 3, SETTINGS["seed"])[1]
    assert report["n_dev"] == len(held) and report["n_test"] == 5 and "test" in report["epochs"][0]
    assert report["config"]["fold"] == 2 and report["done"] is True


# --- command line ---------------------------------------------------------------------------------------------------


def test_train_reader_keep_epochs_and_fold(sample, tmp_path):
    rows = sample[1][:30]
    result, out, _ = train_micro_reader(tmp_path, rows, epochs=2, extra="--folds 3 --fold 1 --keep-epochs")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["best", "epoch-1", "epoch-2", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["n_dev"] == len(group_folds([q for q in rows if q.answers], 3, 42)[0])
    assert [row["epoch"] for row in report["epochs"]] == [1, 2]
    help_text = run_cli("train reader --help").output
    assert "--keep-epochs" in help_text and "--fold INTEGER" in help_text


@pytest.mark.parametrize(("arguments", "contains"), BAD_FOLD_ARGUMENTS)
def test_train_reader_bad_fold_is_a_usage_error(arguments, contains, tmp_path):
    assert_bad_fold_is_a_usage_error("train reader", arguments, contains, tmp_path / "o")
