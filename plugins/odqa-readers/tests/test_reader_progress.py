"""Reading says how far it is (questions, windows or chunks) and is honest about its model: a status line without a
terminal, one warning when the sample's demo model reads another corpus, a missing-model error that points to
training a reader before the demo model."""

from __future__ import annotations

import re

import numpy as np
import pytest
from odqa_readers.extractive import ExtractiveReader
from odqa_readers.generative import GenerativeReader

from odqa_core import data
from odqa_core.errors import UsageError
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS
from odqa_core.types import RankedResults

ROWS = [[0, 1, 2], [5, 4, 3]]


def results_of(rows, documents):
    indices = np.asarray(rows, np.int64)
    return RankedResults(indices, np.zeros(indices.shape, np.float32), list(documents))


@pytest.fixture
def status_lines(monkeypatch, capsys):
    """No terminal (capsys), ODQA_PROGRESS unset and a tiny interval: every progress update prints a status line.
    Returns a function giving the stderr lines printed so far."""
    monkeypatch.delenv("ODQA_PROGRESS", raising=False)
    monkeypatch.setenv("ODQA_PROGRESS_INTERVAL", "1e-9")
    return lambda: capsys.readouterr().err.splitlines()


def _counts(lines, prefix, unit):
    """The (questions, windows) counts of the status lines, in order; a line the status thread printed before the
    first update has none."""
    pattern = re.compile(rf"^{prefix}: [\d.]+/6 passages(?:, (\d)/2 questions, (\d+) {unit})?, ")
    matches = [pattern.match(line) for line in lines]
    assert all(matches), lines
    return [(int(m.group(1)), int(m.group(2))) for m in matches if m.group(1) is not None]


def test_extractive_reading_without_a_terminal_prints_questions_and_windows(make_extractive, status_lines):
    reader = make_extractive(max_length=64, doc_stride=16, window_block=2)
    status_lines()  # the bootstrap's own lines, if any
    reader.read(list(TOY_QUESTIONS[:2]), results_of(ROWS, TOY_DOCUMENTS), n_best=3)
    lines = status_lines()
    assert len(lines) >= 3  # one per block of two windows, and the last
    assert re.match(r"^extractive: reading: 6/6 passages, 2/2 questions, \d+ windows, done in \d+s$", lines[-1])
    counts = _counts(lines, "extractive: reading", "windows")
    assert counts == sorted(counts) and counts[0][1] <= 2 < counts[-1][1]


@pytest.fixture(scope="module")
def make_generative(tmp_path_factory):
    cache = tmp_path_factory.mktemp("generative-cache")

    def make(mode):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ODQA_CACHE_DIR", str(cache))
            texts = [f"{d.title} {d.text}" for d in TOY_DOCUMENTS]
            options = {"device": "cpu", "max_answer_length": 4, "max_length": 48, "chunk_stride": 8, "batch_size": 2}
            return GenerativeReader.bootstrap(texts, "micro", 300, 0, mode=mode, chunk_block=2, **options)

    return make


@pytest.mark.parametrize("mode", ["passages", "fid"])
def test_generative_reading_without_a_terminal_prints_questions_and_chunks(make_generative, status_lines, mode):
    reader = make_generative(mode)
    status_lines()  # the bootstrap's own lines (training its tokenizer)
    reader.read(list(TOY_QUESTIONS[:2]), results_of(ROWS, TOY_DOCUMENTS), n_best=2)
    lines = status_lines()
    assert re.match(r"^generative: reading: 6/6 passages, 2/2 questions, \d+ chunks, done in \d+s$", lines[-1])
    counts = _counts(lines, "generative: reading", "chunks")
    assert counts == sorted(counts) and counts[-1][1] >= 6


def test_the_sample_demo_model_on_another_corpus_warns_once(make_extractive, make_generative, capsys):
    # The demo model itself is not needed to check the warning: a micro reader that says it is one.
    reader = make_extractive(max_length=64, doc_stride=16)
    reader.model = "sample"
    for _ in range(2):
        reader.read(list(TOY_QUESTIONS[:2]), results_of(ROWS, TOY_DOCUMENTS), n_best=1)
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: reader 'extractive' uses the bundled sample's")
    assert "only the sample's 60 documents" in warnings[0] and "'odqa train reader'" in warnings[0]
    generative = make_generative("passages")
    generative.model = "sample"
    generative.read(list(TOY_QUESTIONS[:1]), results_of(ROWS[:1], TOY_DOCUMENTS), n_best=1)
    assert "warning: reader 'generative' uses the bundled sample's" in capsys.readouterr().err

    # On the sample itself, whole or cut into passages, there is nothing to warn about.
    fresh = make_extractive(max_length=64, doc_stride=16)
    fresh.model = "sample"
    for corpus in (
        data.load_corpus(data.sample_corpus_path()),
        data.load_corpus(data.sample_corpus_path(), split_words=20),
    ):
        fresh.read(list(TOY_QUESTIONS[:2]), results_of([[0, 1, 2], [3, 4, 5]], corpus), n_best=1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("reader_class", [ExtractiveReader, GenerativeReader])
def test_a_missing_model_points_to_training_a_reader_before_the_demo_model(reader_class):
    with pytest.raises(UsageError) as exc:
        reader_class().warm_up()
    message = str(exc.value)
    assert "\n" not in message
    order = [
        f"'odqa train reader --reader {reader_class.name}",
        "HF model",
        "'odqa train reader --reader extractive --model lexical'",
        f"{reader_class.name}.model=sample",
    ]
    positions = [message.find(part) for part in order]
    assert -1 not in positions and positions == sorted(positions), message
    assert "only the bundled sample's demo model" in message


def test_resolved_config_names_the_loaded_checkpoint_and_its_stored_options(make_extractive, tmp_path):
    make_extractive(max_length=64, doc_stride=16).save(tmp_path / "ckpt")
    loaded = ExtractiveReader(model=str(tmp_path / "ckpt"), device="cpu")
    assert loaded.config()["max_length"] is None  # before loading: the checkpoint decides
    loaded.warm_up()
    resolved = loaded.resolved_config()
    assert resolved["model_path"] == str(tmp_path / "ckpt") and resolved["model"] == str(tmp_path / "ckpt")
    assert (resolved["max_length"], resolved["doc_stride"]) == (64, 16)
    assert (resolved["device"], resolved["precision"]) == ("cpu", "fp32")  # precision "auto", as used on a CPU
    assert loaded.config()["precision"] == "auto"  # config() still rebuilds the reader as it was asked for


def test_training_without_a_terminal_logs_status_lines(status_lines, tmp_path):
    from odqa_readers.training import ReaderTrainConfig, train_reader

    documents = data.load_corpus(data.sample_corpus_path())
    questions = data.load_questions(data.sample_train_questions_path())[:12]
    config = ReaderTrainConfig(
        epochs=1, bootstrap_size="micro", vocab_size=600, batch_size=4, reader_options={"max_length": 96}
    )
    train_reader(documents, questions, config, tmp_path / "reader", dev_questions=questions[:4])
    lines = status_lines()
    epoch = [line for line in lines if line.startswith("epoch 1/1: ")]
    assert epoch and re.match(r"^epoch 1/1: \d+/\d+ batches, loss=\d+\.\d{3}, done in \d+s$", epoch[-1]), lines
