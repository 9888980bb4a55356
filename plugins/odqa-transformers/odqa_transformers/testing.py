"""pytest fixtures shared by the tests of the transformer plugins (odqa-transformers, odqa-dense, odqa-readers).

A plugin's ``conftest.py`` imports the ones it uses (``from odqa_transformers.testing import ...``):

- ``quiet_single_threaded_torch`` (session, autouse where imported): torch single-threaded (on a shared 2-core
  machine two threads contend with other work and make small matrix products several times slower; one thread
  keeps results bit-for-bit reproducible), progress off, and ``ODQA_CACHE_DIR`` in the session's temporary
  directory so that nothing is written to ``~/.cache``;
- ``sample_documents``, ``sample_questions``: the bundled sample;
- ``vocab_texts``: Korean and English texts to learn a bootstrap vocabulary from;
- ``family_model``: ``family_model(name)``, a tiny offline model of a pretrained family (klue-roberta, bert, ...).
"""

from __future__ import annotations

import pytest

from odqa_core import data
from odqa_core.testing import TOY_DOCUMENTS


@pytest.fixture(scope="session", autouse=True)
def quiet_single_threaded_torch(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODQA_PROGRESS", "0")
        mp.setenv("ODQA_CACHE_DIR", str(tmp_path_factory.mktemp("odqa-cache")))
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sample_documents():
    return data.load_corpus(data.sample_corpus_path())


@pytest.fixture(scope="session")
def sample_questions():
    return data.load_questions(data.sample_questions_path())


@pytest.fixture(scope="session")
def vocab_texts(sample_documents):
    """Korean and English texts to learn a bootstrap vocabulary from (the toy corpus and the bundled sample)."""
    return [f"{d.title} {d.text}" for d in [*TOY_DOCUMENTS, *sample_documents]]


@pytest.fixture(scope="session")
def family_model(tmp_path_factory):
    """``family_model(name)``: the model directory of a family (hidden 64, one layer), built once per session."""
    from odqa_transformers.model_families import FamilyModels

    return FamilyModels(tmp_path_factory.mktemp("families"))
