"""Bootstrapping is reproducible across processes: the same texts and seed give a byte-identical tokenizer and,
after a short ICT + supervised training on the CPU, byte-identical weights (each process with its own empty cache,
so nothing is shared between the two but the inputs)."""

from __future__ import annotations

import os
import subprocess
import sys

# A vocabulary of 3,000 on the sample corpus leaves room for merges past its ~1,900 characters, where pairs of
# equal count compete for the last places: before the vocabulary was learned canonically, two processes picked
# different tokens there.
TRAIN_ONCE = """
import sys
from pathlib import Path
from odqa_core import data
from odqa_dense.training import TrainConfig, train_dpr

documents = data.load_corpus(data.sample_corpus_path())
questions = data.load_questions(data.sample_train_questions_path())[:32]
config = TrainConfig(bootstrap_size="micro", vocab_size=3000, passage_max_length=64, query_max_length=32,
                     epochs=1, ict_epochs=1, batch_size=16, seed=3, device="cpu")
train_dpr(documents, questions, config, Path(sys.argv[1]), echo=lambda message: None)
"""


def test_two_processes_bootstrap_the_same_tokenizer_and_weights(tmp_path):
    outputs = []
    for name in ("first", "second"):
        env = {**os.environ, "ODQA_PROGRESS": "0", "ODQA_CACHE_DIR": str(tmp_path / f"cache-{name}")}
        done = subprocess.run(
            [sys.executable, "-c", TRAIN_ONCE, str(tmp_path / name)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(tmp_path / name / "last")
    files = sorted(p.name for p in outputs[0].iterdir() if p.suffix == ".safetensors" or p.name == "tokenizer.json")
    assert "tokenizer.json" in files and "encoder.safetensors" in files
    for name in files:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
