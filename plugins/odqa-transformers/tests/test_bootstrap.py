"""The offline bootstrap: the WordPiece tokenizer learned from the corpus (NFKC + lower-case, Hangul kept whole,
the same vocabulary from the same word counts in any process), the bootstrap sizes, and the seeded BERT and T5."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest
from odqa_transformers.bootstrap import (
    BERT_SIZES,
    SPECIAL_TOKENS,
    bert_size,
    bootstrap_encoder,
    bootstrap_seq2seq,
    learn_wordpiece_vocabulary,
    t5_config,
    train_wordpiece,
)

from odqa_core import DataError, UsageError
from odqa_core.testing import TOY_DOCUMENTS

TOY_TEXTS = [f"{d.title} {d.text}" for d in TOY_DOCUMENTS]


def test_korean_tokens_stay_syllables(sample_documents):
    korean = [d.text for d in sample_documents if any("\uac00" <= c <= "\ud7a3" for c in d.text)]
    assert len(korean) >= 10
    tokenizer = train_wordpiece(korean, vocab_size=800)
    tokens = tokenizer.tokenize("한국어 질문")
    assert tokens and "[UNK]" not in tokens
    assert not [c for t in tokens for c in t if "\u1100" <= c <= "\u11ff"], f"jamo in {tokens}"
    assert "".join(t.removeprefix("##") for t in tokens) == "한국어질문"
    vocab = "".join(tokenizer.get_vocab())
    assert not any("\u1100" <= c <= "\u11ff" for c in vocab), "the vocabulary holds decomposed jamo"


def test_wordpiece_normalises_nfkc_and_lowercase(vocab_texts):
    tokenizer = train_wordpiece(vocab_texts, vocab_size=600)
    assert tokenizer.tokenize("ＳＥＯＵＬ") == tokenizer.tokenize("seoul") == tokenizer.tokenize("Seoul")
    assert unicodedata.normalize("NFKC", "ＳＥＯＵＬ").lower() == "seoul"
    assert tokenizer.is_fast and tokenizer.model_max_length == 512
    ids = tokenizer("부산", "항구")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids.count(tokenizer.sep_token_id) == 2
    assert tokenizer.pad_token_id == 0


def test_wordpiece_bad_input():
    with pytest.raises(UsageError, match="too small"):
        train_wordpiece(["some text"], vocab_size=10)
    with pytest.raises(DataError, match="no text"):
        train_wordpiece(["", "   "], vocab_size=100)


def test_bootstrap_sizes(vocab_texts):
    assert list(BERT_SIZES) == ["micro", "tiny", "mini", "small", "medium", "base"]
    assert (bert_size("base").layers, bert_size("base").hidden, bert_size("base").intermediate) == (12, 768, 3072)
    tokenizer, model = bootstrap_encoder(vocab_texts[:20], "micro", 300, 128, 0)
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (1, 32, 2)
    assert config.vocab_size == len(tokenizer) and config.max_position_embeddings == 128
    with pytest.raises(UsageError, match="micro, tiny"):
        bootstrap_encoder(vocab_texts, "huge")


def test_wordpiece_training_is_deterministic(vocab_texts):
    vocabularies = [train_wordpiece(vocab_texts, vocab_size=1000).get_vocab() for _ in range(3)]
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]


def test_bootstrap_is_seeded(vocab_texts):
    import torch

    a = bootstrap_encoder(vocab_texts[:20], "micro", 300, 128, 5)[1].state_dict()
    b = bootstrap_encoder(vocab_texts[:20], "micro", 300, 128, 5)[1].state_dict()
    c = bootstrap_encoder(vocab_texts[:20], "micro", 300, 128, 6)[1].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_vocabulary_depends_only_on_the_counts():
    counts = {"abab": 3, "abc": 2, "bcd": 2, "cd": 2, "ba": 1}
    reordered = dict(reversed(list(counts.items())))
    assert learn_wordpiece_vocabulary(counts, 20) == learn_wordpiece_vocabulary(reordered, 20)


def test_equal_counts_are_merged_in_the_order_of_their_texts():
    # ("a", "##b") and ("c", "##d") both occur twice; with room for one merge, the pair whose text sorts first wins.
    counts = {"ab": 2, "cd": 2}
    alphabet = ["##b", "##d", "a", "b", "c", "d"]  # every character, word-initial and inner
    assert learn_wordpiece_vocabulary(counts, 11) == [*SPECIAL_TOKENS, *alphabet]
    assert learn_wordpiece_vocabulary(counts, 12) == [*SPECIAL_TOKENS, *sorted([*alphabet, "ab"])]
    assert learn_wordpiece_vocabulary(counts, 100) == [*SPECIAL_TOKENS, *sorted([*alphabet, "ab", "cd"])]


def test_the_most_frequent_pair_is_merged_first_and_merges_build_on_merges():
    counts = Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3})
    alphabet = learn_wordpiece_vocabulary(counts, 0)
    assert alphabet[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS) and len(alphabet) == len(SPECIAL_TOKENS) + 18

    def learned(room):
        return sorted(set(learn_wordpiece_vocabulary(counts, len(alphabet) + room)) - set(alphabet))

    # "##e ##s" and "##s ##t" occur 9 times (newest, widest): the tie goes to "##e ##s", then "##es ##t" (9);
    # "l ##o" and "##o ##w" (7) next, "##o ##w" first by its text, then "l ##ow".
    assert [learned(room) for room in (1, 2, 3, 4)] == [
        ["##es"],
        ["##es", "##est"],
        ["##es", "##est", "##ow"],
        ["##es", "##est", "##ow", "low"],
    ]
    everything = learn_wordpiece_vocabulary(counts, 200)
    assert {"low", "lower", "newest", "widest"} <= set(everything) and len(everything) == len(set(everything))


@pytest.mark.parametrize("vocab_size", [300, 2000])
def test_bootstrap_tokenizer_keeps_the_special_ids_and_the_size_limit(sample_documents, vocab_size):
    texts = [f"{d.title} {d.text}" for d in sample_documents]
    tokenizer = train_wordpiece(texts, vocab_size, cache=False)
    assert tokenizer.convert_ids_to_tokens(list(range(len(SPECIAL_TOKENS)))) == list(SPECIAL_TOKENS)
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id) == (0, 2, 3)
    characters = {c for text in texts for c in text.lower()}
    assert len(tokenizer) == vocab_size or len(tokenizer) < len(characters) * 2 + len(SPECIAL_TOKENS)
    encoded = tokenizer("훈민정음은 1443년에 만들어졌다")
    assert encoded["input_ids"][0] == 2 and encoded["input_ids"][-1] == 3 and 1 not in encoded["input_ids"]


def test_the_t5_bootstrap_uses_the_wordpiece_tokenizer():
    config = t5_config("micro", 300)
    dims = BERT_SIZES["micro"]
    assert (config.d_model, config.num_layers, config.num_decoder_layers) == (dims.hidden, dims.layers, dims.layers)
    assert (config.num_heads, config.d_kv, config.d_ff) == (dims.heads, dims.hidden // dims.heads, 4 * dims.hidden)
    assert (config.pad_token_id, config.decoder_start_token_id, config.eos_token_id) == (0, 0, 3)
    tokenizer, network = bootstrap_seq2seq(TOY_TEXTS, "micro", 300, 512, 0)
    assert tokenizer.get_vocab() == train_wordpiece(TOY_TEXTS, 300, 512).get_vocab()
    assert network.config.vocab_size == len(tokenizer) and tokenizer.sep_token_id == 3
    with pytest.raises(UsageError, match="bootstrap size"):
        bootstrap_seq2seq(TOY_TEXTS, "huge", 300)
