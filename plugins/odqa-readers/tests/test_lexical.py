"""The lexical reader (odqa_readers.lexical): candidates, features, training, storage, reading through the
extractive reader, the training command and the Kiwi-less path. Tiny data: a few synthetic Korean passages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from odqa_readers import lexical
from odqa_readers.extractive import ExtractiveReader
from odqa_readers.lexical import (
    FEATURE_GROUPS,
    LexicalModel,
    LexicalSettings,
    TrainingPassage,
    is_lexical_store,
    passage_table,
    question_type,
    trim_particle,
)

from odqa_core.errors import DataError, IndexFormatError, UsageError
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS, ReaderContract
from odqa_core.types import Document, Question, RankedResults

#: (name, year, city) facts: a passage per fact, asked "when" and "where" in a fixed pattern.
PEOPLE = [
    ("김철수", "1901", "서울"),
    ("이영희", "1923", "부산"),
    ("박민수", "1945", "대구"),
    ("최지훈", "1950", "인천"),
    ("정수진", "1962", "광주"),
    ("강동원", "1971", "대전"),
    ("조은비", "1988", "울산"),
    ("윤서준", "1899", "전주"),
    ("장하늘", "1934", "청주"),
    ("임도윤", "1957", "제주"),
    ("한지민", "1966", "춘천"),
    ("오세훈", "1979", "포항"),
]
FILLERS = ["그는 어려서부터 음악을 좋아했다.", "많은 사람이 그를 기억한다.", "그의 작품은 널리 알려져 있다."]


def corpus() -> list[Document]:
    docs = []
    for i, (name, year, city) in enumerate(PEOPLE):
        filler = FILLERS[i % len(FILLERS)]
        text = f"{filler} {name}은 {year}년에 {city}에서 태어났다. 이후 {name}은 화가로 활동하였다."
        docs.append(Document(f"p{i}", text, name))
    return docs


def questions(docs: list[Document]) -> list[Question]:
    out = []
    for i, ((name, year, city), doc) in enumerate(zip(PEOPLE, docs)):
        out.append(Question(f"when-{i}", f"{name}은 몇 년에 태어났나?", (f"{year}년",), (), (doc.id,)))
        out.append(Question(f"where-{i}", f"{name}은 어디에서 태어났나?", (city,), (), (doc.id,)))
    return out


def gold_rows(qs: list[Question], docs: list[Document]) -> RankedResults:
    row = {d.id: i for i, d in enumerate(docs)}
    indices = np.asarray([[row[q.doc_ids[0]]] for q in qs], np.int64)
    return RankedResults(indices, np.zeros(indices.shape, np.float32), docs)


def training_data(qs: list[Question], docs: list[Document]):
    by_id = {d.id: d for d in docs}
    return qs, [[TrainingPassage(by_id[q.doc_ids[0]], q.answers)] for q in qs]


SMALL = {"hash_bits": 14, "idf_bits": 10, "max_iter": 60}


@pytest.fixture(scope="module")
def toy_model() -> LexicalModel:
    docs = corpus()
    qs, passages = training_data(questions(docs)[:16], docs)
    return LexicalModel.train(qs, passages, docs, LexicalSettings(**SMALL))


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


# --- candidates -------------------------------------------------------------------------------------------------


def candidate_texts(text: str, **settings) -> list[str]:
    table = passage_table([text], LexicalSettings(**settings), lexical._Hasher(), use_kiwi=False)
    return [text[a:b] for a, b in zip(table.cand_start.tolist(), table.cand_end.tolist())]


def test_particles_are_trimmed_as_alternative_ends():
    found = candidate_texts("세종대왕이 1446년에 훈민정음을 반포하였다.")
    for span in ("세종대왕이", "세종대왕", "1446년에", "1446년", "훈민정음", "세종대왕이 1446년에", "반포하였다"):
        assert span in found
    assert trim_particle("서울에서는") == "서울"
    assert trim_particle("서울에서는", longest=False) == "서울에서"
    assert trim_particle("이") == "이"  # nothing would remain


def test_tokens_split_before_brackets_and_spans_do_not_cross_sentences():
    found = candidate_texts("부산(釜山)은 항구 도시다. 서울은 수도이다.")
    assert "부산" in found and "(釜山)은" in found and "釜山)은" in found
    assert not any("도시다. 서울" in span for span in found)
    assert "도시다" in found and "도시다." in found  # closing punctuation dropped as an alternative end


def test_candidate_offsets_are_exact_slices_and_distinct():
    text = '  "한국"의 수도는   서울이다.\n인구는 약 1,000만 명이다. '
    table = passage_table([text], LexicalSettings(), lexical._Hasher(), use_kiwi=False)
    spans = list(zip(table.cand_start.tolist(), table.cand_end.tolist()))
    assert len(spans) == len(set(spans))
    for a, b in spans:
        assert 0 <= a < b <= len(text) and text[a:b].strip() == text[a:b]
    assert "한국" in [text[a:b] for a, b in spans]  # quotes dropped from both ends


def test_max_words_bounds_the_span_length():
    words = "가 나 다 라 마 바 사"
    assert max(len(s.split()) for s in candidate_texts(words, max_words=2)) == 2
    assert max(len(s.split()) for s in candidate_texts(words, max_words=4)) == 4


# --- features ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, expected",
    [
        ("부산국제영화제는 몇 년부터 열렸나?", "몇/년"),
        ("훈민정음은 언제 반포되었나?", "언제"),
        ("한글을 만든 사람은 누구인가?", "누구"),
        ("김치는 무엇으로 만드는 음식인가?", "무엇"),
        ("어느 나라의 수도인가?", "어느/나라"),
        ("Which river flows through Seoul?", "what/ri"),  # qualified by the next word's first two letters
        ("서울의 인구", "none"),
    ],
)
def test_question_types(question, expected):
    words = question.split()
    assert question_type(words)[0] == expected


def numeric_column(builder, template: str) -> int:
    return int(lexical._mix(builder.hasher(template), np.zeros(1, np.uint64))[0] & np.uint64(builder.dim - 1))


def test_window_overlap_and_span_overlap_features():
    settings = LexicalSettings(features=("match",), hash_bits=18)
    docs = corpus()
    builder = lexical.FeatureBuilder(settings, lexical.idf_table([d.text for d in docs], 10), use_kiwi=False)
    table = builder.passages([docs[0].text])
    qtable = builder.questions(["김철수은 몇 년에 태어났나?"])
    one = np.zeros(1, np.int64)
    matrix, _, row_cand = builder.rows(table, qtable, one, one, one, np.zeros(1))
    spans = [docs[0].text[a:b] for a, b in zip(table.cand_start[row_cand], table.cand_end[row_cand])]
    values = matrix.toarray()
    left1 = values[:, numeric_column(builder, "m:l1")]
    inside = values[:, numeric_column(builder, "m:in")]
    year = spans.index("1901년")
    # "1901년" follows 김철수은 (a question word) and precedes 태어났다 (another, by its stem's bigrams only).
    assert left1[year] > 0 and inside[year] == 0
    assert inside[spans.index("김철수")] > 0  # the span repeats a question word
    assert left1[spans.index("그는")] == 0


# --- training, reading, storage -----------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_learns_the_pattern(toy_model):
    assert toy_model.info["loss"] < toy_model.info["initial_loss"] / 4
    docs = corpus()
    held = questions(docs)[16:]
    nbest = toy_model.read(held, gold_rows(held, docs), n_best=3)
    correct = sum(p[0].answer in q.answers for q, p in zip(held, nbest))
    assert correct >= len(held) - 1


def test_nbest_is_ordered_with_probabilities_over_all_passages(toy_model):
    docs = corpus()
    qs = questions(docs)[16:20]
    indices = np.asarray([[8, 9, 10], [9, -1, 8], [11, 10, 9], [-1, -1, -1]], np.int64)
    results = RankedResults(indices, np.asarray([[3, 2, 1]] * 4, np.float32), docs)
    nbest = toy_model.read(qs, results, n_best=4)
    assert nbest[3] == []
    for q, preds in zip(qs[:3], nbest[:3]):
        assert len(preds) == 4
        scores = [p.score for p in preds]
        assert scores == sorted(scores, reverse=True)
        probabilities = [p.metadata["probability"] for p in preds]
        assert 0 < sum(probabilities) <= 1 + 1e-9
        assert np.allclose(np.log(probabilities), scores)
        texts = {d.id: d.text for d in docs}
        for p in preds:
            assert texts[p.doc_id][p.start : p.start + len(p.answer)] == p.answer
            assert p.question_id == q.id
    assert nbest[0][0].answer in qs[0].answers and nbest[0][0].doc_id == "p8"


def test_reading_in_small_blocks_gives_the_same_answers(toy_model):
    docs = corpus()
    qs = questions(docs)
    indices = np.asarray([[i % 12, (i + 5) % 12, -1] for i in range(len(qs))], np.int64)
    results = RankedResults(indices, np.ones(indices.shape, np.float32), docs)
    assert toy_model.read(qs, results, n_best=3, pair_block=1) == toy_model.read(qs, results, n_best=3)


def test_save_and_load_give_identical_predictions(toy_model, tmp_path):
    toy_model.save(tmp_path / "lex", params={"note": "x"})
    assert is_lexical_store(tmp_path / "lex")
    loaded = LexicalModel.load(tmp_path / "lex")
    assert loaded.settings == toy_model.settings and loaded.use_kiwi == toy_model.use_kiwi
    docs = corpus()
    qs = questions(docs)
    assert loaded.read(qs, gold_rows(qs, docs), n_best=3) == toy_model.read(qs, gold_rows(qs, docs), n_best=3)
    assert not list(tmp_path.glob(".*"))  # no temporaries left behind


def test_two_trainings_give_identical_arrays(toy_model):
    docs = corpus()
    qs, passages = training_data(questions(docs)[:16], docs)
    again = LexicalModel.train(qs, passages, docs, LexicalSettings(**SMALL))
    assert np.array_equal(again.weights, toy_model.weights) and np.array_equal(again.idf, toy_model.idf)


def test_corrupted_or_foreign_stores_are_refused_in_one_line(toy_model, tmp_path):
    toy_model.save(tmp_path / "lex")
    weights = tmp_path / "lex" / "weights.npy"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum") as exc:
        LexicalModel.load(tmp_path / "lex")
    one_line(exc)
    toy_model.save(tmp_path / "future")
    manifest = tmp_path / "future" / "manifest.json"
    meta = json.loads(manifest.read_text())
    meta["format_version"] = lexical.STORE_VERSION + 1
    manifest.write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match="format version") as exc:
        ExtractiveReader(model=str(tmp_path / "future")).warm_up()
    one_line(exc)


def test_settings_are_validated_in_one_line():
    with pytest.raises(UsageError, match="feature group") as exc:
        LexicalSettings.from_options({"features": "span,nope"})
    one_line(exc)
    with pytest.raises(UsageError, match="unknown lexical reader option"):
        LexicalSettings.from_options({"epochs": 3})
    with pytest.raises(UsageError, match="l2"):
        LexicalSettings.from_options({"l2": -1})
    assert LexicalSettings.from_options({"features": "span, cross"}).features == ("span", "cross")


def test_training_without_a_findable_answer_is_a_data_error():
    docs = corpus()
    q = Question("q", "무엇인가?", ("없는 답",), (), ("p0",))
    with pytest.raises(DataError, match="candidate"):
        LexicalModel.train([q], [[TrainingPassage(docs[0], q.answers)]], docs, LexicalSettings(**SMALL))


# --- through the extractive reader ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    """A lexical model trained on the toy corpus's three questions (contract tests read with it)."""
    docs = list(TOY_DOCUMENTS)
    by_id = {d.id: d for d in docs}
    passages = [[TrainingPassage(by_id[q.doc_ids[0]], q.answers)] for q in TOY_QUESTIONS]
    model = LexicalModel.train(list(TOY_QUESTIONS), passages, docs, LexicalSettings(**SMALL))
    path = tmp_path_factory.mktemp("lexical") / "toy"
    model.save(path)
    return path


class TestExtractiveLexicalContract(ReaderContract):
    @pytest.fixture
    def make_reader(self, toy_store):
        return lambda: ExtractiveReader(model=str(toy_store))


def test_extractive_reader_reads_with_a_lexical_model(toy_model, tmp_path):
    toy_model.save(tmp_path / "lex")
    reader = ExtractiveReader(model=str(tmp_path / "lex"))
    docs = corpus()
    qs = questions(docs)[16:]
    assert reader.read(qs, gold_rows(qs, docs), n_best=2) == toy_model.read(qs, gold_rows(qs, docs), n_best=2)
    assert reader.network is None and reader.include_title is False
    with pytest.raises(UsageError, match="include_title"):
        ExtractiveReader(model=str(tmp_path / "lex"), include_title=True).warm_up()


# --- Kiwi absent --------------------------------------------------------------------------------------------------


@pytest.fixture
def no_kiwi(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("kiwipiepy"):
            raise ImportError("no kiwipiepy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(lexical, "_KIWI", None)
    monkeypatch.setattr(lexical, "_KIWI_FAILED", False)


def test_without_kiwi_training_and_reading_work(no_kiwi, tmp_path):
    docs = corpus()
    qs, passages = training_data(questions(docs)[:16], docs)
    notes = []
    model = LexicalModel.train(qs, passages, docs, LexicalSettings(**SMALL), echo=notes.append)
    assert model.use_kiwi is False and any("kiwipiepy" in n for n in notes)
    held = questions(docs)[16:]
    nbest = model.read(held, gold_rows(held, docs), n_best=1)
    assert sum(p[0].answer in q.answers for q, p in zip(held, nbest)) >= len(held) - 1


def test_a_kiwi_model_without_kiwi_is_a_one_line_data_error(toy_model, tmp_path, monkeypatch):
    if not toy_model.use_kiwi:
        pytest.skip("kiwipiepy is not installed: the toy model has no Kiwi features")
    toy_model.save(tmp_path / "lex")
    monkeypatch.setattr(lexical, "_KIWI", None)
    monkeypatch.setattr(lexical, "_KIWI_FAILED", True)
    docs = corpus()
    with pytest.raises(DataError, match="kiwipiepy") as exc:
        LexicalModel.load(tmp_path / "lex").read(questions(docs)[:1], gold_rows(questions(docs)[:1], docs))
    one_line(exc)


# --- commands -----------------------------------------------------------------------------------------------------


def test_train_reader_lexical_then_run_on_the_sample(tmp_path, monkeypatch):
    from odqa_core.testing import assert_one_line_error, run_cli

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "lex"
    result = run_cli(
        f"train reader --model lexical --output {out} --lexical-option max_iter=30 --lexical-option hash_bits=16"
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "lexical" and report["best"]["epoch"] == 1 and report["epochs"][0]["dev"]["f1"] > 0
    assert is_lexical_store(out / "best")
    run = run_cli(
        f"run --retriever bm25 --reader extractive -o extractive.model={out}/best --output-dir {tmp_path}/run"
    )
    assert run.exit_code == 0, run.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["reader_metrics"]["f1"] > 0
    nbest = json.loads((tmp_path / "run" / "nbest_predictions.json").read_text())
    assert nbest and all(entries for entries in nbest.values())
    bad = run_cli(f"train reader --model lexical --output {tmp_path}/x --lexical-option features=span,bogus")
    assert_one_line_error(bad, contains="bogus")
    assert sorted(os.listdir(tmp_path)) == ["lex", "run"]


def test_lexical_options_need_the_lexical_model():
    from odqa_readers.training import ReaderTrainConfig

    with pytest.raises(UsageError, match="lexical"):
        ReaderTrainConfig(lexical_options={"l2": 1.0}).validate()
    with pytest.raises(UsageError, match="extractive"):
        ReaderTrainConfig(reader="generative", model="lexical").validate()
    assert ReaderTrainConfig(model="lexical", lexical_options={"features": ["span"]}).validate()


def test_feature_groups_are_documented():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    for group in FEATURE_GROUPS:
        assert f"`{group}`" in text


def test_a_sweep_trains_and_reads_a_lexical_model(tmp_path):
    from reader_testdata import reader_top_k_sweep

    rows = reader_top_k_sweep(tmp_path, 'model = "lexical"\nlexical_options = { max_iter = 30, hash_bits = 16 }')
    for row in rows:
        assert 0.0 < float(row["exact_match"]) <= float(row["f1"]) <= 100.0
    (model,) = (tmp_path / "out" / "cache" / "models").iterdir()
    assert is_lexical_store(model / "epoch-1")


def test_reading_with_a_lexical_model_imports_no_torch(toy_model, tmp_path):
    import subprocess
    import sys

    toy_model.save(tmp_path / "lex")
    check = f"""
import sys
import numpy as np
from odqa_core import plugins
from odqa_core.types import Document, Question, RankedResults
doc = Document("d", "이영희은 1923년에 부산에서 태어났다.")
reader = plugins.create("reader", "extractive", {{"model": {str(tmp_path / "lex")!r}}})
results = RankedResults(np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32), [doc])
(predictions,) = reader.read([Question("q", "이영희은 몇 년에 태어났나?")], results, n_best=1)
assert predictions[0].answer == "1923년", predictions
assert "torch" not in sys.modules, "reading with a lexical model imported torch"
"""
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr


def test_a_gold_passage_the_retriever_missed_is_not_placed_at_the_bottom_of_the_list():
    from types import SimpleNamespace

    docs = corpus()
    qs = questions(docs)[:2]
    retrieved = RankedResults(
        np.asarray([[3, 0, 5], [7, 8, -1]], np.int64), np.asarray([[9, 5, 1], [4, 2, 0]], np.float32), docs
    )
    trainer = lexical.LexicalTrainer([], [], docs, SimpleNamespace(), Path("."), echo=print, questions=qs)
    trainer.retrieved = retrieved
    placed = trainer._placement()
    assert placed[(qs[0].id, "p0")] == (1, 0.5) and placed[(qs[0].id, "p5")] == (2, 1.0)
    assert placed[(qs[1].id, "p8")] == (1, 1.0)
    assert placed[(qs[1].id, "")] == (lexical.UNPLACED, 0.0)  # q1's gold p0 was not retrieved
    # Reading never meets an unplaced passage; training gives it columns of its own.
    settings = LexicalSettings(features=("passage",), hash_bits=16)
    builder = lexical.FeatureBuilder(settings, lexical.idf_table([d.text for d in docs], 10), use_kiwi=False)
    table = builder.passages([docs[0].text])
    qtable = builder.questions([qs[1].text])
    one = np.zeros(1, np.int64)
    placed_rows, _, _ = builder.rows(table, qtable, one, one, np.asarray([2]), np.ones(1))
    unplaced_rows, _, _ = builder.rows(table, qtable, one, one, np.asarray([lexical.UNPLACED]), np.ones(1))
    column = numeric_column(builder, "p:unplaced")
    assert (unplaced_rows.toarray()[:, column] == 1).all() and (placed_rows.toarray()[:, column] == 0).all()
    assert (unplaced_rows.toarray()[:, numeric_column(builder, "p:gap")] == 0).all()
