"""One DPR loss and backward pass, in one process or as one rank of several (``python ddp_step.py CHECKPOINT OUT
PER_RANK`` with ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` set): what ``test_dense_ddp`` compares.

The global batch is the same ``2 · PER_RANK`` examples either way; rank 0 (or the single process) writes the loss
and every parameter's gradient (after DDP's averaging) to ``OUT/step.safetensors``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

#: Hard negatives per question (gathered across ranks like the positives).
HARD_NEGATIVES = 2


def step_examples(n_documents: int, n_examples: int):
    """Seeded examples over the sample corpus; examples 0 and ``n/2`` share a positive, so the mask of another
    question's copy of one's own positive crosses ranks."""
    from odqa_dense.training import Examples

    rng = np.random.default_rng(5)
    positives = rng.choice(n_documents, n_examples, replace=False)
    positives[n_examples // 2] = positives[0]
    negatives = rng.integers(0, n_documents, (n_examples, HARD_NEGATIVES))
    questions = [f"question {i} about passage {p}" for i, p in enumerate(positives)]
    return Examples(questions, positives.astype(np.int64), negatives.astype(np.int64), np.arange(n_examples))


def one_step(checkpoint: str, out: Path, per_rank: int) -> None:
    import torch
    from odqa_dense import distributed
    from odqa_dense.encoder import BiEncoder
    from odqa_dense.training import BiEncoderTrainingLoop, TrainConfig
    from safetensors.torch import save_file

    from odqa_core import data

    torch.set_num_threads(1)
    distributed.init_from_environment("cpu")
    try:
        documents = data.load_corpus(data.sample_corpus_path())
        ranks = distributed.environment_world_size()
        examples = step_examples(len(documents), 2 * per_rank)
        config = TrainConfig(
            bootstrap_size="micro", pooling="mean", hard_negatives=HARD_NEGATIVES, device="cpu", passage_max_length=64
        ).validate()
        loop = BiEncoderTrainingLoop(BiEncoder.load(checkpoint), documents, examples, [], config, out)
        # float64 (before DDP wraps the model and lays out its gradient buckets): the comparison then sees the
        # algorithm, not float32's rounding of sums taken in another order (per-rank padding widths, gradients
        # summed over ranks), which differs by ~1e-5 relative.
        for module in loop.encoder.modules():
            module.double()
        towers = loop.bind_towers()
        towers.train(False)  # no dropout: the ranks' masks could not match one process's
        q_rows = loop.encoder.tokenize(examples.questions, config.query_max_length)
        loss = loop._loss(np.arange(len(examples)), q_rows)
        (loss * ranks).backward()  # as Stepper does with gradient_scale = world size
        if distributed.is_main():
            tensors = {"loss": loss.detach().reshape(1)}
            for name, p in loop._named_parameters():
                if p.grad is not None:
                    tensors[f"grad.{name}"] = p.grad.detach().contiguous()
            save_file(tensors, str(out / "step.safetensors"))
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    one_step(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
