"""The shared fixtures of :mod:`odqa_transformers.testing` (torch single-threaded, the sample, vocabulary texts,
the model families)."""

from odqa_transformers.testing import (  # noqa: F401 - pytest fixtures
    family_model,
    quiet_single_threaded_torch,
    sample_documents,
    sample_questions,
    vocab_texts,
)
