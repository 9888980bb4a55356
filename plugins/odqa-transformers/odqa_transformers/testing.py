"""pytest fixtures shared by the tests of the transformer plugins (odqa-transformers, odqa-dense, odqa-readers).

A plugin's ``conftest.py`` imports the ones it uses (``from odqa_transformers.testing import ...``):

- ``quiet_single_threaded_torch`` (session, autouse where imported): torch single-threaded (on a shared 2-core
  machine two threads contend with other work and make small matrix products several times slower; one thread
  keeps results bit-for-bit reproducible), progress off, and ``ODQA_CACHE_DIR`` in the session's temporary
  directory so that nothing is written to ``~/.cache``;
- ``sample_documents``, ``sample_questions``: the bundled sample;
- ``vocab_texts``: Korean and English texts to learn a bootstrap vocabulary from;
- ``family_model``: ``family_model(name)``, a tiny offline model of a pretrained family (klue-roberta, bert, ...);
- ``family_files``: ``(corpus, questions)`` files of the family passages and their dozen questions, and
  ``train_family_dpr`` to train a family's DPR on them (``FAMILY_DPR_SETTINGS``).

And for what every ``odqa train`` command of these plugins shares: ``BAD_FOLD_ARGUMENTS`` (a parametrize table)
and ``assert_bad_fold_is_a_usage_error`` for its ``--folds``/``--fold`` options, and
``assert_a_second_training_is_refused`` for its output lock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from odqa_core import data
from odqa_core.testing import TOY_DOCUMENTS, assert_one_line_error, output_held_elsewhere, run_cli, write_toy_files

#: ``odqa train dpr`` settings for the dozen family questions: short inputs, no hard negatives (six passages), acc@1
#: selects.
FAMILY_DPR_SETTINGS = (
    "--device cpu --passage-max-length 64 --query-max-length 32 --batch-size 4 --hard-negatives 0 --eval-k 1,5 "
    "--select acc@1 --pooling mean --warmup 0 --seed 0"
)


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


@pytest.fixture(scope="session")
def family_files(tmp_path_factory):
    """``(corpus, questions)`` files of the family passages and their dozen questions."""
    from odqa_transformers.model_families import FAMILY_DOCUMENTS, FAMILY_QUESTIONS

    return write_toy_files(tmp_path_factory.mktemp("family-data"), FAMILY_DOCUMENTS, FAMILY_QUESTIONS)


def train_family_dpr(model: str | Path, family_files: tuple[Path, Path], output: Path, epochs: int) -> None:
    """``odqa train dpr`` of ``model`` on the dozen family questions, its dev set too (the best epoch is the one
    that learned them best), into ``output`` (lr 5e-3 and :data:`FAMILY_DPR_SETTINGS`); it must succeed."""
    corpus, questions = family_files
    result = run_cli(
        f"train dpr --model {model} --corpus {corpus} --questions {questions} --dev-questions {questions} "
        f"--output {output} --epochs {epochs} --lr 5e-3 {FAMILY_DPR_SETTINGS}"
    )
    assert result.exit_code == 0, result.output


#: ``(arguments, what the error says)``: fold choices a training command refuses before it starts.
BAD_FOLD_ARGUMENTS = [
    ("--folds 5 --fold 6", "fold 6 is out of range for folds 5"),
    ("--fold 1", "needs a k-fold run"),
]


def assert_bad_fold_is_a_usage_error(command: str, arguments: str, contains: str, output: Path) -> None:
    """``odqa <command> --output <output> <arguments>`` is a one-line usage error (exit 2) that writes nothing."""
    result = run_cli(f"{command} --output {output} {arguments}")
    assert_one_line_error(result, code=2, contains=contains)
    assert not output.exists()


def assert_a_second_training_is_refused(command: str, output: Path) -> None:
    """``odqa <command> --output <output>`` while another process writes ``output``: a one-line error naming that
    process (exit 1), and nothing written."""
    with output_held_elsewhere(output) as pid:
        result = run_cli(f"{command} --output {output}")
    assert_one_line_error(result, code=1, contains=f"{output} is being written by another odqa process (pid {pid})")
    assert not output.exists()
