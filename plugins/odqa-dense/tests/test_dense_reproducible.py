"""Bootstrapping is reproducible across processes: the same texts and seed give a byte-identical tokenizer and,
after a short ICT + supervised training on the CPU, byte-identical weights (each process with its own empty cache,
so nothing is shared between the two but the inputs)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
from odqa_dense.bootstrap import SPECIAL_TOKENS, learn_wordpiece_vocabulary, train_wordpiece

# A vocabulary of 3,000 on the sample corpus leaves room for merges past its ~1,900 characters, where pairs of
# equal count compete for the last places: before the vocabulary was learned canonically, two processes picked
# different tokens there.
TRAIN_ONCE = """
import sys
from pathlib import Path
from odqa_core import data
from odqa_dense.training import TrainConfig, train_dpr

documents = data.load_corpus(data.sample_corpus_path())
questions = data.load_questions(data.sample_train_questions_path())[:32]
config = TrainConfig(bootstrap_size="micro", vocab_size=3000, passage_max_length=64, query_max_length=32,
                     epochs=1, ict_epochs=1, batch_size=16, seed=3, device="cpu")
train_dpr(documents, questions, config, Path(sys.argv[1]), echo=lambda message: None)
"""


def test_two_processes_bootstrap_the_same_tokenizer_and_weights(tmp_path):
    outputs = []
    for name in ("first", "second"):
        env = {**os.environ, "ODQA_PROGRESS": "0", "ODQA_CACHE_DIR": str(tmp_path / f"cache-{name}")}
        done = subprocess.run(
            [sys.executable, "-c", TRAIN_ONCE, str(tmp_path / name)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(tmp_path / name / "last")
    files = sorted(p.name for p in outputs[0].iterdir() if p.suffix == ".safetensors" or p.name == "tokenizer.json")
    assert "tokenizer.json" in files and "encoder.safetensors" in files
    for name in files:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


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
