"""Reader training (examples, the loop, k-fold, retrieved passages), ``odqa train reader`` and ``odqa run`` with a
reader end to end on the bundled sample — micro bootstrap models throughout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from odqa_readers.base import gold_results
from odqa_readers.training import ReaderTrainConfig, reader_examples, train_reader
from odqa_transformers.testing import assert_a_second_training_is_refused
from reader_testdata import train_micro_reader

from odqa_core import data
from odqa_core.errors import DataError, UsageError
from odqa_core.testing import assert_one_line_error, run_cli
from odqa_core.types import Document, Question, RankedResults

MICRO = {"bootstrap_size": "micro", "vocab_size": 600, "batch_size": 8, "lr": 2e-3, "seed": 0}
SMALL_WINDOWS = {"max_length": 96, "doc_stride": 32}


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    documents, train, evaluation = sample
    out = tmp_path_factory.mktemp("reader") / "run"
    config = ReaderTrainConfig(epochs=2, reader_options=SMALL_WINDOWS, **MICRO)
    report = train_reader(documents, train[:60], config, out, dev_questions=evaluation[:20])
    return out, report


# --- examples -----------------------------------------------------------------------------------------------------


def test_examples_label_gold_spans_and_retrieved_no_answer_passages():
    docs = [
        Document("a", "Seoul is the capital. The Han River flows through Seoul."),
        Document("b", "Busan is a port."),
        Document("c", "The Han River is long."),
    ]
    q = Question("q", "Which river flows through Seoul?", ("Han River",), answer_starts=(26,), doc_ids=("a",))
    retrieved = RankedResults(np.array([[0, 1, 2, -1]]), np.zeros((1, 4), np.float32), docs)
    examples, owners = reader_examples(docs, [q], retrieved)
    assert owners == [0, 0, 0]
    gold, no_answer, other = examples
    assert (gold.document.id, gold.answer, gold.answer_start) == ("a", "Han River", 26)
    assert docs[0].text[26 : 26 + 9] == "Han River"
    assert (no_answer.document.id, no_answer.has_answer) == ("b", False)  # retrieved, lacks the answer
    assert (other.document.id, other.answer_start) == ("c", 4)  # retrieved and holds the answer: a span too


def test_a_wrong_answer_start_falls_back_to_the_first_occurrence():
    docs = [Document("a", "x Han River y Han River")]
    q = Question("q", "?", ("Han River",), answer_starts=(5,), doc_ids=("a",))
    (example,), _ = reader_examples(docs, [q])
    assert example.answer_start == 2


def test_gold_results_needs_a_gold_passage_for_every_question():
    docs = [Document("a", "Han River")]
    assert gold_results([Question("q", "?", ("Han River",), doc_ids=("a",))], docs).indices.tolist() == [[0]]
    with pytest.raises(DataError, match="no gold passage"):
        gold_results([Question("q", "?", ("x",), doc_ids=("zzz",))], docs)


def test_cloze_questions_ask_for_an_exact_span_of_their_passage():
    from odqa_readers.training import CLOZE_CONTEXT, cloze_examples

    long = " ".join(f"word{i}" for i in range(40))
    docs = [
        Document("k", "세종대왕은 1443년에 훈민정음을 만들었다. 한글날은 10월 9일이며 공휴일이다."),
        Document("e", "The modern Olympic Games were founded by Pierre de Coubertin in 1894."),
        Document("short", "Too short."),
        Document("long", f"{long} Seoul {long}."),
    ]
    examples = cloze_examples(docs, 10, seed=0)
    assert examples and {e.document.id for e in examples} == {"k", "e", "long"}
    for e in examples:
        assert e.document.text[e.answer_start : e.answer_start + len(e.answer)] == e.answer
        assert e.answer not in e.question.text and (
            "무엇" in e.question.text
            or "몇" in e.question.text
            or "what" in e.question.text
            or "how many" in e.question.text
        )
        assert e.question.metadata["cloze"] is True
        assert len(e.question.text.split()) <= 2 * CLOZE_CONTEXT + 1
    answers = {e.answer for e in examples}
    assert {"1443년", "훈민정음", "Coubertin", "1894"} <= answers
    assert "세종대왕은" not in answers and "훈민정음을" not in answers  # particles are not part of a noun answer
    assert cloze_examples(docs, 10, seed=0) == examples  # seeded


def test_cloze_examples_join_the_training_set(sample, tmp_path):
    documents, train, _ = sample
    config = ReaderTrainConfig(epochs=1, cloze=2, reader_options=SMALL_WINDOWS, **MICRO)
    report = train_reader(documents, train[:20], config, tmp_path / "cloze")
    assert report["n_examples"] > 20 + len(documents)


# --- the loop -----------------------------------------------------------------------------------------------------


def test_training_writes_best_checkpoint_and_report(trained):
    out, report = trained
    assert (out / "best" / "manifest.json").is_file() and (out / "best" / "model.safetensors").is_file()
    saved = json.loads((out / "report.json").read_text())
    assert saved["done"] and len(saved["epochs"]) == 2
    for row in saved["epochs"]:
        assert 0 <= row["dev"]["exact_match"] <= 100 and 0 <= row["dev"]["f1"] <= 100
    best = max(saved["epochs"], key=lambda r: r["metric"])
    assert saved["best"] == {"epoch": best["epoch"], "metric": best["metric"]}
    manifest = json.loads((out / "best" / "manifest.json").read_text())
    assert manifest["name"] == "extractive" and manifest["params"]["epoch"] == best["epoch"]
    assert manifest["config"]["max_length"] == 96  # the reader options travel with the checkpoint


def test_training_lowers_the_loss(trained):
    epochs = trained[1]["epochs"]
    assert epochs[-1]["loss"] < epochs[0]["loss"]


def test_checkpoint_reads_with_its_stored_options(trained, sample):
    from odqa_core import plugins

    documents, _, evaluation = sample
    reader = plugins.create("reader", "extractive", {"model": str(trained[0] / "best")})
    reader.warm_up()
    assert reader.config()["max_length"] == 96
    preds = reader.read(evaluation[:3], gold_results(evaluation[:3], documents), n_best=2)
    assert len(preds) == 3 and all(1 <= len(p) <= 2 for p in preds)


def test_kfold_keeps_the_best_fold(sample, tmp_path):
    documents, train, _ = sample
    config = ReaderTrainConfig(epochs=1, folds=2, reader_options=SMALL_WINDOWS, **MICRO)
    report = train_reader(documents, train[:30], config, tmp_path / "kf")
    assert [f["fold"] for f in report["folds"]] == [1, 2]
    assert report["best_fold"] in (1, 2) and (tmp_path / "kf" / "best" / "manifest.json").is_file()
    assert report["metric_mean"] == pytest.approx(sum(f["metric"] for f in report["folds"]) / 2)


def test_retrieved_passage_training_adds_no_answer_examples(sample, tmp_path):
    documents, train, _ = sample
    config = ReaderTrainConfig(epochs=1, retrieved=3, reader_options=SMALL_WINDOWS, **MICRO)
    report = train_reader(documents, train[:20], config, tmp_path / "ret")
    assert report["n_no_answer_examples"] > 0
    assert report["n_examples"] > 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"retrieved": -1}, "retrieved must be 0"),
        ({"cloze": -2}, "cloze must be 0"),
        ({"select": "acc"}, "select must be one of"),
        ({"metric": "bleu"}, "metric must be one of"),
        ({"reader": "nope"}, "reader 'nope' is not available"),
        ({"reader_options": {"bogus": 1}}, "unknown option 'bogus'"),
        ({"reader_options": {"device": "cpu"}}, "--device"),
        ({"bootstrap_size": "huge"}, "unknown bootstrap size"),
    ],
)
def test_bad_settings_fail_before_training(changes, message, sample, tmp_path):
    documents, train, _ = sample
    with pytest.raises(UsageError, match=message):
        train_reader(documents, train, ReaderTrainConfig(**{**MICRO, **changes}), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_questions_without_answers_cannot_train(sample, tmp_path):
    documents, train, _ = sample
    bare = [Question(q.id, q.text) for q in train[:5]]
    with pytest.raises(DataError, match="no answers"):
        train_reader(documents, bare, ReaderTrainConfig(**MICRO), tmp_path / "x")


# --- command line -------------------------------------------------------------------------------------------------


def test_train_reader_command(tmp_path):
    rows = data.load_questions(data.sample_train_questions_path())[:24]
    result, out, questions = train_micro_reader(tmp_path, rows, epochs=1)
    assert result.exit_code == 0, result.output
    assert (out / "best" / "manifest.json").is_file()
    again = run_cli(f"train reader --questions {questions} --output {out} --bootstrap micro --epochs 1")
    assert_one_line_error(again, 2, "not empty")


@pytest.mark.parametrize(
    ("arguments", "contains"),
    [
        ("--epochs 0", "epochs must be a positive integer"),
        ("--reader nope", "reader 'nope' is not available"),
        ("-o bogus=1", "unknown option 'bogus'"),
        ("-o max_length=ten", "max_length"),
        ("--questions missing.jsonl", "missing.jsonl"),
    ],
)
def test_train_reader_bad_input(arguments, contains, tmp_path):
    result = run_cli(f"train reader --output {tmp_path / 'o'} {arguments}")
    assert_one_line_error(result, None, contains)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_run_on_the_sample_trains_demo_models_on_first_use(tmp_path, monkeypatch):
    """The README's main command, with the demo recipes shrunk to micro models so the test stays fast."""
    from odqa_dense import sample as dense_sample
    from odqa_readers import sample as reader_sample

    monkeypatch.setenv("ODQA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(
        dense_sample,
        "DPR_RECIPE",
        {**dense_sample.DPR_RECIPE, "bootstrap_size": "micro", "epochs": 1, "ict_epochs": 1, "vocab_size": 600},
    )
    # The demo extractive reader is the lexical span scorer: fewer iterations, and no Kiwi, keep it quick.
    lexical = {"max_iter": 20, "features": ["span", "cross", "match", "align", "passage"]}
    monkeypatch.setitem(
        reader_sample.RECIPES, "extractive", {**reader_sample.RECIPES["extractive"], "lexical_options": lexical}
    )
    out = tmp_path / "out"
    result = run_cli(f"run --retriever bm25 --fuser cross --reader extractive --top-k 5 --output-dir {out}")
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {
        "run.jsonl",
        "summary.json",
        "predictions.json",
        "nbest_predictions.json",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["retrievers"] == ["bm25", "dpr"] and summary["fuser"] == "cross"
    assert summary["components"]["dpr"]["model"] == "sample"
    assert summary["reader_metrics"]["n_scored"] == len(data.load_questions(data.sample_questions_path()))
    # Training the demo models on the way is timed apart from the indexing and reading it happened in.
    assert set(summary["timings"]) == {"train_s", "index_s", "retrieve_s", "read_s"}
    assert summary["timings"]["train_s"] > 0
    assert "answers (5 of 107 questions; ✓ exact match):" in result.output
    predictions = json.loads((out / "predictions.json").read_text())
    assert all(isinstance(v, str) for v in predictions.values())
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "sample-models").iterdir())
    assert cached == ["dpr", "extractive"]
    # Second run: the cached models are reused, nothing is trained again.
    assert summary["reader_metrics"]["exact_match"] > 0  # the lexical demo answers some questions exactly
    cached_files = (tmp_path / "cache" / "sample-models").rglob("*")
    mtimes = {p: p.stat().st_mtime for p in cached_files if p.suffix in (".safetensors", ".npy")}
    assert any(p.suffix == ".npy" for p in mtimes) and any(p.suffix == ".safetensors" for p in mtimes)
    again = run_cli(
        f"run --retriever bm25 --fuser cross --reader extractive --top-k 5 --output-dir {tmp_path / 'o2'}"
    )
    assert again.exit_code == 0, again.output
    assert "first use" not in again.output
    assert json.loads((tmp_path / "o2" / "summary.json").read_text())["timings"]["train_s"] == 0.0
    assert {p: p.stat().st_mtime for p in mtimes} == mtimes
    assert json.loads((tmp_path / "o2" / "predictions.json").read_text()) == predictions


def test_run_on_own_corpus_without_a_reader_model_is_a_one_line_error(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "Han River"}) + "\n")
    result = run_cli(f"run --retriever bm25 --reader extractive --corpus {corpus} --output-dir {tmp_path / 'o'}")
    assert_one_line_error(result, 2, "needs a model")
    assert not (tmp_path / "o").exists()


def test_missing_reader_model_is_a_one_line_error(tmp_path):
    result = run_cli(
        f"run --retriever bm25 --reader extractive -o extractive.model={tmp_path / 'none'} "
        f"--output-dir {tmp_path / 'o'}"
    )
    assert_one_line_error(result, None, "not found")
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def dpr_checkpoint(sample, tmp_path_factory):
    from odqa_dense.encoder import BiEncoder  # a DPR checkpoint as odqa train dpr writes it
    from odqa_transformers.bootstrap import bootstrap_encoder

    documents = sample[0]
    texts = [f"{d.title} {d.text}" if d.title else d.text for d in documents]
    tokenizer, model = bootstrap_encoder(texts, "micro", 600)
    path = tmp_path_factory.mktemp("dpr") / "ckpt"
    BiEncoder.from_models(tokenizer, model, pooling="mean").save(path)
    return path, model


def test_an_extractive_reader_can_start_from_a_dpr_encoder(sample, dpr_checkpoint):
    import torch
    from odqa_readers.training import initial_reader

    path, encoder = dpr_checkpoint
    config = ReaderTrainConfig(model=str(path), reader_options=SMALL_WINDOWS, **MICRO).validate()
    reader = initial_reader(sample[0], config)
    own = reader.network.bert.embeddings.word_embeddings.weight
    assert torch.equal(own.cpu(), encoder.embeddings.word_embeddings.weight)
    assert len(reader.tokenizer) == encoder.config.vocab_size  # the DPR's own tokenizer


def test_a_generative_reader_cannot_start_from_a_dpr_encoder(sample, dpr_checkpoint, tmp_path):
    config = ReaderTrainConfig(reader="generative", model=str(dpr_checkpoint[0]), **MICRO)
    with pytest.raises(UsageError, match="cannot start from an encoder"):
        train_reader(sample[0], sample[1][:10], config, tmp_path / "g")


def test_a_second_reader_training_into_the_same_output_is_refused(tmp_path):
    assert_a_second_training_is_refused("train reader --bootstrap micro --epochs 1", tmp_path / "reader")
