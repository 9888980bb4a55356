"""DPR training on the bundled sample, micro bootstrap BERT: learning, reproducibility, resume, examples, folds."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from dense_testdata import FAST_TRAINING, assert_same_weights, weights
from odqa_dense.encoder import BiEncoder
from odqa_dense.retriever import DPRRetriever
from odqa_dense.training import TrainConfig, build_examples, ict_examples, train_dpr

from odqa_core import DataError, Question, UsageError
from odqa_core.evaluation import evaluate_retrieval, hits_from_results, normalize_for_match
from odqa_core.storage import open_store

# Mean pooling: an untrained BERT gives (almost) the same [CLS] vector for every text, and at the micro size cls
# pooling does not get past that in a few epochs (the loss stays at log(#candidates)); mean pooling learns at once.
# ICT off: these tests look at the supervised trainer; the ICT tests below turn it on.
BASE = {**FAST_TRAINING, "pooling": "mean", "lr": 3e-3, "batch_size": 16, "select": "mrr@10", "ict_epochs": 0}


def config(**overrides):
    return TrainConfig(**{**BASE, **overrides})


def quiet(message):
    pass


class Stop(Exception):
    """Raised from on_epoch to simulate a run killed after an epoch's evaluation, before its checkpoint."""


def stop_at(epoch):
    def on_epoch(fold, e, encoder):
        if e == epoch:
            raise Stop(f"stopped in epoch {e}")

    return on_epoch


def contains_answer(text, answers):
    return any(a and normalize_for_match(a) in normalize_for_match(text) for a in answers)


# --- learning -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def learned(tmp_path_factory, sample_documents, sample_questions):
    """6 epochs on the sample; dev = the training questions, so memorisation shows in the dev metric."""
    output = tmp_path_factory.mktemp("train") / "learned"
    report = train_dpr(
        sample_documents,
        sample_questions,
        config(epochs=6, seed=0),
        output,
        dev_questions=sample_questions,
        echo=quiet,
    )
    return report, output


def test_training_learns(learned):
    report, _ = learned
    losses = [row["loss"] for row in report["epochs"]]
    metrics = [row["metric"] for row in report["epochs"]]
    assert losses[-1] < losses[0], losses
    assert metrics[-1] > metrics[0] + 0.2, metrics
    assert report["epochs"][-1]["dev"]["answer"]["acc@1"] > report["epochs"][0]["dev"]["answer"]["acc@1"]


def test_report_and_checkpoints(learned, sample_questions):
    report, output = learned
    assert json.loads((output / "report.json").read_text()) == json.loads(json.dumps(report))
    assert [row["epoch"] for row in report["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert report["done"] is True
    assert report["n_train"] == report["n_dev"] == len(sample_questions) and report["skipped_train"] == 0
    metrics = [row["metric"] for row in report["epochs"]]
    assert report["best"] == {"epoch": int(np.argmax(metrics)) + 1, "metric": max(metrics)}
    assert report["config"]["learning_rate"] == 3e-3 and report["config"]["select"] == "mrr@10"

    best, last = open_store(output / "best", kind="checkpoint", name="dpr"), open_store(output / "last")
    assert best.params["epoch"] == report["best"]["epoch"] and last.params["epoch"] == 6
    assert best.config["pooling"] == "mean" and best.config["base_model"] == "bootstrap:micro"
    assert "training_state.safetensors" in last.manifest["files"]
    assert not any(name.startswith("training_state") for name in best.manifest["files"])
    if report["best"]["epoch"] == 6:
        assert_same_weights(output / "best", output / "last")


def test_best_checkpoint_retrieves_as_evaluated(learned, sample_documents, sample_questions):
    """The dev metric in the report is what an index built from best/ gives."""
    report, output = learned
    retriever = DPRRetriever(
        model=str(output / "best"), device="cpu", passage_max_length=64, query_max_length=32, batch_size=16
    )
    retriever.index(sample_documents)
    results = retriever.search([q.text for q in sample_questions], 20)
    got = evaluate_retrieval(sample_questions, hits_from_results(results), (1, 5, 10, 20)).to_json()["metrics"]
    best_row = report["epochs"][report["best"]["epoch"] - 1]
    assert got["answer"]["mrr@10"] == pytest.approx(report["best"]["metric"], abs=1e-6)
    assert got["answer"]["acc@5"] == pytest.approx(best_row["dev"]["answer"]["acc@5"], abs=1e-6)


# --- determinism and resume ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def start_model(micro_checkpoint):
    """Start from a saved checkpoint: its tokenizer is loaded, so these tests isolate the trainer."""
    return micro_checkpoint


@pytest.fixture(scope="module")
def run_a(tmp_path_factory, start_model, sample_documents, sample_questions):
    output = tmp_path_factory.mktemp("train") / "a"
    cfg = config(model=start_model, epochs=2, seed=3)
    return train_dpr(sample_documents, sample_questions, cfg, output, echo=quiet), output


def test_same_seed_gives_the_same_weights(run_a, start_model, sample_documents, sample_questions, tmp_path):
    report_a, a = run_a
    report = train_dpr(
        sample_documents, sample_questions, config(model=start_model, epochs=2, seed=3), tmp_path / "b", echo=quiet
    )
    assert [r["loss"] for r in report["epochs"]] == [r["loss"] for r in report_a["epochs"]]
    assert [r["metric"] for r in report["epochs"]] == [r["metric"] for r in report_a["epochs"]]
    assert_same_weights(a / "last", tmp_path / "b" / "last")
    assert_same_weights(a / "best", tmp_path / "b" / "best")


def test_another_seed_gives_other_weights(run_a, start_model, sample_documents, sample_questions, tmp_path):
    report_a, a = run_a
    report = train_dpr(
        sample_documents, sample_questions, config(model=start_model, epochs=2, seed=4), tmp_path / "b", echo=quiet
    )
    assert [r["loss"] for r in report["epochs"]] != [r["loss"] for r in report_a["epochs"]]
    with pytest.raises(AssertionError, match="differs"):
        assert_same_weights(a / "last", tmp_path / "b" / "last")


def test_resume_ends_with_the_uninterrupted_weights(run_a, start_model, sample_documents, sample_questions, tmp_path):
    report_a, a = run_a
    cfg = config(model=start_model, epochs=2, seed=3)
    b = tmp_path / "b"
    with pytest.raises(Stop):
        train_dpr(sample_documents, sample_questions, cfg, b, echo=quiet, on_epoch=stop_at(2))
    stopped = json.loads((b / "report.json").read_text())
    assert [r["epoch"] for r in stopped["epochs"]] == [1] and stopped["done"] is False
    assert open_store(b / "last").params["epoch"] == 1

    messages = []
    report = train_dpr(
        sample_documents,
        sample_questions,
        config(model=start_model, epochs=2, seed=3),
        b,
        resume=True,
        echo=messages.append,
    )
    assert any("resuming" in m and "after epoch 1" in m for m in messages), messages
    assert [r["loss"] for r in report["epochs"]] == [r["loss"] for r in report_a["epochs"]]
    assert report["best"] == report_a["best"] and report["done"] is True
    assert_same_weights(a / "last", b / "last")
    assert_same_weights(a / "best", b / "best")


def _dead_pid():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_resume_after_a_crash_between_the_renames_of_last(
    run_a, start_model, sample_documents, sample_questions, tmp_path
):
    """Killed after last/ moved aside and before the new last/ moved in: resume from the one moved aside."""
    report_a, a = run_a
    cfg = config(model=start_model, epochs=2, seed=3)
    b = tmp_path / "b"
    with pytest.raises(Stop):
        train_dpr(sample_documents, sample_questions, cfg, b, echo=quiet, on_epoch=stop_at(2))
    (b / "last").rename(b / f".last.old-{_dead_pid()}-0123abcd")
    messages = []
    report = train_dpr(sample_documents, sample_questions, cfg, b, resume=True, echo=messages.append)
    assert any(m.startswith(f"restored {b / 'last'}") for m in messages), messages
    assert any("resuming" in m and "after epoch 1" in m for m in messages), messages
    assert [r["loss"] for r in report["epochs"]] == [r["loss"] for r in report_a["epochs"]]
    assert_same_weights(a / "last", b / "last")
    assert not list(b.glob(".last*"))


def test_resume_names_a_moved_aside_checkpoint_it_cannot_claim(
    run_a, start_model, sample_documents, sample_questions, tmp_path
):
    """An older odqa named it without its pid, so whether its writer is gone is unknown: say so, never start over."""
    import shutil

    _, a = run_a
    shutil.copytree(a / "last", tmp_path / ".last.old-0123abcd")
    with pytest.raises(UsageError, match=r"last is missing, but .*\.last\.old-0123abcd holds the checkpoint"):
        train_dpr(
            sample_documents,
            sample_questions,
            config(model=start_model, epochs=2, seed=3),
            tmp_path,
            resume=True,
            echo=quiet,
        )


def test_resuming_a_finished_run_changes_nothing(run_a, start_model, sample_documents, sample_questions, tmp_path):
    import shutil

    report_a, a = run_a
    copy = shutil.copytree(a, tmp_path / "copy")
    before = weights(copy / "last")
    report = train_dpr(
        sample_documents, sample_questions, config(model=start_model, epochs=2, seed=3), copy, resume=True, echo=quiet
    )
    assert report["epochs"] == report_a["epochs"] and report["done"] is True
    after = weights(copy / "last")
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


def test_resume_with_other_settings_is_a_usage_error(run_a, start_model, sample_documents, sample_questions):
    _, a = run_a
    with pytest.raises(UsageError, match="other settings"):
        train_dpr(
            sample_documents,
            sample_questions,
            config(model=start_model, epochs=2, seed=3, lr=1e-3),
            a,
            resume=True,
            echo=quiet,
        )


def test_output_that_is_not_empty_needs_resume(run_a, start_model, sample_documents, sample_questions, tmp_path):
    _, a = run_a
    with pytest.raises(UsageError, match="not empty"):
        train_dpr(sample_documents, sample_questions, config(model=start_model, epochs=2, seed=3), a, echo=quiet)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        train_dpr(sample_documents, sample_questions, config(epochs=1), tmp_path / "file", echo=quiet)


def test_separate_encoders_train_and_resume(start_model, sample_documents, sample_questions, tmp_path):
    cfg = {"model": start_model, "encoders": "separate", "epochs": 2, "seed": 7}
    full = train_dpr(sample_documents, sample_questions, config(**cfg), tmp_path / "full", echo=quiet)
    names = {p.name for p in (tmp_path / "full" / "last").iterdir()}
    assert {"question_encoder.safetensors", "passage_encoder.safetensors"} <= names
    assert "encoder.safetensors" not in names
    encoder = assert_the_sides_encode_differently(tmp_path / "full" / "best", sample_questions)
    assert encoder.encoders == "separate"
    assert_a_stopped_run_resumes_to_the_same(
        sample_documents, sample_questions, cfg, full, tmp_path / "full", tmp_path / "r"
    )


def assert_the_sides_encode_differently(checkpoint, questions):
    encoder = BiEncoder.load(str(checkpoint))
    texts = [q.text for q in questions[:5]]
    assert not np.allclose(
        encoder.encode(texts, "question", 32, desc=""), encoder.encode(texts, "passage", 32, desc="")
    )
    return encoder


def assert_a_stopped_run_resumes_to_the_same(documents, questions, cfg, full, full_output, output):
    """A run of ``cfg`` stopped after epoch 2, then resumed, in ``output``: the losses and last weights of the
    uninterrupted run ``full`` (its report) in ``full_output``."""
    with pytest.raises(Stop):
        train_dpr(documents, questions, config(**cfg), output, echo=quiet, on_epoch=stop_at(2))
    resumed = train_dpr(documents, questions, config(**cfg), output, resume=True, echo=quiet)
    assert [r["loss"] for r in resumed["epochs"]] == [r["loss"] for r in full["epochs"]]
    assert_same_weights(full_output / "last", output / "last")  # heads.safetensors included, where there are


def head_weights(checkpoint):
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "heads.safetensors"))


def distance_from_identity(heads, side):
    import torch

    weight, bias = heads[f"{side}.weight"], heads[f"{side}.bias"]
    return float((weight - torch.eye(weight.shape[0])).abs().max()), float(bias.abs().max())


def test_shared_heads_train_both_heads_and_resume(start_model, sample_documents, sample_questions, tmp_path):
    cfg = {"model": start_model, "encoders": "shared-heads", "epochs": 2, "seed": 7}
    full = train_dpr(sample_documents, sample_questions, config(**cfg), tmp_path / "full", echo=quiet)
    last = tmp_path / "full" / "last"
    names = {p.name for p in last.iterdir()}
    assert {"encoder.safetensors", "heads.safetensors", "training_state.safetensors"} <= names
    assert not any(name.startswith(("question_", "passage_")) for name in names)
    assert open_store(last).config["encoders"] == "shared-heads"

    heads = head_weights(last)
    for side in ("question", "passage"):  # both heads left the identity they started from
        weight_moved, bias_moved = distance_from_identity(heads, side)
        assert weight_moved > 1e-3 and bias_moved > 1e-3, (side, weight_moved, bias_moved)
    assert not np.array_equal(heads["question.weight"].numpy(), heads["passage.weight"].numpy())
    start, trained = weights(start_model), weights(last)
    assert not np.array_equal(  # the shared encoder trained too
        start["encoder.safetensors:embeddings.word_embeddings.weight"].numpy(),
        trained["encoder.safetensors:embeddings.word_embeddings.weight"].numpy(),
    )
    assert_the_sides_encode_differently(last, sample_questions)
    assert_a_stopped_run_resumes_to_the_same(
        sample_documents, sample_questions, cfg, full, tmp_path / "full", tmp_path / "r"
    )
    assert_same_weights(tmp_path / "full" / "best", tmp_path / "r" / "best")


def test_head_lr_sets_the_heads_rate_only(start_model, sample_documents, sample_questions, tmp_path):
    cfg = config(model=start_model, encoders="shared-heads", epochs=1, seed=7, head_lr=1e-9)
    report = train_dpr(sample_documents, sample_questions, cfg, tmp_path, echo=quiet)
    assert report["config"]["head_lr"] == 1e-9 and report["config"]["learning_rate"] == 3e-3
    heads = head_weights(tmp_path / "last")
    for side in ("question", "passage"):  # a dozen steps of at most ~1e-9 each: still the identity
        assert max(distance_from_identity(heads, side)) < 1e-6
    start, trained = weights(start_model), weights(tmp_path / "last")
    name = "encoder.safetensors:embeddings.word_embeddings.weight"
    assert np.abs(start[name].numpy() - trained[name].numpy()).max() > 1e-3  # the encoder at the full rate


def test_resume_with_another_head_lr_is_a_usage_error(start_model, sample_documents, sample_questions, tmp_path):
    cfg = {"model": start_model, "encoders": "shared-heads", "epochs": 2, "seed": 7}
    with pytest.raises(Stop):
        train_dpr(sample_documents, sample_questions, config(**cfg), tmp_path, echo=quiet, on_epoch=stop_at(2))
    with pytest.raises(UsageError, match="other settings"):
        train_dpr(sample_documents, sample_questions, config(**cfg, head_lr=1e-2), tmp_path, resume=True, echo=quiet)


def test_train_from_a_huggingface_directory(hf_model_dir, sample_documents, sample_questions, tmp_path):
    report = train_dpr(
        sample_documents, sample_questions, config(model=hf_model_dir, epochs=1), tmp_path / "out", echo=quiet
    )
    assert report["config"]["model"] == hf_model_dir and report["done"] is True
    best = open_store(tmp_path / "out" / "best")
    assert best.config["base_model"] == hf_model_dir and best.config["pooling"] == "mean"


def test_checkpoint_pooling_cannot_change(start_model, sample_documents, sample_questions, tmp_path):
    with pytest.raises(UsageError, match="trained with pooling 'mean', not 'cls'"):
        train_dpr(sample_documents, sample_questions, config(model=start_model, pooling="cls"), tmp_path, echo=quiet)


def test_same_seed_gives_the_same_weights_with_the_bootstrap(sample_documents, sample_questions, tmp_path):
    for name in ("a", "b"):
        train_dpr(sample_documents, sample_questions, config(epochs=1, seed=5), tmp_path / name, echo=quiet)
    assert_same_weights(tmp_path / "a" / "last", tmp_path / "b" / "last")
    vocab = [json.loads((tmp_path / n / "last" / "tokenizer.json").read_text())["model"]["vocab"] for n in "ab"]
    assert vocab[0] == vocab[1]


def test_resume_keeps_the_bootstrap_tokenizer(sample_documents, sample_questions, tmp_path):
    cfg = {"epochs": 2, "seed": 6}
    with pytest.raises(Stop):
        train_dpr(sample_documents, sample_questions, config(**cfg), tmp_path, echo=quiet, on_epoch=stop_at(2))
    trained_with = json.loads((tmp_path / "last" / "tokenizer.json").read_text())["model"]["vocab"]
    train_dpr(sample_documents, sample_questions, config(**cfg), tmp_path, resume=True, echo=quiet)
    saved = json.loads((tmp_path / "last" / "tokenizer.json").read_text())["model"]["vocab"]
    assert saved == trained_with


# --- examples -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hard_negatives", "depth"), [(1, 30), (3, 30), (5, 10)])
def test_examples_positive_and_hard_negatives(sample_documents, sample_questions, hard_negatives, depth):
    cfg = config(hard_negatives=hard_negatives, negative_depth=depth, seed=0).validate()
    examples = build_examples(sample_documents, sample_questions, cfg, echo=quiet)
    assert len(examples) == len(sample_questions) and examples.skipped == 0
    assert examples.negatives.shape == (len(examples), hard_negatives)
    assert examples.source.tolist() == list(range(len(sample_questions)))
    for i, qi in enumerate(examples.source):
        q = sample_questions[qi]
        positive = sample_documents[examples.positives[i]]
        assert examples.questions[i] == q.text
        assert contains_answer(positive.text, q.answers), (q.id, positive.id)
        assert set(positive.source_ids) & set(q.doc_ids), (q.id, positive.id)
        negatives = examples.negatives[i].tolist()
        assert len(set(negatives)) == len(negatives)
        for n in negatives:
            assert n != examples.positives[i]
            assert not set(sample_documents[n].source_ids) & set(q.doc_ids), (q.id, sample_documents[n].id)
            assert not contains_answer(sample_documents[n].text, q.answers), (q.id, sample_documents[n].id)


def test_filled_hard_negatives_never_contain_the_answer(sample_documents, sample_questions):
    cfg = config(hard_negatives=10, negative_depth=5, seed=0).validate()
    examples = build_examples(sample_documents, sample_questions, cfg, echo=quiet)
    for i, qi in enumerate(examples.source):
        q = sample_questions[qi]
        for n in examples.negatives[i].tolist():
            assert not contains_answer(sample_documents[n].text, q.answers), (q.id, sample_documents[n].id)


def test_questions_without_gold_ids_take_the_first_hit_with_an_answer(sample_documents, sample_questions):
    import dataclasses

    no_ids = [dataclasses.replace(q, doc_ids=()) for q in sample_questions]
    examples = build_examples(sample_documents, no_ids, config(hard_negatives=2).validate(), echo=quiet)
    assert len(examples) + examples.skipped == len(no_ids) and len(examples) > 0.8 * len(no_ids)
    for i, qi in enumerate(examples.source):
        q = no_ids[qi]
        assert contains_answer(sample_documents[examples.positives[i]].text, q.answers)
        for n in examples.negatives[i].tolist():
            assert not contains_answer(sample_documents[n].text, q.answers)


def test_no_hard_negatives(sample_documents, sample_questions):
    examples = build_examples(sample_documents, sample_questions, config(hard_negatives=0).validate(), echo=quiet)
    assert examples.negatives.shape == (len(sample_questions), 0)


def test_questions_of_another_corpus_have_no_positive(sample_documents):
    questions = [
        Question("x1", "Who wrote it?", ("Zzyzx Qwerty",), doc_ids=("doc-001",)),
        Question("x2", "Where?", ("nowhere-at-all",), doc_ids=("no-such-doc",)),
    ]
    with pytest.raises(DataError, match="none of the 2 training questions"):
        build_examples(sample_documents, questions, config().validate(), echo=quiet)


def test_empty_inputs_are_data_errors(sample_documents, sample_questions, tmp_path):
    with pytest.raises(DataError, match="empty corpus"):
        train_dpr([], sample_questions, config(), tmp_path / "a", echo=quiet)
    with pytest.raises(DataError, match="no training questions"):
        train_dpr(sample_documents, [], config(), tmp_path / "b", echo=quiet)


# --- folds --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folds_best(tmp_path_factory, sample_documents, sample_questions):
    output = tmp_path_factory.mktemp("train") / "folds-best"
    report = train_dpr(sample_documents, sample_questions, config(epochs=1, folds=3, seed=1), output, echo=quiet)
    return report, output


def test_k_fold_report_and_best(folds_best):
    report, output = folds_best
    assert [f["fold"] for f in report["folds"]] == [1, 2, 3]
    metrics = [f["metric"] for f in report["folds"]]
    assert report["best_fold"] == int(np.argmax(metrics)) + 1 == report["best"]["fold"]
    assert report["metric_mean"] == pytest.approx(np.mean(metrics))
    assert report["metric_std"] == pytest.approx(np.std(metrics))
    assert json.loads((output / "report.json").read_text())["best_fold"] == report["best_fold"]
    for f in (1, 2, 3):
        fold_report = json.loads((output / f"fold-{f}" / "report.json").read_text())
        assert fold_report["done"] is True and fold_report["n_dev"] > 0
        assert fold_report["n_train"] + fold_report["n_dev"] == 107
    encoder = BiEncoder.load(str(output / "best"))
    assert encoder.encoders == "shared" and encoder.pooling == "mean"
    assert encoder.encode(["부산"], "question", 16, desc="").shape == (1, 32)


def test_k_fold_keep_best_removes_other_checkpoints(folds_best):
    report, output = folds_best
    best = report["best_fold"]
    assert sorted(p.name for p in output.iterdir()) == ["best", "fold-1", "fold-2", "fold-3", "report.json"]
    for f in (1, 2, 3):
        expected = ["best", "report.json"] if f == best else ["report.json"]
        assert sorted(p.name for p in (output / f"fold-{f}").iterdir()) == expected, f
    assert_same_weights(output / "best", output / f"fold-{best}" / "best")


def test_k_fold_keep_all(sample_documents, sample_questions, tmp_path):
    calls = []

    def on_epoch(fold, epoch, encoder):
        calls.append((fold, epoch))
        return {"fold_seen": fold}

    report = train_dpr(
        sample_documents,
        sample_questions,
        config(epochs=1, folds=3, seed=2, keep_folds="all"),
        tmp_path,
        dev_questions=sample_questions[:10],
        echo=quiet,
        on_epoch=on_epoch,
    )
    assert calls == [(1, 1), (2, 1), (3, 1)]
    for f in (1, 2, 3):
        assert sorted(p.name for p in (tmp_path / f"fold-{f}").iterdir()) == ["best", "last", "report.json"]
        row = json.loads((tmp_path / f"fold-{f}" / "report.json").read_text())["epochs"][0]
        assert row["extra"] == {"fold_seen": f}
        assert set(row["test"]) == {"doc", "answer"}  # dev_questions are reported as a test set per fold
    assert_same_weights(tmp_path / "best", tmp_path / f"fold-{report['best_fold']}" / "best")


def test_more_folds_than_documents_is_a_usage_error(sample_documents, sample_questions, tmp_path):
    questions = [q for q in sample_questions if q.doc_ids[0] in ("doc-001", "doc-002")]
    with pytest.raises(UsageError, match="3 folds need at least 3"):
        train_dpr(sample_documents, questions, config(folds=3), tmp_path, echo=quiet)


# --- configuration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch-size"),
        ({"folds": True}, "folds"),
        ({"hard_negatives": -1}, "hard-negatives"),
        ({"lr": 0.0}, "learning rate"),
        ({"warmup": -0.5}, "warmup"),
        ({"keep_folds": "some"}, "keep-folds"),
        ({"hit": "title"}, "hit"),
        ({"select": "f1@3"}, "select"),
        ({"select": "acc@0"}, "select"),
        ({"dev_fraction": 1.0}, "dev fraction"),
        ({"encoders": "triple"}, "encoders"),
        ({"head_lr": 1e-3}, "head-lr applies to encoders=shared-heads only"),
        ({"encoders": "shared-heads", "head_lr": 0.0}, "head-lr must be a positive"),
        ({"encoders": "shared-heads", "head_lr": "fast"}, "head-lr must be a positive"),
        ({"pooling": "max"}, "pooling"),
        ({"bootstrap_size": "huge"}, "bootstrap size"),
        ({"vocab_size": 0}, "vocab-size"),
    ],
)
def test_bad_configuration_is_a_usage_error(overrides, match):
    with pytest.raises(UsageError, match=match):
        config(**overrides).validate()


def test_select_cutoff_is_evaluated_and_digest_ignores_runtime_settings():
    cfg = config(select="acc@7").validate()
    assert 7 in cfg.eval_ks and list(cfg.eval_ks) == sorted(cfg.eval_ks)
    assert config(device="cpu").digest() == config(device="auto", eval_batch_size=3, keep_folds="all").digest()
    assert config(seed=1).digest() != config(seed=2).digest()
    assert TrainConfig().learning_rate == 1e-4 and TrainConfig(model="x").learning_rate == 2e-5


# --- Inverse Cloze Task -------------------------------------------------------------------------------------------


def test_ict_examples_cut_a_sentence_out_of_each_passage(sample_documents):
    contexts, examples = ict_examples(sample_documents, config(ict_samples=2, ict_keep_span=0.0))
    by_id = {d.id: d for d in sample_documents}
    assert len(examples) == len(contexts) > len(sample_documents)  # 2 per passage long enough
    assert examples.negatives.shape == (len(examples), 0)
    assert (examples.positives == np.arange(len(examples))).all()
    sources = Counter()
    for query, context in zip(examples.questions, contexts):
        source = by_id[context.id.split("#ict")[0]]
        sources[source.id] += 1
        assert query.strip() and query in source.text
        assert query not in context.text  # removed (keep_span=0)
        assert sorted((context.text + " " + query).split()) == sorted(source.text.split())
        assert context.title == source.title
    assert set(sources) == {d.id for d in sample_documents if len(d.text.split()) >= 8 or ". " in d.text}


def test_ict_keep_span_keeps_the_sentence(sample_documents):
    contexts, examples = ict_examples(sample_documents, config(ict_samples=1, ict_keep_span=1.0))
    assert all(q in c.text for q, c in zip(examples.questions, contexts))


def test_ict_pretraining_runs_before_the_supervised_epochs(sample_documents, sample_questions, tmp_path):
    report = train_dpr(
        sample_documents, sample_questions, config(ict_epochs=2, epochs=1, ict_lr=3e-3), tmp_path, echo=quiet
    )
    ict = json.loads((tmp_path / "ict" / "report.json").read_text())
    assert [row["epoch"] for row in ict["epochs"]] == [1, 2] and ict["done"]
    assert ict["config"]["hard_negatives"] == 0 and ict["config"]["learning_rate"] == 3e-3
    assert ict["epochs"][1]["loss"] < ict["epochs"][0]["loss"]
    assert [row["epoch"] for row in report["epochs"]] == [1]
    ict_weights = open_store(tmp_path / "ict" / "last").manifest["files"]["encoder.safetensors"]["sha256"]
    assert ict_weights != open_store(tmp_path / "last").manifest["files"]["encoder.safetensors"]["sha256"]


def test_ict_is_the_bootstrap_default():
    assert TrainConfig().validate().ict_epochs == 3
    assert TrainConfig(model="some/model").validate().ict_epochs == 0
    assert TrainConfig(ict_epochs=0).validate().ict_epochs == 0
    with pytest.raises(UsageError, match="ict"):
        TrainConfig(ict_epochs=-1).validate()
