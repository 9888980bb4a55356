"""Models and data shared by the odqa-dense tests, built once per session.

Everything uses the ``micro`` bootstrap BERT (1 layer, hidden 32) with a small vocabulary, so the whole suite runs
on a busy 2-core CPU. torch runs single-threaded here: on a shared machine two threads contend with other work and
make the small matrix products several times slower, and one thread keeps results bit-for-bit reproducible.

The random (untrained) checkpoints use mean pooling: a randomly initialised BERT gives nearly the same [CLS] vector
for every input (cosine ≈ 1 - 1e-6), so with cls pooling every score ties at float32 precision and rankings are
noise. Mean pooling keeps score gaps well above rounding error.
"""

from __future__ import annotations

import pytest
from dense_testdata import save_bootstrap_checkpoint
from odqa_transformers.testing import (  # noqa: F401 - pytest fixtures
    family_files,
    family_model,
    quiet_single_threaded_torch,
    sample_documents,
    sample_questions,
    vocab_texts,
)


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory, vocab_texts):
    """An odqa ``checkpoint`` directory holding a random micro bi-encoder (seed 0, mean pooling)."""
    return save_bootstrap_checkpoint(
        tmp_path_factory.mktemp("models") / "micro-0", vocab_texts, seed=0, pooling="mean"
    )


@pytest.fixture(scope="session")
def other_micro_checkpoint(tmp_path_factory, vocab_texts):
    """Same size and vocabulary as :func:`micro_checkpoint`, other weights (seed 1)."""
    return save_bootstrap_checkpoint(
        tmp_path_factory.mktemp("models") / "micro-1", vocab_texts, seed=1, pooling="mean"
    )


@pytest.fixture(scope="session")
def wide_checkpoint(tmp_path_factory, vocab_texts):
    """A model of another hidden size (``tiny``: 128) than the micro ones (32)."""
    return save_bootstrap_checkpoint(
        tmp_path_factory.mktemp("models") / "tiny-0", vocab_texts, size="tiny", pooling="mean"
    )


@pytest.fixture(scope="session")
def hf_model(tmp_path_factory, vocab_texts):
    """``(directory, tokenizer, model)``: a HuggingFace model directory (``save_pretrained``, not an odqa checkpoint)
    and the in-memory objects it was saved from. Search it with pooling=mean (see above)."""
    from odqa_transformers.bootstrap import bootstrap_encoder

    path = tmp_path_factory.mktemp("models") / "hf-micro"
    tokenizer, model = bootstrap_encoder(vocab_texts, "micro", 500, 512, 3)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return str(path), tokenizer, model


@pytest.fixture(scope="session")
def hf_model_dir(hf_model):
    return hf_model[0]
