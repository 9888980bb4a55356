"""The pieces every odqa training loop is made of (the dense retriever's and the readers'): the optimizer step with
its schedule, k-fold splits, the output directory and its checkpoints, and the state a stopped run resumes from.

A loop owns what is particular to it (its examples, its loss, its evaluation); these own what must behave the same
in all of them:

- :class:`Stepper`: AdamW with DPR's schedule (linear warmup, then linear decay), gradient accumulation, clipping
  and fp16 loss scaling, one epoch at a time;
- :func:`group_folds` / :func:`finish_folds`: folds that keep the questions of a gold document together, and the
  k-fold report with the best fold's ``best/`` copied to the top of the output;
- :func:`prepare_output` / :func:`copy_dir_atomic` / :func:`recover_last_checkpoint`: an output directory that is
  empty or a training's own, checkpoints swapped in whole, a checkpoint an interrupted write moved aside put back;
- :func:`save_training_state` / :func:`load_training_state`: the optimizer state of a resumable checkpoint, as
  safetensors and JSON (no pickle).

Output layout of a training (``report.json``, ``best/``, ``last/``, ``epoch-N/``, ``fold-N/``): see
``odqa_dense.training`` and ``odqa_readers.training``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core.errors import UsageError
from odqa_core.outputs import atomic_directory, atomic_write_text, recover_interrupted_write
from odqa_core.progress import progress
from odqa_core.types import Question
from odqa_transformers import hf

#: The stem of a resumable checkpoint's optimizer state files (``.safetensors`` tensors, ``.json`` the rest).
TRAINING_STATE = "training_state"


# --- the optimizer step ---------------------------------------------------------------------------------------------


def lr_at(step: int, total: int, warmup_steps: int, peak: float) -> float:
    """Linear warmup to ``peak``, then linear decay to 0 (DPR's schedule)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    return peak * max(0.0, (total - step) / max(1, total - warmup_steps))


@dataclass
class Stepper:
    """AdamW (no weight decay on biases and norms) with DPR's schedule — linear warmup, then linear decay — plus
    gradient accumulation, clipping and fp16 loss scaling: how every odqa training loop (DPR, readers) steps."""

    optimizer: Any
    scaler: Any
    parameters: list[Any]
    total: int
    warmup_steps: int
    peak_lr: float
    grad_accum: int
    max_grad_norm: float
    #: Multiplies the loss before backward: the world size where DDP averages the gradients of a loss that is
    #: already the whole global batch's on every rank (DPR's all-gathered in-batch negatives), so that the summed
    #: local contributions make the global loss's gradient. 1 in one process.
    gradient_scale: float = 1.0

    @classmethod
    def create(
        cls,
        named_parameters: Sequence[tuple[str, Any]],
        *,
        lr: float,
        weight_decay: float,
        precision: str,
        micro_per_epoch: int,
        epochs: int,
        warmup: float,
        grad_accum: int,
        max_grad_norm: float,
        own_rates: Sequence[tuple[Sequence[Any], float]] = (),
    ) -> Stepper:
        """``own_rates``: ``(parameters, peak)`` pairs, parameters that follow the same schedule to their own peak
        learning rate (e.g. the heads of ``shared-heads`` DPR) instead of ``lr``."""
        import torch

        params = [p for _, p in named_parameters]
        apart = {id(p) for group, _ in own_rates for p in group}
        common = [p for p in params if id(p) not in apart]
        groups: list[dict[str, Any]] = [
            {"params": [p for p in common if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in common if p.ndim <= 1], "weight_decay": 0.0},
        ]
        for group, peak in own_rates:
            for decayed in (True, False):
                members = [p for p in group if (p.ndim > 1) == decayed]
                if members:
                    groups.append({"params": members, "weight_decay": weight_decay if decayed else 0.0, "peak": peak})
        optimizer = torch.optim.AdamW(groups, lr=lr)
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        total = math.ceil(micro_per_epoch / grad_accum) * epochs
        warmup_steps = int(warmup * total) if warmup < 1 else int(warmup)
        return cls(optimizer, scaler, params, total, warmup_steps, lr, grad_accum, max_grad_norm)

    @classmethod
    def for_config(
        cls,
        named_parameters: Sequence[tuple[str, Any]],
        config: Any,
        precision: str,
        micro_per_epoch: int,
        own_rates: Sequence[tuple[Sequence[Any], float]] = (),
    ) -> Stepper:
        """:meth:`create` with the settings of a training config (:class:`odqa_transformers.config.TrainingConfig`:
        ``learning_rate``, ``weight_decay``, ``epochs``, ``warmup``, ``grad_accum``, ``max_grad_norm``)."""
        return cls.create(
            named_parameters,
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            precision=precision,
            micro_per_epoch=micro_per_epoch,
            epochs=config.epochs,
            warmup=config.warmup,
            grad_accum=config.grad_accum,
            max_grad_norm=config.max_grad_norm,
            own_rates=own_rates,
        )

    def run_epoch(
        self,
        loss_of: Callable[[int], Any],
        micro_batches: int,
        state: dict[str, Any],
        device: Any,
        precision: str,
        desc: str,
    ) -> list[float]:
        """One epoch of ``micro_batches`` calls ``loss_of(i)`` (under autocast); ``state["step"]`` counts the
        optimizer steps across epochs (the schedule's position). Returns the micro-batch losses."""
        import torch

        optimizer, scaler = self.optimizer, self.scaler
        losses: list[float] = []
        optimizer.zero_grad(set_to_none=True)
        with progress(micro_batches, desc, "batch") as bar:
            for micro in range(micro_batches):
                with hf.autocast(device, precision):
                    loss = loss_of(micro)
                scaled = (
                    loss * self.gradient_scale / self.grad_accum
                    if self.gradient_scale != 1
                    else loss / self.grad_accum
                )
                (scaler.scale(scaled) if scaler else scaled).backward()
                losses.append(float(loss.detach()))
                if (micro + 1) % self.grad_accum == 0 or micro + 1 == micro_batches:
                    for group in optimizer.param_groups:
                        peak = group.get("peak", self.peak_lr)
                        group["lr"] = lr_at(state["step"], self.total, self.warmup_steps, peak)
                    if scaler:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
                    if scaler:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    state["step"] += 1
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        return losses


# --- resumable state ------------------------------------------------------------------------------------------------


def save_training_state(path: Path, optimizer: Any, state: dict[str, Any]) -> None:
    """Optimizer tensors as safetensors, the rest as JSON: no pickle, loadable without executing anything."""
    from safetensors.torch import save_file

    tensors, groups = {}, []
    for pid, pstate in optimizer.state_dict()["state"].items():
        for key, value in pstate.items():
            tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous().reshape(-1) if value.ndim == 0 else value
    for group in optimizer.state_dict()["param_groups"]:
        groups.append({k: v for k, v in group.items()})
    save_file(tensors, str(path / f"{TRAINING_STATE}.safetensors"))
    (path / f"{TRAINING_STATE}.json").write_text(json.dumps({**state, "param_groups": groups}, indent=1))


def load_training_state(path: Path, optimizer: Any) -> dict[str, Any]:
    """Restore ``optimizer`` from :func:`save_training_state`'s files in ``path``; returns the saved ``state``."""
    from safetensors.torch import load_file

    state = json.loads((path / f"{TRAINING_STATE}.json").read_text())
    tensors = load_file(str(path / f"{TRAINING_STATE}.safetensors"))
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        per_param.setdefault(int(pid), {})[key] = value.reshape(()) if key == "step" else value
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("param_groups")})
    return state


# --- folds ----------------------------------------------------------------------------------------------------------


def group_folds(questions: Sequence[Question], folds: int, seed: int) -> list[np.ndarray]:
    """Question indices of each fold; questions about the same gold document stay in the same fold."""
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(q.doc_ids[0] if q.doc_ids else q.id, []).append(i)
    if len(groups) < folds:
        raise UsageError(f"{folds} folds need at least {folds} question groups (gold documents); found {len(groups)}")
    keys = list(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    members: list[list[int]] = [[] for _ in range(folds)]
    for rank in order:  # largest-first would be tighter; seeded round-robin keeps fold sizes within one group
        smallest = min(range(folds), key=lambda f: len(members[f]))
        members[smallest].extend(groups[keys[rank]])
    return [np.asarray(sorted(m), np.int64) for m in members]


def finish_folds(output: Path, config: Any, fold_reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The k-fold run's ``report.json`` from each fold's report (``output/fold-N/``), the best fold's ``best/``
    copied to ``output/best``; with ``config.keep_folds == "best"`` the other folds' checkpoints are removed."""
    best_metrics = [r["best"]["metric"] for r in fold_reports]
    best_fold = int(np.argmax(best_metrics)) + 1
    copy_dir_atomic(output / f"fold-{best_fold}" / "best", output / "best")
    if config.keep_folds == "best":
        for f in range(1, len(fold_reports) + 1):
            for sub in ("best", "last"):
                if f != best_fold or sub == "last":
                    shutil.rmtree(output / f"fold-{f}" / sub, ignore_errors=True)
    report = {
        "config": config.to_json(),
        "folds": [
            {"fold": f, "best_epoch": r["best"]["epoch"], "metric": r["best"]["metric"], "epochs": r["epochs"]}
            for f, r in enumerate(fold_reports, 1)
        ],
        "metric_mean": float(np.mean(best_metrics)),
        "metric_std": float(np.std(best_metrics)),
        "best_fold": best_fold,
        "best": {"fold": best_fold, **fold_reports[best_fold - 1]["best"]},
        "done": True,
    }
    atomic_write_text(output / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
    return report


# --- the output directory -------------------------------------------------------------------------------------------


def prepare_output(output: Path, resume: bool) -> None:
    """Create ``output``; one that holds files must be resumed (``resume``) and be a training's own output."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"output {output} exists and is not a directory")
    if output.exists() and any(output.iterdir()):
        if not resume:
            raise UsageError(
                f"output directory {output} is not empty; pass --resume to continue it or choose another"
            )
        # --resume writes report.json and checkpoints into the directory: it must be a training's, not a stranger's.
        ours = ("report.json", "last", "ict", "best", "fold-1", ".last.old-*")
        if not any(any(output.glob(name)) for name in ours):
            raise UsageError(
                f"output directory {output} is not an odqa training output (no report.json, last/ or fold-1/); "
                "refusing to resume into it"
            )
    output.mkdir(parents=True, exist_ok=True)


def copy_dir_atomic(source: Path, target: Path) -> None:
    with atomic_directory(target) as tmp:  # locked, swapped in whole, leftovers of a killed copy removed
        shutil.copytree(source, tmp, dirs_exist_ok=True)


def recover_last_checkpoint(last: Path, echo: Callable[[str], None]) -> None:
    """Before resuming: a run killed between the two renames that replace ``last/`` left the previous checkpoint
    in ``.last.old-*`` and no ``last/``. Put it back; where that is not ours to do (a name without the writer's
    pid), say so rather than silently start over."""
    restored = recover_interrupted_write(last)
    if restored is not None:
        echo(f"restored {last} from {restored.name}, left by a checkpoint write that was interrupted")
    if not last.exists():
        left = sorted(last.parent.glob(f".{last.name}.old-*"))
        if left:
            raise UsageError(
                f"{last} is missing, but {left[-1]} holds the checkpoint an interrupted write moved aside; rename "
                f"it to {last} to resume from it, or delete it to start over"
            )
