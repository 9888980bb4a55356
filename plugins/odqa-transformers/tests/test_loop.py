"""The training loop's pieces: the optimizer step and its schedule, the resumable optimizer state, folds that keep a
gold document's questions together, the k-fold report, and the output directory a training may write into."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from odqa_transformers.loop import (
    TRAINING_STATE,
    Stepper,
    finish_folds,
    group_folds,
    load_training_state,
    lr_at,
    prepare_output,
    save_training_state,
)

from odqa_core import Question, UsageError


def test_learning_rate_schedule():
    rates = [lr_at(step, 10, 2, 1.0) for step in range(10)]
    assert rates[:2] == [0.5, 1.0]  # linear warmup to the peak
    assert rates[2] == 1.0 and all(a > b for a, b in zip(rates[2:], rates[3:]))  # then linear decay
    assert rates[-1] == pytest.approx(1 / 8)
    assert lr_at(10, 10, 2, 1.0) == 0.0 and lr_at(0, 10, 0, 1.0) == 1.0


def test_group_folds_on_the_sample(sample_questions):
    folds = group_folds(sample_questions, 3, seed=0)
    assert len(folds) == 3
    everything = np.concatenate(folds)
    assert sorted(everything.tolist()) == list(range(len(sample_questions)))
    fold_of_doc = {}
    for f, members in enumerate(folds):
        for i in members.tolist():
            assert fold_of_doc.setdefault(sample_questions[i].doc_ids[0], f) == f
    assert group_folds(sample_questions, 3, seed=0)[1].tolist() == folds[1].tolist()
    assert [m.tolist() for m in group_folds(sample_questions, 3, seed=1)] != [m.tolist() for m in folds]


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(st.one_of(st.none(), st.integers(0, 12)), min_size=1, max_size=40),
    folds=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_group_folds_partitions_and_keeps_documents_together(docs, folds, seed):
    questions = [Question(f"q{i}", "?", doc_ids=() if d is None else (f"d{d}",)) for i, d in enumerate(docs)]
    groups = {q.doc_ids[0] if q.doc_ids else q.id for q in questions}
    if len(groups) < folds:
        with pytest.raises(UsageError, match="folds need at least"):
            group_folds(questions, folds, seed)
        return
    members = group_folds(questions, folds, seed)
    assert len(members) == folds and all(len(m) > 0 for m in members)
    flat = np.concatenate(members).tolist()
    assert sorted(flat) == list(range(len(questions)))
    owner = {}
    for f, m in enumerate(members):
        for i in m.tolist():
            key = questions[i].doc_ids[0] if questions[i].doc_ids else questions[i].id
            assert owner.setdefault(key, f) == f
    largest = max(Counter(q.doc_ids[0] if q.doc_ids else q.id for q in questions).values())
    assert max(map(len, members)) - min(map(len, members)) <= largest


# --- the optimizer step ---------------------------------------------------------------------------------------------


def _model(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))


def _stepper(model, **overrides):
    settings = {
        "lr": 0.1,
        "weight_decay": 0.01,
        "precision": "fp32",
        "micro_per_epoch": 5,
        "epochs": 2,
        "warmup": 0.25,
        "grad_accum": 2,
        "max_grad_norm": 1.0,
        **overrides,
    }
    return Stepper.create(list(model.named_parameters()), **settings)


def _epoch(model, steps, state, seed=0):
    import torch

    inputs = torch.randn(5, 4, generator=torch.Generator().manual_seed(seed))
    return steps.run_epoch(lambda i: (model(inputs[i : i + 1]) ** 2).sum(), 5, state, torch.device("cpu"), "fp32", "")


def test_the_stepper_steps_once_per_accumulated_batch_on_the_schedule():
    model = _model()
    steps = _stepper(model)
    assert (steps.total, steps.warmup_steps) == (6, 1)  # ceil(5 micro-batches / 2) per epoch, 2 epochs; 25% warmup
    decayed, plain = steps.optimizer.param_groups[:2]
    assert decayed["weight_decay"] == 0.01 and all(p.ndim == 2 for p in decayed["params"])  # no decay on biases
    assert plain["weight_decay"] == 0.0 and all(p.ndim == 1 for p in plain["params"])
    state = {"step": 0}
    losses = _epoch(model, steps, state)
    assert len(losses) == 5 and state["step"] == 3  # the last, half-full accumulation steps too
    assert decayed["lr"] == pytest.approx(lr_at(2, 6, 1, 0.1))
    _epoch(model, steps, state)
    assert state["step"] == 6 and decayed["lr"] == pytest.approx(lr_at(5, 6, 1, 0.1))


def test_own_rates_follow_the_schedule_to_their_own_peak():
    model = _model()
    head = list(model[1].parameters())
    steps = _stepper(model, own_rates=[(head, 1.0)])
    groups = steps.optimizer.param_groups
    assert [g.get("peak") for g in groups] == [None, None, 1.0, 1.0]
    assert {id(p) for g in groups[2:] for p in g["params"]} == {id(p) for p in head}
    assert not {id(p) for g in groups[:2] for p in g["params"]} & {id(p) for p in head}
    _epoch(model, steps, {"step": 0})
    assert groups[0]["lr"] == pytest.approx(lr_at(2, 6, 1, 0.1))
    assert groups[2]["lr"] == pytest.approx(lr_at(2, 6, 1, 1.0))


def test_a_resumed_optimizer_continues_exactly_as_the_uninterrupted_one(tmp_path):
    import torch

    uninterrupted = _model()
    steps = _stepper(uninterrupted)
    state = {"step": 0, "epoch": 0}
    _epoch(uninterrupted, steps, state)
    state["epoch"] = 1
    save_training_state(tmp_path, steps.optimizer, state)
    # JSON and safetensors only: nothing to unpickle when resuming.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{TRAINING_STATE}.json", f"{TRAINING_STATE}.safetensors"]
    resumed = _model(seed=1)
    resumed.load_state_dict(uninterrupted.state_dict())
    resumed_steps = _stepper(resumed)
    assert load_training_state(tmp_path, resumed_steps.optimizer) == {"step": 3, "epoch": 1}
    _epoch(uninterrupted, steps, state, seed=1)
    _epoch(resumed, resumed_steps, {"step": 3}, seed=1)
    for (name, a), b in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# --- k-fold and the output directory --------------------------------------------------------------------------------


def _fold_output(root, metrics):
    reports = []
    for fold, metric in enumerate(metrics, 1):
        for sub in ("best", "last"):
            (root / f"fold-{fold}" / sub).mkdir(parents=True)
            (root / f"fold-{fold}" / sub / "weights").write_text(f"fold {fold} {sub}")
        reports.append({"best": {"epoch": fold, "metric": metric}, "epochs": [{"epoch": fold, "metric": metric}]})
    return reports


@pytest.mark.parametrize("keep_folds", ["best", "all"])
def test_finish_folds_reports_and_keeps_the_best_fold(tmp_path, keep_folds):
    reports = _fold_output(tmp_path, [0.2, 0.7, 0.4])
    config = SimpleNamespace(keep_folds=keep_folds, to_json=lambda: {"folds": 3})
    report = finish_folds(tmp_path, config, reports)
    assert report["best_fold"] == 2 and report["best"] == {"fold": 2, "epoch": 2, "metric": 0.7}
    assert report["metric_mean"] == pytest.approx(np.mean([0.2, 0.7, 0.4])) and report["done"]
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert (tmp_path / "best" / "weights").read_text() == "fold 2 best"
    kept = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("fold-*/*"))
    everything = [f"fold-{f}/{sub}" for f in (1, 2, 3) for sub in ("best", "last")]
    assert kept == (["fold-2/best"] if keep_folds == "best" else everything)


def test_an_output_must_be_empty_or_a_training_to_resume(tmp_path):
    prepare_output(tmp_path / "new" / "run", resume=False)
    assert (tmp_path / "new" / "run").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="exists and is not a directory"):
        prepare_output(tmp_path / "file", resume=False)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="is not empty; pass --resume"):
        prepare_output(stranger, resume=False)
    with pytest.raises(UsageError, match="not an odqa training output"):
        prepare_output(stranger, resume=True)
    assert (stranger / "notes.txt").read_text() == "mine"
    (stranger / "report.json").write_text("{}")
    prepare_output(stranger, resume=True)  # a training's own output resumes
