"""The extractive reader: span decoding, windows, offsets, merging across passages, training hooks, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from odqa_readers.base import ReaderExample
from odqa_readers.extractive import DEFAULTS, ExtractiveReader, Spans, decode_spans, merge_spans

from odqa_core.errors import DataError, IndexFormatError, UsageError
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS, FakeRetriever, ReaderContract
from odqa_core.types import Document, Question, RankedResults

DOCS = {d.id: d for d in TOY_DOCUMENTS}
FILLER = " ".join([DOCS["toy-5"].text] * 12)  # about 120 tokens of known words
LONG = Document("long", f"{FILLER} {DOCS['toy-8'].text}", "Long")  # the answer, Hallasan, at the very end
VOLCANO = Question("q-volcano", "What is the volcano on Jeju Island called?", ("Hallasan",))


def results_of(rows, documents=TOY_DOCUMENTS):
    indices = np.asarray(rows, np.int64)
    return RankedResults(indices, np.zeros(indices.shape, np.float32), list(documents))


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def assert_spans_index_the_text(predictions, documents=TOY_DOCUMENTS):
    texts = {d.id: d.text for d in documents}
    for preds in predictions:
        for p in preds:
            assert texts[p.doc_id][p.start : p.start + len(p.answer)] == p.answer and p.answer


class TestExtractiveContract(ReaderContract):
    @pytest.fixture
    def make_reader(self, make_extractive):
        return make_extractive


# --- options ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, match",
    [
        ({"max_length": 0}, "max_length"),
        ({"doc_stride": -1}, "doc_stride"),
        ({"max_length": 64, "doc_stride": 64}, "doc_stride"),
        ({"max_answer_length": "30"}, "max_answer_length"),
        ({"max_question_length": 1.5}, "max_question_length"),
        ({"batch_size": 0}, "batch_size"),
        ({"top_spans_per_passage": True}, "top_spans_per_passage"),
        ({"include_title": "yes"}, "include_title"),
        ({"device": "tpu"}, "device"),
        ({"precision": "fp8"}, "precision"),
        ({"model": 3}, "model"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_bad_options_are_one_line_usage_errors(options, match):
    with pytest.raises(UsageError, match=match) as exc:
        ExtractiveReader.from_options(options)
    one_line(exc)


def test_config_is_json_and_rebuilds_before_and_after_loading(make_extractive):
    fresh = ExtractiveReader(model="somewhere", max_length=256)
    config = json.loads(json.dumps(fresh.config()))
    # Unset stored options stay unset (None: the checkpoint's value, else the default) until a model is loaded.
    assert config["max_length"] == 256 and config["doc_stride"] is None
    assert ExtractiveReader.from_options(config).config() == config
    loaded = make_extractive(max_length=256)
    config = json.loads(json.dumps(loaded.config()))
    assert config["max_length"] == 256 and config["doc_stride"] == DEFAULTS["doc_stride"]
    assert ExtractiveReader.from_options(config).config() == config


def test_max_length_beyond_the_model_positions_is_a_usage_error(make_extractive):
    with pytest.raises(UsageError, match="max_length 1024 exceeds the 512 positions") as exc:
        make_extractive(max_length=1024)
    one_line(exc)


def test_model_none_is_a_usage_error_at_warm_up():
    reader = ExtractiveReader()
    with pytest.raises(UsageError, match="needs a model") as exc:
        reader.warm_up()
    one_line(exc)


def test_missing_model_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found") as exc:
        ExtractiveReader(model=str(tmp_path / "no-such-model")).warm_up()
    one_line(exc)


# --- span decoding ----------------------------------------------------------------------------------------------

#  tokens:      [CLS] q     [SEP]  ctx    ctx    ctx     ctx      [SEP]
START = [[0.0, 9.0, 0.0, 5.0, 1.0, 0.0, 0.0, 0.0]]
END = [[0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 6.0, 0.0]]
CONTEXT = [[False, False, False, True, True, True, True, False]]
OFFSETS = [[(0, 0), (0, 5), (0, 0), (0, 4), (5, 8), (9, 12), (13, 17), (0, 0)]]


def test_decode_spans_pairs_context_tokens_and_sums_raw_logits():
    spans = decode_spans(START, END, OFFSETS, CONTEXT, top_n=20, max_answer_length=30)
    # The question token's large logits are never used; the best span is tokens 3..6 with 5 + 6.
    assert (spans.token_start[0], spans.token_end[0], spans.score[0]) == (3, 6, 11.0)
    assert (spans.char_start[0], spans.char_end[0]) == (0, 17)
    assert np.asarray(CONTEXT)[0, spans.token_start].all() and np.asarray(CONTEXT)[0, spans.token_end].all()
    assert (spans.token_end >= spans.token_start).all()
    assert (np.diff(spans.score) <= 0).all()
    assert len(spans) == 10  # every start <= end pair of the 4 context tokens


def test_decode_spans_respects_max_answer_length():
    spans = decode_spans(START, END, OFFSETS, CONTEXT, top_n=20, max_answer_length=2)
    assert (spans.token_end - spans.token_start < 2).all()
    # Tokens 5..6 and 6..6 tie at 0 + 6; the earlier start comes first.
    assert [(int(a), int(b), float(s)) for a, b, s in zip(spans.token_start, spans.token_end, spans.score)][:2] == [
        (5, 6, 6.0),
        (6, 6, 6.0),
    ]


def test_decode_spans_top_n_and_keep():
    only_best = decode_spans(START, END, OFFSETS, CONTEXT, top_n=1, max_answer_length=30)
    assert [(int(a), int(b)) for a, b in zip(only_best.token_start, only_best.token_end)] == [(3, 6)]
    # With one start and one end candidate and answers of at most 2 tokens there is no valid pair.
    assert len(decode_spans(START, END, OFFSETS, CONTEXT, top_n=1, max_answer_length=2)) == 0
    assert len(decode_spans(START, END, OFFSETS, CONTEXT, top_n=20, max_answer_length=30, keep=3)) == 3


def test_decode_spans_batches_windows_and_dedupes_equal_characters():
    start = np.array([START[0], [0, 0, 0, 1, 2, 0, 0, 0]], np.float32)
    end = np.array([END[0], [0, 0, 0, 0, 2, 1, 0, 0]], np.float32)
    # In the second window tokens 4 and 5 cover the same characters (as byte-level pieces of one character do).
    offsets = np.array([OFFSETS[0], [(0, 0), (0, 5), (0, 0), (0, 2), (2, 3), (2, 3), (3, 4), (0, 0)]])
    context = np.array([CONTEXT[0], [False, False, False, True, True, True, True, False]])
    spans = decode_spans(start, end, offsets, context, top_n=20, max_answer_length=30, keep=4)
    assert (np.diff(spans.window) >= 0).all() and set(spans.window.tolist()) == {0, 1}
    second = spans.take(spans.window == 1)
    assert (second.token_start[0], second.token_end[0], second.score[0]) == (4, 4, 4.0)
    chars = list(zip(second.char_start.tolist(), second.char_end.tolist()))
    assert len(chars) == len(set(chars)) == 4 and chars[0] == (2, 3)


def test_merge_spans_dedupes_and_breaks_ties_by_rank_then_start():
    spans = Spans(
        window=np.array([0, 1, 0, 0, 0, 0]),
        token_start=np.zeros(6, np.int64),
        token_end=np.zeros(6, np.int64),
        char_start=np.array([5, 5, 9, 0, 3, 0]),
        char_end=np.array([8, 8, 12, 4, 6, 4]),
        score=np.array([3.0, 5.0, 5.0, 5.0, 5.0, 7.0], np.float32),
    )
    group = np.array([0, 0, 0, 0, 0, 1])
    doc_row = np.array([4, 4, 2, 7, 4, 0])
    rank = np.array([1, 1, 0, 2, 1, 0])
    window = spans.window
    best = merge_spans(spans, group, doc_row, rank, window, n_best=10)
    rows = [(int(group[i]), int(doc_row[i]), int(spans.char_start[i]), float(spans.score[i])) for i in best]
    # Question 0: (doc 4, 5..8) once at its best score (window 1); ties at 5 by rank (0, 1, 1, 2) then start (3, 5).
    assert rows == [(0, 2, 9, 5.0), (0, 4, 3, 5.0), (0, 4, 5, 5.0), (0, 7, 0, 5.0), (1, 0, 0, 7.0)]
    assert window[best[2]] == 1
    assert len(merge_spans(spans, group, doc_row, rank, window, n_best=2)) == 3  # two of question 0, one of 1


# --- windows and reading ----------------------------------------------------------------------------------------


def test_a_long_passage_is_read_in_overlapping_windows(keyword_reader):
    reader = keyword_reader({"hallasan": 5.0}, max_length=40, doc_stride=8)
    windows = reader.tokenize_pairs(reader.question_sides([VOLCANO.text]), [LONG.text])
    assert len(windows) >= 4 and windows.number == list(range(len(windows)))
    assert all(len(ids) <= 40 for ids in windows.input_ids)
    spans = [[o for o, c in zip(offsets, ctx) if c] for offsets, ctx in zip(windows.offsets, windows.context)]
    for before, after in zip(spans, spans[1:]):
        assert before[-8:] == after[:8]  # doc_stride tokens shared by neighbours
    whole = reader.tokenizer(LONG.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert sorted({o for s in spans for o in s}) == [tuple(o) for o in whole]  # every passage token is read

    (preds,) = reader.read([VOLCANO], results_of([[0]], [LONG]), n_best=3)
    assert preds[0].answer == "Hallasan" and preds[0].score == pytest.approx(10.0)
    assert LONG.text[preds[0].start :].startswith("Hallasan.") and preds[0].start > 500
    assert preds[0].metadata == {"passage_rank": 0, "window": len(windows) - 1}


def test_an_answer_in_the_last_window_found_from_hand_made_logits(keyword_reader):
    reader = keyword_reader({}, max_length=48, doc_stride=16)
    windows = reader.tokenize_pairs(reader.question_sides([VOLCANO.text]), [LONG.text])
    width = max(len(ids) for ids in windows.input_ids)
    start, end = np.zeros((len(windows), width)), np.zeros((len(windows), width))
    context = np.zeros((len(windows), width), bool)
    offsets = np.zeros((len(windows), width, 2), np.int64)
    for w in range(len(windows)):
        n = len(windows.input_ids[w])
        context[w, :n], offsets[w, :n] = windows.context[w], windows.offsets[w]
    last = len(windows) - 1
    tokens = reader.tokenizer.convert_ids_to_tokens(windows.input_ids[last])
    at = {t: i for i, t in enumerate(tokens)}  # the last occurrence: the passage's, not the question's
    start[last, at["volcano"]], end[last, at["hallasan"]] = 3.0, 4.0
    spans = decode_spans(start, end, offsets, context, max_answer_length=5, keep=1)
    best = int(np.argmax(spans.score))
    assert spans.window[best] == last
    assert LONG.text[spans.char_start[best] : spans.char_end[best]] == "volcano called Hallasan"


def test_offsets_map_back_exactly_in_korean_and_english(keyword_reader, make_extractive):
    reader = keyword_reader({"배추를": 4.0, "cabbage": 1.0})
    question = TOY_QUESTIONS[1]
    (preds,) = reader.read([question], results_of([[5, 4]]), n_best=1)
    doc = DOCS["toy-6"]
    assert (preds[0].answer, preds[0].doc_id, preds[0].start) == ("배추를", "toy-6", doc.text.index("배추를"))
    # Every n-best span of a random model over every toy passage is a slice of its passage's text.
    everything = results_of([list(range(len(TOY_DOCUMENTS)))] * len(TOY_QUESTIONS))
    predictions = make_extractive().read(list(TOY_QUESTIONS), everything, n_best=1000)
    assert_spans_index_the_text(predictions)
    assert {p.doc_id for preds in predictions for p in preds} == set(DOCS)


def test_scores_compare_across_passages(keyword_reader):
    reader = keyword_reader({"seoul": 2.0, "hallasan": 4.0})
    question = Question("q", "Which place?")
    (preds,) = reader.read([question], results_of([[0, 7]]), n_best=5)
    assert (preds[0].answer, preds[0].doc_id, preds[0].score) == ("Hallasan", "toy-8", 8.0)
    assert preds[0].metadata["passage_rank"] == 1
    # Spans scoring 4 tie across both passages: the first passage's come first, then by start.
    tied = [(p.metadata["passage_rank"], p.start) for p in preds if p.score == 4.0]
    assert tied == sorted(tied) and tied[0][0] == 0 and len(tied) == 4


def test_n_best_is_deduped_across_windows_and_repeated_passages(keyword_reader):
    reader = keyword_reader({"volcano": 5.0}, max_length=48, doc_stride=20)
    doc = Document("mid", f"{FILLER} Jeju Island has a volcano called Hallasan. {FILLER}")
    windows = reader.tokenize_pairs(reader.question_sides([VOLCANO.text]), [doc.text])
    volcano = reader.tokenizer.convert_tokens_to_ids("volcano")
    holding = [
        w for w, (ids, ctx) in enumerate(zip(windows.input_ids, windows.context)) if (volcano, True) in zip(ids, ctx)
    ]
    assert len(holding) >= 2  # the answer lies in the overlap of two windows
    (preds,) = reader.read([VOLCANO], results_of([[0, 0, -1]], [doc]), n_best=10)
    keys = [(p.doc_id, p.start, len(p.answer)) for p in preds]
    assert len(preds) == 10 and len(set(keys)) == len(keys)
    assert preds[0].answer == "volcano" and preds[0].metadata == {"passage_rank": 0, "window": holding[0]}
    assert {p.metadata["passage_rank"] for p in preds} == {0}


def test_rows_without_passages_get_no_predictions(make_extractive):
    reader = make_extractive()
    predictions = reader.read(list(TOY_QUESTIONS), results_of([[-1, -1], [7, -1], [-1, -1]]), n_best=3)
    assert predictions[0] == [] and predictions[2] == []
    assert 1 <= len(predictions[1]) <= 3 and {p.doc_id for p in predictions[1]} == {"toy-8"}
    assert reader.read([], results_of(np.zeros((0, 2))), n_best=3) == []


def test_batching_and_padding_do_not_change_predictions(make_extractive):
    retriever = FakeRetriever()
    retriever.index(list(TOY_DOCUMENTS))
    questions = [*TOY_QUESTIONS, VOLCANO]
    results = retriever.search([q.text for q in questions], 4)
    batched = make_extractive(batch_size=32).read(questions, results, n_best=5)
    one_by_one = make_extractive(batch_size=1)
    for i, question in enumerate(questions):
        single = RankedResults(results.indices[i : i + 1], results.scores[i : i + 1], results.documents)
        (preds,) = one_by_one.read([question], single, n_best=5)
        assert [(p.doc_id, p.start, p.answer) for p in preds] == [(p.doc_id, p.start, p.answer) for p in batched[i]]
        np.testing.assert_allclose([p.score for p in preds], [p.score for p in batched[i]], rtol=1e-4, atol=1e-5)


def test_a_question_longer_than_max_length_is_a_one_line_usage_error(make_extractive):
    long_question = Question("q-long", " ".join(["kimchi cabbage garlic chili"] * 10))
    reader = make_extractive(max_length=32)
    with pytest.raises(UsageError, match="max_length 32 leaves 0 tokens .* question of 40 tokens") as exc:
        reader.read([long_question], results_of([[4]]), n_best=1)
    one_line(exc)
    # Cut to max_question_length tokens, the same question leaves room for the passage.
    short = make_extractive(max_length=32, max_question_length=8)
    assert len(short.tokenizer.tokenize(short.question_sides([long_question.text])[0])) == 8
    (preds,) = short.read([long_question], results_of([[4]]), n_best=1)
    assert preds and preds[0].doc_id == "toy-5"


def test_include_title_puts_the_title_on_the_question_side(keyword_reader):
    reader = keyword_reader({"hallasan": 3.0}, include_title=True)
    (preds,) = reader.read([VOLCANO], results_of([[7]]), n_best=1)
    assert preds[0].answer == "Hallasan" and DOCS["toy-8"].text[preds[0].start :].startswith("Hallasan")
    windows = reader.tokenize_pairs(reader.question_sides([VOLCANO.text], ["Jeju"]), [DOCS["toy-8"].text])
    tokens = reader.tokenizer.convert_ids_to_tokens(windows.input_ids[0])
    assert tokens[tokens.index("[SEP]") :][:3] == ["[SEP]", "jeju", "[SEP]"]  # question [SEP] title [SEP] passage


# --- training hooks ---------------------------------------------------------------------------------------------

TRAINING = [
    (TOY_QUESTIONS[0], "toy-1", "Han River"),
    (TOY_QUESTIONS[2], "toy-8", "Hallasan"),
    (Question("t-busan", "Which city has a famous fish market?"), "toy-2", "Busan"),
    (Question("t-kimchi", "What is kimchi seasoned with?"), "toy-5", "chili and garlic"),
    (Question("t-abacus", "What is the abacus used for?"), "toy-7", "arithmetic"),
    (Question("t-han", "한강은 어디로 흘러가는가?"), "toy-3", "서해로"),
    (Question("t-busan-ko", "부산은 어떤 도시인가?"), "toy-4", "항구 도시로"),
    (TOY_QUESTIONS[1], "toy-6", "배추를"),
]


def training_examples():
    examples = [ReaderExample(q, DOCS[d], a, DOCS[d].text.index(a)) for q, d, a in TRAINING]
    return [*examples, ReaderExample(TOY_QUESTIONS[0], DOCS["toy-7"])]  # a retrieved passage without the answer


def test_training_features_label_the_answer_tokens(make_extractive):
    reader = make_extractive()
    examples = training_examples()
    features = reader.training_features(examples)
    assert len(features) == len(examples)  # short passages: one window each
    tokenizer = reader.tokenizer
    for example, feature in zip(examples, features):
        assert set(feature) == {"input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"}
        start, end = feature["start_positions"], feature["end_positions"]
        if example.answer is None:
            assert start == end == 0
            continue
        assert 0 < start <= end < len(feature["input_ids"]) and feature["token_type_ids"][start] == 1
        pieces = tokenizer.convert_ids_to_tokens(feature["input_ids"][start : end + 1])
        assert tokenizer.convert_tokens_to_string(pieces) == example.answer.lower()


def test_training_features_of_a_long_passage(make_extractive):
    reader = make_extractive(max_length=40, doc_stride=8)
    example = ReaderExample(VOLCANO, LONG, "Hallasan", LONG.text.index("Hallasan"))
    features = reader.training_features([example, ReaderExample(VOLCANO, LONG, "Hallasan")])
    n = len(features) // 2
    assert n >= 4 and features[:n] == features[n:]  # a missing answer_start is the first occurrence
    labelled = [f for f in features[:n] if f["start_positions"]]
    assert len(labelled) == 1 and labelled[0] is features[n - 1]  # only the last window holds the answer
    assert all(f["start_positions"] == f["end_positions"] == 0 for f in features[: n - 1])
    with pytest.raises(DataError, match="not in passage") as exc:
        reader.training_features([ReaderExample(VOLCANO, DOCS["toy-1"], "Hallasan", 0)])
    one_line(exc)


def test_collate_pads_to_the_longest(make_extractive):
    reader = make_extractive()
    features = reader.training_features(training_examples()[:3])
    batch = reader.collate(features)
    width = max(len(f["input_ids"]) for f in features)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape == (3, width)
    assert batch["attention_mask"].sum().item() == sum(len(f["input_ids"]) for f in features)
    assert batch["start_positions"].tolist() == [f["start_positions"] for f in features]


def test_training_lowers_the_loss(make_extractive):
    import torch

    reader = make_extractive(seed=1)
    batch = reader.collate(reader.training_features(training_examples()))
    optimizer = torch.optim.AdamW(reader.network.parameters(), lr=1e-3)
    reader.network.train()
    torch.manual_seed(0)
    losses = []
    for _ in range(30):
        loss = reader.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.75 * first, losses


# --- checkpoints ------------------------------------------------------------------------------------------------


@pytest.fixture
def saved(make_extractive, tmp_path):
    reader = make_extractive(seed=2, max_length=128, doc_stride=32, max_answer_length=10)
    reader.save(tmp_path / "checkpoint", params={"epoch": 1})
    return reader, tmp_path / "checkpoint"


def test_save_and_load_round_trip_with_stored_options(saved):
    reader, path = saved
    loaded = ExtractiveReader(model=str(path), device="cpu")
    assert loaded.max_length is None
    loaded.warm_up()
    assert (loaded.max_length, loaded.doc_stride, loaded.max_answer_length) == (128, 32, 10)
    assert (loaded.max_question_length, loaded.include_title) == (64, False)
    results = results_of([[0, 5, 7], [2, 3, -1], [4, 6, 1]])
    before = reader.read(list(TOY_QUESTIONS), results, n_best=5)
    after = loaded.read(list(TOY_QUESTIONS), results, n_best=5)
    assert [[(p.doc_id, p.start, p.answer) for p in ps] for ps in after] == [
        [(p.doc_id, p.start, p.answer) for p in ps] for ps in before
    ]
    np.testing.assert_allclose([p.score for ps in after for p in ps], [p.score for ps in before for p in ps], 1e-5)
    # An option the user gives wins over the checkpoint's; the others still come from it.
    mine = ExtractiveReader(model=str(path), device="cpu", max_length=64)
    mine.warm_up()
    assert (mine.max_length, mine.doc_stride, mine.max_answer_length) == (64, 32, 10)


def test_a_huggingface_model_directory_loads_with_default_options(saved, tmp_path):
    reader, _ = saved
    reader.network.save_pretrained(str(tmp_path / "hf"))
    reader.tokenizer.save_pretrained(str(tmp_path / "hf"))
    loaded = ExtractiveReader(model=str(tmp_path / "hf"), device="cpu", max_answer_length=10)
    loaded.warm_up()
    assert (loaded.max_length, loaded.doc_stride) == (DEFAULTS["max_length"], DEFAULTS["doc_stride"])
    results = results_of([[0, 5, 7]] * 3)
    assert [p.answer for ps in loaded.read(list(TOY_QUESTIONS), results) for p in ps] == [
        p.answer for ps in reader.read(list(TOY_QUESTIONS), results) for p in ps
    ]


def test_a_corrupted_checkpoint_is_an_index_format_error(saved):
    _, path = saved
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum") as exc:
        ExtractiveReader(model=str(path), device="cpu").warm_up()
    one_line(exc)


def test_minus_null_scoring_ranks_spans_of_unanswerable_passages_low(toy_tokenizer):
    """With ``score=minus-null`` a span's score is relative to its window's no-answer ([CLS]) score."""
    from types import SimpleNamespace

    import numpy as np
    import torch
    from odqa_readers.extractive import ExtractiveReader

    from odqa_core.types import Document, Question, RankedResults

    han = toy_tokenizer.convert_tokens_to_ids(toy_tokenizer.tokenize("han")[0])
    busan = toy_tokenizer.convert_tokens_to_ids(toy_tokenizer.tokenize("busan")[0])

    class Network(torch.nn.Module):
        """Span logits 3 on 'han', 5 on 'busan'; the [CLS] (no-answer) logit is 4 in a window holding 'busan'."""

        def __init__(self) -> None:
            super().__init__()
            self.config = SimpleNamespace(max_position_embeddings=512, model_type="bert")

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            logits = torch.where(input_ids == han, 3.0, 0.0) + torch.where(input_ids == busan, 5.0, 0.0)
            has_busan = (input_ids == busan).any(dim=1)
            logits[:, 0] = torch.where(has_busan, 4.0, -4.0)
            return SimpleNamespace(start_logits=logits, end_logits=logits.clone())

    docs = [Document("b", "Busan is a port."), Document("h", "The Han flows.")]
    question = Question("q", "Which river?", ("Han",))
    results = RankedResults(np.array([[0, 1]]), np.zeros((1, 2), np.float32), docs)
    answers = {}
    for score in ("logits", "minus-null"):
        reader = ExtractiveReader(device="cpu", score=score, max_answer_length=1)
        reader.attach(toy_tokenizer, Network())
        answers[score] = reader.read([question], results, n_best=2)[0]
    assert answers["logits"][0].answer == "Busan" and answers["logits"][0].score == pytest.approx(10.0)
    assert answers["minus-null"][0].answer == "Han" and answers["minus-null"][0].score == pytest.approx(6 + 8)
    # Every span of the answerable window (even a 0 + 0 one, at 0 + 8) now outranks Busan's 10 - 8.
    assert [p.doc_id for p in answers["minus-null"]] == ["h", "h"]
