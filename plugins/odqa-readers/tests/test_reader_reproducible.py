"""Bootstrapped readers are reproducible across processes: the same inputs and seed give a byte-identical
tokenizer and byte-identical weights after a short CPU training, for the extractive (BERT) and the generative (T5)
bootstrap, each process with its own empty cache."""

from __future__ import annotations

import os
import subprocess
import sys

# A vocabulary of 3,000 on the sample corpus leaves room for merges past its ~1,900 characters, where pairs of
# equal count compete for the last places (odqa_transformers.bootstrap.learn_wordpiece_vocabulary).
TRAIN_ONCE = """
import sys
from pathlib import Path
from odqa_core import data
from odqa_readers.training import ReaderTrainConfig, train_reader

documents = data.load_corpus(data.sample_corpus_path())
questions = data.load_questions(data.sample_train_questions_path())[:12]
common = {"bootstrap_size": "micro", "vocab_size": 3000, "epochs": 1, "batch_size": 8, "seed": 4, "device": "cpu"}
extractive = ReaderTrainConfig(reader_options={"max_length": 96, "doc_stride": 32}, **common)
train_reader(documents, questions, extractive, Path(sys.argv[1]) / "extractive")
generative = ReaderTrainConfig(reader="generative", reader_options={"max_length": 96}, **common)
train_reader(documents, questions, generative, Path(sys.argv[1]) / "generative")
"""


def test_two_processes_bootstrap_the_same_readers(tmp_path):
    for name in ("first", "second"):
        env = {**os.environ, "ODQA_PROGRESS": "0", "ODQA_CACHE_DIR": str(tmp_path / f"cache-{name}")}
        done = subprocess.run(
            [sys.executable, "-c", TRAIN_ONCE, str(tmp_path / name)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
    for reader in ("extractive", "generative"):
        first, second = (tmp_path / name / reader / "best" for name in ("first", "second"))
        files = sorted(p.name for p in first.iterdir() if p.suffix == ".safetensors" or p.name == "tokenizer.json")
        assert "tokenizer.json" in files and "model.safetensors" in files, files
        for file in files:
            assert (first / file).read_bytes() == (second / file).read_bytes(), f"{reader}/{file}"
