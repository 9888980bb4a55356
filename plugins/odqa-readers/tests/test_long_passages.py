"""Passages of any length: tokenized in bounded pieces, read in windows streamed in bounded blocks, with progress.

The windows must be exactly the ones the tokenizer's own overflowing tokens give (checked on WordPiece, byte-level
BPE and SentencePiece-Unigram tokenizers), and reading in blocks must give exactly the answers of reading at once.
Memory bounds are checked by counting what is held (windows per block, characters per tokenizer call, pieces
tokenized ahead), never by timing.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odqa_readers import windows as windows_module
from odqa_readers.extractive import ExtractiveReader, Windows
from odqa_readers.generative import GenerativeReader, passage_chunks, stream_chunks
from odqa_readers.windows import WindowCursor, cuts_are_seamless, piece_bounds, stream_windows, token_pieces

from odqa_core.errors import UsageError
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS
from odqa_core.types import Document, Question, RankedResults

TEXTS = [d.text for d in TOY_DOCUMENTS]
WORDS = " ".join(TEXTS).split()
VOLCANO = Question("q-volcano", "What is the volcano on Jeju Island called?", ("Hallasan",))


def long_text(words: int, seed: int = 0) -> str:
    """Toy-corpus words in a random order, with the spacing a real text has (double spaces, newlines, tabs)."""
    rng = random.Random(seed)
    separators = [" "] * 12 + ["  ", "\n", " \n ", "\t"]
    return "".join(rng.choice(WORDS) + rng.choice(separators) for _ in range(words)) + "끝."


def results_of(rows, documents):
    indices = np.asarray(rows, np.int64)
    return RankedResults(indices, np.zeros(indices.shape, np.float32), list(documents))


def as_tuples(predictions):
    return [[(p.doc_id, p.start, p.answer, p.score, p.metadata) for p in preds] for preds in predictions]


# --- tokenizers of the families users bring ---------------------------------------------------------------------


def _fast(tokenizer):
    from transformers import PreTrainedTokenizerFast

    specials = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>"}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", **specials)


def byte_level_bpe(add_prefix_space: bool = False):
    """RoBERTa-style: byte-level BPE, ``<s> q </s></s> p </s>``, offsets trimmed of the leading space. With
    ``add_prefix_space`` its post-processor keeps the first token's leading space in the offsets (as it would a
    space it had added itself)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TEXTS, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=add_prefix_space
    )
    return _fast(tokenizer)


def sentencepiece_unigram(prepend_normalizer: bool = False):
    """XLM-R-style: NFKC, runs of spaces collapsed, Metaspace, a Unigram model. With ``prepend_normalizer`` the
    Llama-style normaliser that puts "▁" before every text instead (which cutting a text at spaces changes)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.Unigram())
    if prepend_normalizer:
        tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tokenizer.pre_tokenizer = None
    else:
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace("  ", " ")])
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(TEXTS, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return _fast(tokenizer)


@pytest.fixture(scope="module")
def family_tokenizers(toy_tokenizer):
    return {
        "wordpiece": toy_tokenizer,
        "byte-level-bpe": byte_level_bpe(),
        "byte-level-bpe-prefix-space": byte_level_bpe(add_prefix_space=True),
        "unigram": sentencepiece_unigram(),
    }


FAMILIES = ("wordpiece", "byte-level-bpe", "unigram")


def reader_with(tokenizer, use_token_types: bool, **options) -> ExtractiveReader:
    """An extractive reader over ``tokenizer`` with a stand-in network (its windows are what is tested)."""
    import torch

    class Network(torch.nn.Module):
        config = SimpleNamespace(max_position_embeddings=512, model_type="bert")

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            zeros = torch.zeros(input_ids.shape)
            return SimpleNamespace(start_logits=zeros, end_logits=zeros)

    reader = ExtractiveReader(device="cpu", **options)
    reader.attach(tokenizer, Network())
    reader.use_token_types = use_token_types  # both ways, whatever the network: the windows must match either way
    return reader


# --- pieces -------------------------------------------------------------------------------------------------------


def test_piece_bounds_cut_long_texts_at_single_spaces_only():
    text = long_text(3000)
    bounds = piece_bounds(text, 500)
    assert bounds[0] == 0 and bounds[-1] == len(text) and len(bounds) > 10
    for start, end in zip(bounds, bounds[1:]):
        assert 0 < end - start <= 500
    for cut in bounds[1:-1]:
        assert text[cut] == " " and not text[cut - 1].isspace() and not text[cut + 1].isspace()
    assert piece_bounds("short text", 500) == [0, 10] and piece_bounds("", 500) == [0, 0]
    # A stretch without a space is not cut: its piece reaches the next space.
    spaceless = "가" * 1200 + " 끝 " + "나" * 10
    assert piece_bounds(spaceless, 500) == [0, 1200, len(spaceless)]


@pytest.mark.parametrize("family", [*FAMILIES, "byte-level-bpe-prefix-space"])
def test_a_text_tokenized_in_pieces_has_the_whole_texts_tokens(family, family_tokenizers, monkeypatch):
    tokenizer = family_tokenizers[family]
    text = long_text(2500)
    whole = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 400)
    pieces = list(token_pieces(tokenizer, [text]))
    assert len(pieces) > 20 and [p.last for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert np.concatenate([p.ids for p in pieces]).tolist() == whole["input_ids"]
    assert np.concatenate([p.offsets for p in pieces]).tolist() == [list(o) for o in whole["offset_mapping"]]


def test_a_tokenizer_that_marks_every_texts_start_still_gets_the_whole_texts_tokens(monkeypatch):
    tokenizer = sentencepiece_unigram(prepend_normalizer=True)  # "▁" before every text, no word splitting
    text = long_text(400)
    whole = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 200)
    pieces = list(token_pieces(tokenizer, [text]))
    assert np.concatenate([p.ids for p in pieces]).tolist() == whole["input_ids"]
    assert np.concatenate([p.offsets for p in pieces]).tolist() == [list(o) for o in whole["offset_mapping"]]


def test_a_tokenizer_whose_tokens_change_where_a_text_is_cut_gets_passages_whole(toy_tokenizer, monkeypatch):
    def character_pairs(texts, **kwargs):  # a "tokenizer" of character pairs counted from each text's start
        encoded = toy_tokenizer(texts, **kwargs)
        encoded["input_ids"] = [[len(t)] * (len(t) // 2) for t in texts]
        encoded["offset_mapping"] = [[(2 * i, 2 * i + 2) for i in range(len(t) // 2)] for t in texts]
        return encoded

    assert not cuts_are_seamless(character_pairs) and cuts_are_seamless(toy_tokenizer)
    text = long_text(400)
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 200)
    (piece,) = token_pieces(character_pairs, [text])
    assert piece.last and len(piece.ids) == len(text) // 2


def test_short_texts_share_calls_and_no_call_exceeds_the_bound(toy_tokenizer, monkeypatch):
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 300)
    calls = []

    def counting(texts, **kwargs):
        calls.append(sum(map(len, texts)))
        return toy_tokenizer(texts, **kwargs)

    texts = [*TEXTS, long_text(600), "", *TEXTS]
    pieces = list(token_pieces(counting, texts))
    assert [p.text for p in pieces if p.last] == list(range(len(texts)))  # every text, in order, empty included
    assert max(calls) <= 300 + 40 and len(calls) < len(pieces)  # a piece's call holds the word before it too


# --- windows --------------------------------------------------------------------------------------------------------


def test_window_cursor_follows_the_overflowing_rule():
    def starts(n, room, step, limit=None):
        cursor = WindowCursor(room, step, limit=limit)
        return [(s, e) for _, s, e in cursor.windows(n, True)], cursor.cut

    assert starts(0, 10, 6) == ([(0, 0)], False)  # an empty passage is one (empty) window
    assert starts(10, 10, 6) == ([(0, 10)], False)
    assert starts(11, 10, 6) == ([(0, 10), (6, 11)], False)
    assert starts(16, 10, 6) == ([(0, 10), (6, 16)], False)
    assert starts(17, 10, 6) == ([(0, 10), (6, 16), (12, 17)], False)
    assert starts(17, 10, 6, limit=2) == ([(0, 10), (6, 16)], True)
    assert starts(16, 10, 6, limit=2) == ([(0, 10), (6, 16)], False)  # the limit reached at the end cuts nothing
    # Fed piece by piece, a cursor gives the same windows, each as soon as the tokens seen decide it.
    cursor, got = WindowCursor(10, 6), []
    for end in (3, 9, 10, 16, 17):
        got.append([(s, e) for _, s, e in cursor.windows(end, end == 17)])
    assert got == [[], [], [], [(0, 10)], [(6, 16), (12, 17)]]


def overflowing_windows(reader: ExtractiveReader, firsts, passages) -> Windows:
    """The reference: the tokenizer's own overflowing tokens, one call for every pair (how odqa made windows
    before streaming them)."""
    tokenizer = reader.tokenizer
    out = Windows([], [] if reader.use_token_types else None, [], [], [], [])
    lengths = [len(ids) for ids in tokenizer(list(firsts), add_special_tokens=False)["input_ids"]]
    for pair, (first, passage, n) in enumerate(zip(firsts, passages, lengths)):
        room = reader.max_length - n - tokenizer.num_special_tokens_to_add(pair=True)
        encoded = tokenizer(
            [first],
            [passage],
            truncation="only_second",
            max_length=reader.max_length,
            stride=min(reader.doc_stride, room // 2),
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_token_type_ids=reader.use_token_types,
        )
        for w in range(len(encoded["input_ids"])):
            out.input_ids.append(encoded["input_ids"][w])
            if out.token_type_ids is not None:
                out.token_type_ids.append(encoded["token_type_ids"][w])
            out.offsets.append([tuple(o) for o in encoded["offset_mapping"][w]])
            out.context.append([s == 1 for s in encoded.sequence_ids(w)])
            out.pair.append(pair)
            out.number.append(w)
    return out


@pytest.mark.parametrize("use_token_types", [True, False])
@pytest.mark.parametrize("family", FAMILIES)
def test_windows_are_the_tokenizers_overflowing_tokens(family, use_token_types, family_tokenizers, monkeypatch):
    reader = reader_with(family_tokenizers[family], use_token_types, max_length=72, doc_stride=12)
    reader.max_question_length = 20
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 250)  # the long passages are tokenized in pieces
    firsts = reader.question_sides([VOLCANO.text, "짧은 질문", "", VOLCANO.text])
    passages = [long_text(400, 1), TEXTS[0], long_text(300, 2), ""]
    streamed = reader.tokenize_pairs(firsts, passages)
    assert len(streamed) > 15
    reference = overflowing_windows(reader, firsts, passages)
    if family == "unigram" and use_token_types:
        # tokenizers' TemplateProcessing gives the passage of every overflowing window but the first segment id 1,
        # where its template ("<s> $A </s> </s> $B </s>") says 0, as the first window has it; odqa's windows follow
        # the template in every window (a model with one segment type would fail on a 1).
        assert all(set(t) == {0} for t, n in zip(reference.token_type_ids, reference.number) if n == 0)
        assert any(1 in t for t in reference.token_type_ids)
        reference.token_type_ids = [[0] * len(ids) for ids in reference.input_ids]
    assert streamed == reference


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    max_length=st.integers(28, 96),
    doc_stride=st.integers(0, 40),
    words=st.integers(0, 150),
    question=st.sampled_from([q.text for q in TOY_QUESTIONS]),
    seed=st.integers(0, 5),
)
def test_windows_match_overflowing_tokens_for_any_lengths(
    keyword_reader, max_length, doc_stride, words, question, seed
):
    reader = keyword_reader({}, max_length=max_length, max_question_length=8)
    reader.doc_stride = doc_stride  # capped at half the room, as the overflowing reference is
    firsts = reader.question_sides([question])
    passages = [long_text(words, seed) if words else ""]
    assert reader.tokenize_pairs(firsts, passages) == overflowing_windows(reader, firsts, passages)


def test_windows_are_made_as_the_pieces_come(toy_tokenizer, monkeypatch):
    """The first windows of a long passage exist before most of it is tokenized: nothing waits for the whole."""
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 300)
    tokenized = []

    def counting(texts, **kwargs):
        tokenized.append(sum(map(len, texts)))
        return toy_tokenizer(texts, **kwargs)

    text = long_text(3000)
    stream = stream_windows(counting, [text], [[WindowCursor(30, 20)]])
    next(stream)
    assert sum(tokenized) < 600  # a piece and the tokenizer's check on a 70-character probe, of 15,000 characters
    assert sum(1 for _ in stream) > 100 and sum(tokenized) > len(text)


# --- reading in blocks --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_documents():
    volcano = next(d for d in TOY_DOCUMENTS if "Hallasan" in d.text)
    return [
        Document("long-1", f"{long_text(1500, 3)} {volcano.text} {long_text(500, 4)}", "Long one"),
        *TOY_DOCUMENTS[:3],
        Document("long-2", long_text(800, 5), "Long two"),
    ]


def read_with(make_extractive, documents, rows, questions=None, **options):
    questions = questions or [VOLCANO, *TOY_QUESTIONS][: len(rows)]
    reader = make_extractive(max_length=64, doc_stride=16, **options)
    return reader.read(questions, results_of(rows, documents), n_best=7)


ROWS = [[0, 1, 4], [4, 0, 0], [2, 0, -1], [3, 4, 1]]  # long passages read by several questions, one twice


def test_reading_in_blocks_gives_exactly_the_answers_of_reading_at_once(make_extractive, long_documents):
    # One window per forward pass: a window's logits do not depend on its batch, so any difference would be the
    # blocks' (windows lost, duplicated, mislabelled, or an n-best merged wrongly).
    at_once = read_with(make_extractive, long_documents, ROWS, batch_size=1)
    assert all(at_once) and {p.doc_id for preds in at_once for p in preds} >= {"long-1", "long-2"}
    for block in (1, 2, 7, 64):
        assert as_tuples(read_with(make_extractive, long_documents, ROWS, batch_size=1, window_block=block)) == (
            as_tuples(at_once)
        )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(block=st.integers(1, 300), n_best=st.integers(1, 12))
def test_any_block_size_keeps_each_questions_n_best(make_extractive, long_documents, block, n_best):
    questions = [VOLCANO, *TOY_QUESTIONS]
    results = results_of(ROWS, long_documents)
    at_once = make_extractive(max_length=64, doc_stride=16, batch_size=1).read(questions, results, n_best=n_best)
    blocks = make_extractive(max_length=64, doc_stride=16, batch_size=1, window_block=block)
    assert as_tuples(blocks.read(questions, results, n_best=n_best)) == as_tuples(at_once)


def test_blocks_with_batches_agree_with_one_block(make_extractive, long_documents):
    one = read_with(make_extractive, long_documents, ROWS)
    many = read_with(make_extractive, long_documents, ROWS, window_block=5)
    for a, b in zip(one, many):
        assert [(p.doc_id, p.start, p.answer, p.metadata) for p in a] == [
            (p.doc_id, p.start, p.answer, p.metadata) for p in b
        ]
        np.testing.assert_allclose([p.score for p in a], [p.score for p in b], rtol=1e-5, atol=1e-6)


def test_reading_holds_at_most_a_block_of_windows_and_tokenizes_in_bounded_calls(
    make_extractive, long_documents, monkeypatch
):
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 1000)
    reader = make_extractive(max_length=64, doc_stride=16, window_block=6)
    blocks, calls = [], []
    score, tokenize = reader._score_windows, windows_module._tokenize

    def counting_blocks(block, n_best):
        blocks.append(len(block))
        return score(block, n_best)

    def counting_calls(tokenizer, texts):
        calls.append(sum(map(len, texts)))
        return tokenize(tokenizer, texts)

    monkeypatch.setattr(reader, "_score_windows", counting_blocks)
    monkeypatch.setattr(windows_module, "_tokenize", counting_calls)
    reader.read([VOLCANO, TOY_QUESTIONS[0]], results_of([[0, 1], [0, -1]], long_documents), n_best=3)
    assert len(long_documents[0].text) > 10 * 1000  # the passage is far longer than a call
    assert sum(blocks) > 20 * 6 and max(blocks) <= 6
    assert max(calls) <= 1000 + 40
    assert sum(calls) < 1.5 * len(long_documents[0].text)  # read by two questions, tokenized once


def test_max_windows_per_passage_reads_the_first_windows_and_warns(make_extractive, long_documents, capsys):
    rows = [[0, 1], [4, 2]]
    read_with(make_extractive, long_documents, rows)
    assert "warning" not in capsys.readouterr().err
    capped = read_with(make_extractive, long_documents, rows, max_windows_per_passage=3)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read only the first 3 windows of 2 of 4 passages" in err
    assert "max_windows_per_passage=3" in err
    assert all(p.metadata["window"] < 3 for preds in capped for p in preds)
    with pytest.raises(UsageError, match="option 'max_windows_per_passage' must be a positive integer, got 0"):
        ExtractiveReader(max_windows_per_passage=0)
    with pytest.raises(UsageError, match="option 'window_block' must be a positive integer"):
        ExtractiveReader(window_block=-2)


@pytest.mark.parametrize("forced, shown", [("1", True), ("0", False)])
def test_reading_shows_progress_in_passages(make_extractive, long_documents, monkeypatch, capsys, forced, shown):
    monkeypatch.setenv("ODQA_PROGRESS", forced)
    read_with(make_extractive, long_documents, [[0, 4]], window_block=8)
    err = capsys.readouterr().err
    assert ("extractive: reading" in err and "passage" in err) is shown
    if shown:
        assert "2.00/2.00" in err  # fractions of the long passages along the way, both whole at the end


# --- the generative reader --------------------------------------------------------------------------------------


GENERATIVE = {"device": "cpu", "max_answer_length": 4, "max_length": 48, "chunk_stride": 8}


@pytest.fixture(scope="module")
def make_generative(tmp_path_factory):
    cache = tmp_path_factory.mktemp("generative-cache")

    def make(mode, **options):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ODQA_CACHE_DIR", str(cache))
            texts = [f"{d.title} {d.text}" for d in TOY_DOCUMENTS]
            return GenerativeReader.bootstrap(texts, "micro", 300, 0, mode=mode, **{**GENERATIVE, **options})

    return make


def test_chunks_streamed_in_pieces_are_the_chunks_of_the_whole_passage(toy_tokenizer, long_documents, monkeypatch):
    pairs = [(VOLCANO.text, long_documents[0]), ("짧은 질문", long_documents[1]), (VOLCANO.text, long_documents[0])]
    whole = passage_chunks(toy_tokenizer, pairs, 48, 8)
    monkeypatch.setattr(windows_module, "TOKENIZE_CHARS", 300)
    assert passage_chunks(toy_tokenizer, pairs, 48, 8) == whole
    capped = [[] for _ in pairs]
    for pair, _, chunk, _ in stream_chunks(toy_tokenizer, pairs, 48, 8, limit=4):
        capped[pair].append(chunk.input_ids.tolist())
    assert capped == [[c.input_ids for c in chunks[:4]] for chunks in whole]


def test_generative_passages_mode_in_blocks_gives_the_answers_of_one_block(make_generative, long_documents):
    questions = [VOLCANO, TOY_QUESTIONS[0]]
    results = results_of([[0, 1], [4, 0]], long_documents)
    one = make_generative("passages", batch_size=1).read(questions, results, n_best=5)
    assert any(one)
    blocks = make_generative("passages", batch_size=1, chunk_block=3).read(questions, results, n_best=5)
    assert as_tuples(blocks) == as_tuples(one)


def test_fid_reads_at_most_max_chunks_per_question_and_warns(make_generative, long_documents, monkeypatch, capsys):
    reader = make_generative("fid", max_chunks=10, batch_size=4)
    groups = []
    generate = reader._generate_fid

    def counting(group, *args):
        groups.append([len(inputs) for _, inputs in group])
        return generate(group, *args)

    monkeypatch.setattr(reader, "_generate_fid", counting)
    questions = [VOLCANO, TOY_QUESTIONS[0], TOY_QUESTIONS[1]]
    reader.read(questions, results_of([[0, 1], [1, 2], [4, -1]], long_documents), n_best=3)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(fid) read only the first 10 chunks" in err and "of 2 of 3 questions" in err
    assert groups == [[10], [2], [10]]  # whole questions, grouped up to batch_size chunks


def test_max_chunks_per_passage_cuts_each_passage_and_warns(make_generative, long_documents, capsys):
    reader = make_generative("passages", max_chunks_per_passage=2)
    generated = []
    generate = reader._generate

    def counting(**inputs):
        generated.append(len(inputs["input_ids"]))
        return generate(**inputs)

    reader._generate = counting
    reader.read([VOLCANO], results_of([[0, 1, 4]], long_documents), n_best=20)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "read only the first 2 chunks of 2 of 3 passages (max_chunks_per_passage=2)" in err
    short = len(passage_chunks(reader.tokenizer, [(VOLCANO.text, long_documents[1])], 48, 8)[0])
    assert sum(generated) == 2 + short + 2
    with pytest.raises(UsageError, match="option 'max_chunks' must be a positive integer, got 0"):
        GenerativeReader(max_chunks=0)


def test_generative_reading_shows_progress(make_generative, long_documents, monkeypatch, capsys):
    monkeypatch.setenv("ODQA_PROGRESS", "1")
    make_generative("passages", chunk_block=4).read([VOLCANO], results_of([[4, 1]], long_documents), n_best=2)
    err = capsys.readouterr().err
    assert "generative: reading" in err and "2.00/2.00" in err
