"""DPR training on several processes with torch DDP: the process group, the all-gather of in-batch negatives and
the split of each epoch's batches across ranks (``odqa train dpr --nproc N``'s launcher: :mod:`odqa_dense.launch`).

How a run is laid out (``torchrun`` or ``--nproc``; one process per rank, the same seed everywhere):

- **Batches.** Every rank draws the same seeded order of the epoch's examples. Step ``s`` takes the ``W·B``
  examples ``order[s·W·B : (s+1)·W·B]`` (``W`` ranks, ``B`` = ``batch_size`` per rank) and rank ``r`` encodes
  slice ``r`` of them, so ``W`` ranks with batch ``B`` see exactly the batches one process with batch ``W·B``
  sees. A short last batch of ``m`` examples is split into ``W`` equal parts of ``ceil(m/W)``, **padded** with the
  first examples of the epoch's order (at most ``W-1`` repeats; a repeated passage is masked as in any batch with
  two questions about one passage): every rank runs the same number of steps and no example is dropped.
- **Loss.** Question and passage vectors are all-gathered (:func:`gather_with_grad`, as DPR and Tevatron do:
  the gathered copy of the local part is the local tensor itself, so gradients flow through it); every rank
  computes the loss of the whole global batch — each question against every rank's positives and hard
  negatives — and backpropagates it times ``W``, since DDP averages gradients over ranks. The sum of the ranks'
  local gradient contributions is the gradient of the global loss: ``W×B`` trains like one process with ``W·B``.
- **Rank 0** evaluates, selects ``best/``, writes every checkpoint and report (atomically, as one process does)
  and decides what the others must agree on (resume or not, the epoch and step to resume after); the other ranks
  wait at a barrier. Weights are broadcast from rank 0 when the model is wrapped in DDP, the optimizer state with
  :func:`sync_optimizer_state`.
- **Failures.** The process group has a timeout (``ODQA_DIST_TIMEOUT`` seconds, default 1800), so a rank whose
  peer died does not wait forever; ``--nproc`` (:mod:`odqa_dense.launch`) stops the other ranks as soon as one
  fails and reports that rank's one-line error.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from odqa_core.errors import OdqaError, UsageError

T = TypeVar("T")

#: Seconds a collective operation waits for the other ranks before failing (``ODQA_DIST_TIMEOUT`` overrides).
DEFAULT_TIMEOUT_S = 1800


#: How a rank that stopped only because another failed marks its error file.
FOLLOWER_PREFIX = "(follower) "


class RankFailed(OdqaError):
    """A rank of a multi-process training failed (the message names it)."""


# --- the process group ------------------------------------------------------------------------------------------


def environment_world_size() -> int:
    """``WORLD_SIZE`` as torchrun (or ``--nproc``) sets it; 1 when this process was not launched as a rank."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def timeout_seconds() -> float:
    raw = os.environ.get("ODQA_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"ODQA_DIST_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise UsageError(f"ODQA_DIST_TIMEOUT must be positive, got {raw!r}")
    return value


def init_from_environment(device: str) -> bool:
    """Join the process group torchrun or ``--nproc`` describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``): gloo on CPU, nccl on CUDA. False (and nothing done) in a single process."""
    import datetime

    import torch
    import torch.distributed as dist

    if environment_world_size() <= 1 or dist.is_initialized():
        return dist.is_initialized()
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_seconds()))
    return True


def shutdown() -> None:
    if _initialized():
        import torch.distributed as dist

        dist.destroy_process_group()


def _initialized() -> bool:
    if "torch" not in sys.modules:  # no torch loaded: certainly no process group (and none imported for asking)
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    if not _initialized():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def world_size() -> int:
    if not _initialized():
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def is_main() -> bool:
    """Rank 0, or a single process: the one that evaluates and writes."""
    return rank() == 0


def barrier() -> None:
    if _initialized():
        import torch.distributed as dist

        dist.barrier()


def _collective_device() -> Any:
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_ints(values: Sequence[int]) -> list[int]:
    """Rank 0's ``values`` on every rank (the others pass the same count of placeholders)."""
    if not _initialized():
        return [int(v) for v in values]
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([int(v) for v in values], dtype=torch.int64, device=_collective_device())
    dist.broadcast(tensor, 0)
    return [int(v) for v in tensor.tolist()]


def broadcast_flag(value: bool) -> bool:
    """Rank 0's decision, on every rank."""
    return bool(broadcast_ints([int(value)])[0])


def agree_or_raise(error: BaseException | None) -> None:
    """Every rank learns whether rank 0 failed a step only it does (preparing the output, evaluating, writing);
    rank 0 re-raises its error, the others stop with a short one naming rank 0 — instead of waiting for it at the
    next collective until the timeout."""
    failed = broadcast_flag(error is not None) if _initialized() else error is not None
    if error is not None:
        raise error
    if failed:
        raise RankFailed("rank 0 failed (see its error)")


def on_main(action: Callable[..., T], *args: Any) -> T | None:
    """``action(*args)`` on rank 0 (its result; None on the other ranks), which the others wait for — and learn of
    its failure from (:func:`agree_or_raise`)."""
    result, error = None, None
    if is_main():
        try:
            result = action(*args)
        except BaseException as exc:  # re-raised below, after the other ranks were told
            error = exc
    agree_or_raise(error)
    return result


def towers(encoder: Any) -> Any:
    """The bi-encoder's trainable modules as one ``torch.nn.Module`` whose forward encodes a padded question batch
    and a padded passage batch: one forward per step, what DistributedDataParallel expects of the module it wraps
    (a shared encoder is called twice in it, once per side)."""
    import torch

    class Towers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parts = torch.nn.ModuleList(encoder.modules())

        def forward(self, q_ids: Any, q_mask: Any, p_ids: Any, p_mask: Any) -> tuple[Any, Any]:
            q = encoder.head("question", encoder.embed(encoder.question_model, q_ids, q_mask))
            p = encoder.head("passage", encoder.embed(encoder.passage_model, p_ids, p_mask))
            return q, p

    return Towers()


def gather_with_grad(tensor: Any) -> Any:
    """Every rank's ``tensor`` concatenated in rank order, the local part being ``tensor`` itself so that
    gradients flow through it (``all_gather``'s outputs carry none): Tevatron's ``_dist_gather_tensor``."""
    if not _initialized():
        return tensor
    import torch
    import torch.distributed as dist

    tensor = tensor.contiguous()
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.detach())
    parts[dist.get_rank()] = tensor
    return torch.cat(parts, dim=0)


def sync_optimizer_state(optimizer: Any) -> None:
    """Rank 0's optimizer state (AdamW's step and moments, e.g. restored from ``last/``) on every rank."""
    if not _initialized():
        return
    import torch

    params = [p for group in optimizer.param_groups for p in group["params"]]
    has_state = broadcast_ints([int(bool(optimizer.state.get(p))) for p in params])
    import torch.distributed as dist

    for p, present in zip(params, has_state):
        if not present:
            continue
        state = optimizer.state[p]
        if not state:  # shapes as AdamW makes them; the values come from rank 0
            state.update(
                step=torch.zeros((), dtype=torch.float32),
                exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format),
            )
        for key in ("step", "exp_avg", "exp_avg_sq"):
            value = state[key]
            moved = value.to(_collective_device())
            dist.broadcast(moved, 0)
            value.copy_(moved.to(value.device))


def wrap_ddp(module: Any) -> Any:
    """``module`` in DistributedDataParallel (rank 0's weights broadcast to every rank now), or ``module`` itself
    in a single process. Unused parameters are allowed: BERT's pooler takes no gradient unless pooling uses it."""
    if not _initialized():
        return module
    import torch

    device = next(module.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


# --- batches ----------------------------------------------------------------------------------------------------


def global_batches(order: np.ndarray, batch_size: int, ranks: int) -> list[np.ndarray]:
    """The epoch's steps: each the ``ranks · b`` example indices of one step, rank ``r``'s being slice ``r`` of
    ``b`` (``b = batch_size`` except in a short last step, ``ceil(m / ranks)``); padded with the first examples of
    ``order`` where ``m`` does not divide (see the module docstring). One rank: the batches of ``order`` as one
    process takes them."""
    n = len(order)
    step = batch_size * ranks
    batches = []
    for start in range(0, n, step):
        m = min(step, n - start)
        per_rank = math.ceil(m / ranks)
        positions = np.arange(start, start + per_rank * ranks) % n
        batches.append(order[positions])
    return batches


def local_part(batch: np.ndarray) -> np.ndarray:
    """This rank's slice of a global batch."""
    per_rank = len(batch) // world_size()
    return batch[rank() * per_rank : (rank() + 1) * per_rank]
