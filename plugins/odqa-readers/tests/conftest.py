"""Models shared by the odqa-readers tests, built offline once per session.

Everything uses the ``micro`` bootstrap BERT (1 layer, hidden 32) and a WordPiece vocabulary learned from the toy
corpus, so the suite runs on a busy 2-core CPU. torch runs single-threaded (faster on a shared machine, and
bit-for-bit reproducible); ``ODQA_CACHE_DIR`` points into the session's temporary directory so that nothing is
written to ``~/.cache``.

``keyword_reader`` attaches a :func:`keyword_network` instead of a BERT: its start and end logits are a
fixed value per token id, so a test decides which span wins and the reader's windows, offsets and merging can be
checked exactly without training a model.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from odqa_transformers.testing import (  # noqa: F401 - pytest fixtures
    family_files,
    family_model,
    quiet_single_threaded_torch,
)

from odqa_core.testing import TOY_DOCUMENTS

VOCAB_SIZE = 500


@pytest.fixture(scope="session")
def toy_texts():
    """The texts the bootstrap vocabulary is learned from (English and Korean)."""
    return [d.text for d in TOY_DOCUMENTS]


@pytest.fixture(scope="module")
def sample():
    """``(documents, training questions, evaluation questions)`` of the bundled sample."""
    from odqa_core import data

    documents = data.load_corpus(data.sample_corpus_path())
    train = data.load_questions(data.sample_train_questions_path())
    evaluation = data.load_questions(data.sample_questions_path())
    return documents, train, evaluation


@pytest.fixture(scope="session")
def make_extractive(toy_texts):
    """``make_extractive(**options)``: a fresh micro extractive reader (random weights, seed 0) on the CPU."""
    from odqa_readers.extractive import ExtractiveReader

    def make(seed: int = 0, **options):
        return ExtractiveReader.bootstrap(toy_texts, "micro", VOCAB_SIZE, seed, device="cpu", **options)

    make()  # train (and cache) the tokenizer once
    return make


@pytest.fixture(scope="session")
def toy_tokenizer(make_extractive):
    return make_extractive().tokenizer


def keyword_network(tokenizer, start: dict[str, float], end: dict[str, float], positions: int = 512):
    """A ``torch.nn.Module`` whose start/end logit of a token is ``start[word]``/``end[word]`` (0 otherwise), where
    ``word`` is a word whose first/last WordPiece is that token."""
    import torch

    class Network(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = SimpleNamespace(max_position_embeddings=positions, model_type="bert")
            self.register_buffer("start", torch.zeros(len(tokenizer)))
            self.register_buffer("end", torch.zeros(len(tokenizer)))
            for word, value in start.items():
                self.start[tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word)[0])] = value
            for word, value in end.items():
                self.end[tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word)[-1])] = value

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            return SimpleNamespace(start_logits=self.start[input_ids], end_logits=self.end[input_ids])

    return Network()


@pytest.fixture(scope="session")
def keyword_reader(toy_tokenizer):
    """``keyword_reader(start, end, **options)``: an extractive reader over :func:`keyword_network`."""
    from odqa_readers.extractive import ExtractiveReader

    def make(start: dict[str, float], end: dict[str, float] | None = None, **options):
        reader = ExtractiveReader(device="cpu", **options)
        reader.attach(toy_tokenizer, keyword_network(toy_tokenizer, start, start if end is None else end))
        return reader

    return make
