"""The generative reader: chunking, snapping, both reading modes, training and checkpoints — micro T5 models
(1 layer, d_model 32) bootstrapped on the toy corpus, so the file runs in seconds on a small CPU."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from odqa_readers.base import ReaderExample
from odqa_readers.generative import (
    MODES,
    GenerativeReader,
    _AnswerPool,
    _best,
    _Candidate,
    format_input,
    normalize_answer,
    passage_chunks,
    snap_answer,
)

from odqa_core.errors import UsageError
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS, FakeRetriever, ReaderContract
from odqa_core.types import Document, Question, RankedResults

VOCAB = 300
TEXTS = [f"{d.title} {d.text}" for d in TOY_DOCUMENTS]
DOCS = {d.id: d for d in TOY_DOCUMENTS}
#: Short answers keep generation from random weights cheap.
FAST = {"device": "cpu", "max_answer_length": 6}


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODQA_CACHE_DIR", str(tmp_path_factory.mktemp("generative-cache")))
        yield


def make(mode: str = "fid", seed: int = 0, **options) -> GenerativeReader:
    return GenerativeReader.bootstrap(TEXTS, "micro", VOCAB, seed, **{"mode": mode, **FAST, **options})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("generative-models")
    for mode in MODES:
        make(mode).save(root / mode)
    return {mode: root / mode for mode in MODES}


@pytest.fixture(scope="module")
def results():
    retriever = FakeRetriever()
    retriever.index(list(TOY_DOCUMENTS))
    return retriever.search([q.text for q in TOY_QUESTIONS], 3)


def toy_examples() -> list[ReaderExample]:
    """Each toy question with its gold passage and one retrieved passage without the answer (6 examples)."""
    out = []
    for q, negative in zip(TOY_QUESTIONS, ("toy-2", "toy-4", "toy-7")):
        gold = DOCS[q.doc_ids[0]]
        out.append(ReaderExample(q, gold, q.answers[0], gold.text.index(q.answers[0])))
        out.append(ReaderExample(q, DOCS[negative]))
    return out


def train(reader: GenerativeReader, features, steps: int, lr: float = 1e-3) -> list[float]:
    import torch

    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(reader.network.parameters(), lr=lr)
    batch = reader.collate(features)
    reader.network.train()
    losses = []
    for _ in range(steps):
        loss = reader.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    reader.network.eval()
    return losses


def rows(indices, documents=TOY_DOCUMENTS) -> RankedResults:
    indices = np.asarray(indices, np.int64)
    return RankedResults(indices, np.zeros(indices.shape, np.float32), list(documents))


# --- the contract, both modes ---------------------------------------------------------------------------------------


class TestFidContract(ReaderContract):
    @pytest.fixture
    def make_reader(self, checkpoints):
        return lambda: GenerativeReader(model=str(checkpoints["fid"]), **FAST)


class TestPassagesContract(ReaderContract):
    @pytest.fixture
    def make_reader(self, checkpoints):
        return lambda: GenerativeReader(model=str(checkpoints["passages"]), **FAST)


# --- options --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "span"},
        {"aggregate": "mean"},
        {"max_length": 0},
        {"chunk_stride": 384},
        {"chunk_stride": -1},
        {"max_passages": 0},
        {"num_beams": True},
        {"snap": "yes"},
        {"device": "tpu"},
        {"model": ""},
    ],
)
def test_bad_options_are_one_line_usage_errors(options):
    with pytest.raises(UsageError) as info:
        GenerativeReader(**options)
    assert "\n" not in str(info.value) and next(iter(options)) in str(info.value)


def test_config_is_json_and_rebuilds():
    reader = GenerativeReader(mode="passages", max_passages=4, aggregate="sum")
    config = json.loads(json.dumps(reader.config()))
    assert config["mode"] == "passages" and config["max_length"] == 384 and config["chunk_stride"] == 128
    assert GenerativeReader.from_options(config).config() == config


# --- chunking -------------------------------------------------------------------------------------------------------


LONG = Document(
    "long",
    " ".join(["Busan is a port city with a famous fish market."] * 6)
    + " The Han River flows through Seoul. "
    + " ".join(["Kimchi is fermented cabbage seasoned with chili and garlic."] * 6),
    "Long",
)
LONG_QUESTION = Question("lq", "Which river flows through Seoul?", ("Han River",))


def test_chunks_cover_a_long_passage_with_overlap():
    reader = make("passages", max_length=40, chunk_stride=8)
    tokenizer = reader.tokenizer
    (chunks,) = passage_chunks(tokenizer, [(LONG_QUESTION.text, LONG)], 40, 8)
    prefix = tokenizer(format_input(LONG_QUESTION.text, LONG.title))["input_ids"][:-1]  # [CLS] prefix, no [SEP]
    context = tokenizer(LONG.text, add_special_tokens=False)["input_ids"]
    window = 40 - len(prefix) - 1
    assert len(chunks) > 3
    assert all(len(c.input_ids) <= 40 and c.input_ids[: len(prefix)] == prefix for c in chunks)
    assert [c.input_ids[-1] for c in chunks] == [tokenizer.sep_token_id] * len(chunks)
    pieces = [c.input_ids[len(prefix) : -1] for c in chunks]
    assert all(len(p) == window for p in pieces[:-1])
    for before, after in zip(pieces, pieces[1:]):
        assert before[-8:] == after[:8]  # chunk_stride tokens of overlap
    # Every context token is in some chunk: dropping the overlaps gives the passage's tokens back.
    assert pieces[0] + [t for p in pieces[1:] for t in p[8:]] == context
    assert chunks[0].start == 0 and chunks[-1].end == len(LONG.text)
    assert all(a.start < b.start < a.end < b.end for a, b in zip(chunks, chunks[1:]))


def test_the_answer_chunk_gets_the_answer_and_the_others_the_empty_answer():
    reader = make("passages", max_length=40, chunk_stride=8)
    eos = reader.tokenizer.sep_token_id
    answer = reader.tokenizer("Han River", add_special_tokens=False)["input_ids"] + [eos]
    at = LONG.text.index("Han River")
    examples = [ReaderExample(LONG_QUESTION, LONG, "Han River", at), ReaderExample(LONG_QUESTION, DOCS["toy-2"])]
    (chunks, negative) = passage_chunks(reader.tokenizer, [(LONG_QUESTION.text, e.document) for e in examples], 40, 8)
    features = reader.training_features(examples)
    assert len(features) == len(chunks) + len(negative)
    holds = [c.start <= at and at + 9 <= c.end for c in chunks]
    assert 0 < sum(holds) < len(chunks)
    assert [f["labels"] for f in features[: len(chunks)]] == [answer if h else [eos] for h in holds]
    assert [f["labels"] for f in features[len(chunks) :]] == [[eos]] * len(negative)  # no answer: every chunk
    assert [f["input_ids"] for f in features] == [c.input_ids for c in chunks + negative]

    fid = make("fid", max_length=40, chunk_stride=8).training_features(examples)
    assert fid == [{"chunks": [c.input_ids for c in chunks + negative], "labels": answer}]
    batch = reader.collate(fid)
    assert tuple(batch["input_ids"].shape) == (1, len(chunks) + len(negative), 40)
    assert batch["labels"].tolist() == [answer]


def test_a_question_longer_than_max_length_is_a_usage_error(results):
    reader = make("passages", max_length=24)
    question = Question("q", " ".join(["Which river flows through Seoul?"] * 4))
    with pytest.raises(UsageError, match="fewer than 16") as info:
        reader.read([question], rows([[0]]))
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match="fewer than 16"):
        reader.training_features([ReaderExample(question, DOCS["toy-1"])])


# --- snapping -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "text", "expected"),
    [
        ("han river", "The Han River flows through Seoul.", "Han River"),
        ("서울", "한강은 서울을 가로질러 서해로 흘러가는 강이다.", "서울"),
        ("배추", "김치는 배추를 고춧가루와 마늘로 양념해 발효시킨 음식이다.", "배추"),
        ("1 , 000", "It costs 1,000 won.", "1,000"),
        ("han river", "The Han \n River flows.", "Han \n River"),
        ("han", "The ＨＡＮ river", "ＨＡＮ"),  # NFKC: full-width letters
        ("café", "un cafe\u0301 noir", "cafe\u0301"),  # a combining accent stays with its letter
        ("han", "hanriver and han", "han"),  # a match on word boundaries is preferred
    ],
)
def test_snap_finds_the_exact_passage_text(answer, text, expected):
    span = snap_answer(answer, text)
    assert span is not None and text[span[0] : span[1]] == expected
    assert normalize_answer(text[span[0] : span[1]]) == normalize_answer(answer)


def test_snap_prefers_word_boundaries_and_reports_misses():
    assert snap_answer("han", "hanriver and han") == (13, 16)
    assert snap_answer("han", "hanriver") == (0, 3)  # no word-boundary match: the first one
    assert snap_answer("busan", "The Han River flows.") is None
    assert snap_answer("  ", "The Han River flows.") is None
    assert snap_answer("fine", "ﬁne") == (0, 3)  # NFKC: the ligature is two letters
    assert snap_answer("f", "ﬁne") is None  # would split the ligature


# --- reading --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_empty_retrieval_rows_give_no_predictions(mode):
    reader = make(mode)
    predictions = reader.read(list(TOY_QUESTIONS[:2]), rows([[-1, -1], [0, -1]]), n_best=2)
    assert predictions[0] == [] and len(predictions[1]) >= 1
    assert all(p.metadata["mode"] == mode for p in predictions[1])
    assert reader.read([], rows(np.zeros((0, 2)))) == []


@pytest.mark.parametrize("mode", MODES)
def test_batching_does_not_change_predictions(mode, results):
    one, many = make(mode, batch_size=1, num_beams=2), make(mode, batch_size=16, num_beams=2)
    for a, b in zip(one.read(list(TOY_QUESTIONS), results, 3), many.read(list(TOY_QUESTIONS), results, 3)):
        assert [(p.answer, p.doc_id) for p in a] == [(p.answer, p.doc_id) for p in b]
        np.testing.assert_allclose([p.score for p in a], [p.score for p in b], rtol=1e-4, atol=1e-4)


def test_fid_reads_at_most_max_passages(results, monkeypatch):
    reader = make("fid", max_passages=1)
    seen = []
    encode = reader._fid_encode
    monkeypatch.setattr(reader, "_fid_encode", lambda ids, mask: (seen.append(ids.shape[1]), encode(ids, mask))[1])
    reader.read(list(TOY_QUESTIONS), results)
    assert seen == [1]  # one group of three questions, each with one passage of one chunk


def pooled(aggregate, candidates):
    pool = _AnswerPool(aggregate)
    for candidate in candidates:
        pool.add(candidate)
    return pool.pooled()


def test_passage_answers_are_pooled_with_max_or_sum():
    han = [_Candidate("Han River", math.log(0.3), DOCS["toy-1"], r, 4) for r in (0, 1)]
    busan = _Candidate("Busan", math.log(0.5), DOCS["toy-2"], 2, 0)
    spaced = _Candidate("han  river", math.log(0.1), None, 3, None)
    by_max = _best("q", pooled("max", [*han, busan, spaced]), 5, "passages")
    assert [(p.answer, p.metadata["passage_rank"]) for p in by_max] == [("Busan", 2), ("Han River", 0)]
    by_sum = _best("q", pooled("sum", [*han, busan, spaced]), 5, "passages")
    assert [p.answer for p in by_sum] == ["Han River", "Busan"]
    assert by_sum[0].score == pytest.approx(math.log(0.7)) and by_sum[0].start == 4


# --- training -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_training_reduces_the_loss(mode):
    reader = make(mode, max_length=64)
    features = reader.training_features(toy_examples())
    assert len(features) == (3 if mode == "fid" else 6)
    losses = train(reader, features, 30)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5


@pytest.mark.parametrize("mode", MODES)
def test_an_overfit_model_generates_the_answer_snapped_to_the_passage(mode):
    import torch

    reader = make(mode, max_length=64, num_beams=2)
    question, passage = TOY_QUESTIONS[0], DOCS["toy-1"]
    train(reader, reader.training_features([ReaderExample(question, passage, "Han River", 4)]), 120, lr=3e-3)
    (predictions,) = reader.read([question], rows([[0]]), n_best=2)
    best = predictions[0]
    assert (best.answer, best.doc_id, best.start, best.metadata) == (
        "Han River",
        "toy-1",
        4,
        {"mode": mode, "passage_rank": 0},
    )
    # The score is the log-probability of the generated sequence (answer tokens and the end token).
    batch = reader.collate(reader.training_features([ReaderExample(question, passage, "Han River", 4)]))
    with torch.no_grad():
        loss = reader.training_loss(batch)
    assert best.score == pytest.approx(-float(loss) * batch["labels"].shape[1], abs=1e-3)
    unsnapped = make(mode, max_length=64, snap=False)
    unsnapped.attach(reader.tokenizer, reader.network)
    (plain,) = unsnapped.read([question], rows([[0]]), n_best=1)
    assert plain[0].answer == "han river" and plain[0].start is None


def test_a_model_trained_to_say_nothing_gives_no_prediction():
    reader = make("passages", max_length=64)
    train(reader, reader.training_features([ReaderExample(TOY_QUESTIONS[0], DOCS["toy-2"])]), 40, lr=3e-3)
    assert reader.read([TOY_QUESTIONS[0]], rows([[1]])) == [[]]


# --- checkpoints ----------------------------------------------------------------------------------------------------


def test_save_load_round_trip_restores_predictions_and_stored_options(results, tmp_path):
    reader = make("passages", max_length=64, chunk_stride=16, num_beams=2)
    before = reader.read(list(TOY_QUESTIONS), results, n_best=3)
    reader.save(tmp_path / "ckpt")
    loaded = GenerativeReader(model=str(tmp_path / "ckpt"), num_beams=2, **FAST)
    after = loaded.read(list(TOY_QUESTIONS), results, n_best=3)
    assert (loaded.mode, loaded.max_length, loaded.chunk_stride) == ("passages", 64, 16)
    for a, b in zip(before, after):
        assert [(p.answer, p.doc_id, p.start) for p in a] == [(p.answer, p.doc_id, p.start) for p in b]
        np.testing.assert_allclose([p.score for p in a], [p.score for p in b], rtol=1e-5, atol=1e-5)
    overridden = GenerativeReader(model=str(tmp_path / "ckpt"), mode="fid", max_length=80, device="cpu")
    overridden.warm_up()
    assert (overridden.mode, overridden.max_length, overridden.chunk_stride) == ("fid", 80, 16)


def test_train_reader_trains_and_checkpoints_a_generative_reader(tmp_path, monkeypatch):
    from odqa_readers.training import ReaderTrainConfig, train_reader

    from odqa_core import data

    monkeypatch.setenv("ODQA_PROGRESS", "0")
    documents = data.load_corpus(data.sample_corpus_path())
    questions = data.load_questions(data.sample_train_questions_path())[:24]
    options = {"mode": "fid", "max_length": 96, "chunk_stride": 24, "max_answer_length": 6}
    config = ReaderTrainConfig(
        reader="generative",
        bootstrap_size="micro",
        vocab_size=600,
        batch_size=8,
        epochs=1,
        retrieved=1,
        reader_options=options,
        device="cpu",
        seed=0,
    )
    report = train_reader(documents, questions[6:], config, tmp_path / "run", dev_questions=questions[:6], echo=str)
    assert report["done"] and report["n_features"] == 18  # fid: one feature per question
    reader = GenerativeReader(model=str(tmp_path / "run" / "best"), device="cpu")
    reader.warm_up()
    assert (reader.mode, reader.max_length, reader.chunk_stride, reader.max_answer_length) == ("fid", 96, 24, 6)
