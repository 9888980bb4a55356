"""The offline bootstrap: a WordPiece tokenizer trained on the corpus and a small BERT built from a config.

With no pretrained model on the machine (no network, nothing in the HF cache) a model can still be trained from
scratch: :func:`train_wordpiece` learns a vocabulary from the corpus with ``tokenizers`` and
:func:`bootstrap_encoder` builds a randomly initialised BERT of one of the :data:`BERT_SIZES` (named after Google's
BERT miniatures). Every odqa plugin that needs a model without one (dense retriever, readers) uses this module.

The normaliser is NFKC + lower-casing, not BERT's accent stripping: stripping accents decomposes Hangul syllables
into jamo, which would make Korean tokens long and opaque.

The vocabulary is learned here (:func:`learn_wordpiece_vocabulary`), not by ``tokenizers``' WordPiece trainer:
that trainer numbers the ``##`` characters in the order of a randomly seeded hash map and breaks ties between
merges of equal count by those numbers, so every call picks a different set of tokens among the rare ones (six
calls on the bundled sample gave six vocabularies, 6,870 to 6,872 tokens, whatever ``PYTHONHASHSEED`` or
``TOKENIZERS_PARALLELISM``). The same merge algorithm with ties broken by the tokens' text depends only on the
word counts, so the same texts give a byte-identical ``tokenizer.json`` in any process; with the same seed the
bootstrap model's initial weights and its CPU training are then the same too (the tests check both in two
subprocesses). A trained tokenizer is also cached under :func:`odqa_transformers.cache.cache_dir` by a hash of its
inputs.
"""

from __future__ import annotations

import hashlib
import heapq
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from odqa_core.errors import DataError, UsageError
from odqa_core.outputs import remove_abandoned_temporaries, temporary_sibling
from odqa_transformers.cache import cache_dir

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class BertSize:
    layers: int
    hidden: int
    heads: int

    @property
    def intermediate(self) -> int:
        return 4 * self.hidden


#: Bootstrap sizes. ``micro`` is for tests; ``tiny``/``mini``/``small``/``medium``/``base`` follow Google's BERT
#: miniatures (L/H: 2/128, 4/256, 4/512, 8/512, 12/768).
BERT_SIZES: dict[str, BertSize] = {
    "micro": BertSize(1, 32, 2),
    "tiny": BertSize(2, 128, 2),
    "mini": BertSize(4, 256, 4),
    "small": BertSize(4, 512, 8),
    "medium": BertSize(8, 512, 8),
    "base": BertSize(12, 768, 12),
}


def bert_size(name: str) -> BertSize:
    if name not in BERT_SIZES:
        raise UsageError(f"unknown bootstrap size {name!r}; choose one of {', '.join(BERT_SIZES)}")
    return BERT_SIZES[name]


#: Bump when the tokenizer recipe below changes, so that cached tokenizers of the old recipe are not reused.
_RECIPE = "wordpiece-nfkc-lower-v2"


def train_wordpiece(texts: Iterable[str], vocab_size: int = 16000, max_length: int = 512, cache: bool = True) -> Any:
    """A fast BERT-style tokenizer (``[CLS] a [SEP] b [SEP]``) with a WordPiece vocabulary learned from ``texts``.

    With ``cache`` the result is stored under :func:`cache_dir` and reused for the same texts and settings.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 10:
        raise UsageError(f"vocab size {vocab_size} is too small for a WordPiece vocabulary")
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise DataError("cannot train a tokenizer: the corpus has no text")
    if not cache:
        return _train_wordpiece(texts, vocab_size, max_length)
    from odqa_transformers.hf import load_tokenizer

    digest = hashlib.sha256(f"{_RECIPE}\0{vocab_size}\0{max_length}\0{len(texts)}\0".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    target = cache_dir() / "wordpiece" / digest.hexdigest()[:32]
    if (target / "tokenizer.json").is_file():
        return load_tokenizer(target)
    tokenizer = _train_wordpiece(texts, vocab_size, max_length)
    remove_abandoned_temporaries(target)  # left by a process killed while writing it
    tmp = temporary_sibling(target)
    try:
        tokenizer.save_pretrained(str(tmp))
        tmp.rename(target)
    except OSError:  # another process cached it first, or the cache is read-only: the trained one is still good
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tokenizer


#: The special tokens' roles, as a ``transformers`` fast tokenizer takes them.
SPECIAL_TOKEN_ROLES = {
    "unk_token": "[UNK]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def _train_wordpiece(texts: list[str], vocab_size: int, max_length: int) -> Any:
    from tokenizers import normalizers
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    backend = wordpiece_backend(texts, vocab_size, normalizer, SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKEN_ROLES, model_max_length=max_length)


def wordpiece_backend(texts: Sequence[str], vocab_size: int, normalizer: Any, special_tokens: Sequence[str]) -> Any:
    """A ``tokenizers.Tokenizer`` with BERT's pre-tokeniser, post-processor (``[CLS] a [SEP] b [SEP]``, ``b`` of
    segment 1) and decoder over the :func:`learn_wordpiece_vocabulary` of ``texts`` (``special_tokens`` first,
    numbered as given) after ``normalizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocabulary = learn_wordpiece_vocabulary(word_counts(texts, normalizer, pre_tokenizer), vocab_size, special_tokens)
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocabulary)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def word_counts(texts: Sequence[str], normalizer: Any, pre_tokenizer: Any) -> Counter[str]:
    """How often each word occurs in ``texts`` after a ``tokenizers`` normaliser and pre-tokeniser."""
    from odqa_core.progress import progress

    counts: Counter[str] = Counter()
    with progress(total=len(texts), desc="counting words", unit="text", leave=False) as bar:
        for text in texts:
            counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
            bar.update(1)
    return counts


def learn_wordpiece_vocabulary(
    counts: Mapping[str, int], vocab_size: int, special_tokens: Sequence[str] = SPECIAL_TOKENS, prefix: str = "##"
) -> list[str]:
    """A WordPiece vocabulary of at most ``vocab_size`` tokens learned from word ``counts``, deterministically.

    The algorithm of ``tokenizers``' WordPiece trainer (BPE merges over the words, a word-inner character marked
    with ``prefix``; every character of the words is kept): start from the characters, then repeatedly merge the
    most frequent adjacent pair into a new token until the vocabulary is full or every word is one token. Ties
    between pairs of equal count go to the pair whose texts sort first, so the result depends on the counts
    alone. Returned canonically numbered: ``special_tokens`` first (their ids as given), then the learned tokens
    sorted.
    """
    tokens: list[str] = list(special_tokens)
    ids: dict[str, int] = {token: i for i, token in enumerate(tokens)}

    def token_id(token: str) -> int:
        if token not in ids:
            ids[token] = len(tokens)
            tokens.append(token)
        return ids[token]

    for char in sorted({char for word in counts for char in word}):
        token_id(char)
    words = sorted(word for word in counts if word)
    frequency = [counts[word] for word in words]
    symbols = [[token_id(word[0]), *(token_id(prefix + char) for char in word[1:])] for word in words]
    pair_counts: Counter[tuple[int, int]] = Counter()
    words_with_pair: dict[tuple[int, int], set[int]] = {}
    for w, pieces in enumerate(symbols):
        for pair in zip(pieces, pieces[1:]):
            pair_counts[pair] += frequency[w]
            words_with_pair.setdefault(pair, set()).add(w)
    # A max-heap by count, then by the pair's texts; counts of entries go stale and are refreshed when popped.
    heap = [(-count, tokens[a], tokens[b], a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)
    while len(tokens) < vocab_size and heap:
        negative_count, left_text, right_text, left, right = heapq.heappop(heap)
        count = pair_counts.get((left, right), 0)
        if count != -negative_count:
            if count > 0:
                heapq.heappush(heap, (-count, left_text, right_text, left, right))
            continue
        merged = token_id(left_text + right_text.removeprefix(prefix))
        new_pairs: set[tuple[int, int]] = set()
        for w in sorted(words_with_pair.pop((left, right), ())):
            pieces = symbols[w]
            merged_pieces = _merge_pair(pieces, left, right, merged)
            # Recount the word's pairs: the only pairs whose count grows are those with the merged token.
            for pair in zip(pieces, pieces[1:]):
                pair_counts[pair] -= frequency[w]
            for pair in zip(merged_pieces, merged_pieces[1:]):
                pair_counts[pair] += frequency[w]
                words_with_pair.setdefault(pair, set()).add(w)
                if merged in pair:
                    new_pairs.add(pair)
            symbols[w] = merged_pieces
        pair_counts.pop((left, right), None)
        for a, b in sorted(new_pairs):
            if pair_counts[(a, b)] > 0:
                heapq.heappush(heap, (-pair_counts[(a, b)], tokens[a], tokens[b], a, b))
    return [*special_tokens, *sorted(tokens[len(special_tokens) :])]


def _merge_pair(pieces: list[int], left: int, right: int, merged: int) -> list[int]:
    """``pieces`` with each ``left right`` replaced by ``merged``, scanning left to right as ``tokenizers`` does."""
    merged_pieces: list[int] = []
    i = 0
    while i < len(pieces):
        if pieces[i] == left and i + 1 < len(pieces) and pieces[i + 1] == right:
            merged_pieces.append(merged)
            i += 2
        else:
            merged_pieces.append(pieces[i])
            i += 1
    return merged_pieces


def bert_config(size: str, vocab_size: int, max_length: int = 512) -> Any:
    from transformers import BertConfig

    dims = bert_size(size)
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=dims.hidden,
        num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads,
        intermediate_size=dims.intermediate,
        max_position_embeddings=max_length,
        pad_token_id=0,
    )


def bootstrap_encoder(
    texts: Iterable[str], size: str = "tiny", vocab_size: int = 16000, max_length: int = 512, seed: int = 0
) -> tuple[Any, Any]:
    """``(tokenizer, model)``: a tokenizer trained on ``texts`` and a randomly initialised BERT encoder."""
    import torch

    from odqa_transformers.hf import encoder_from_config

    bert_size(size)  # validate before the (slower) tokenizer training
    tokenizer = train_wordpiece(texts, vocab_size, max_length)
    torch.manual_seed(seed)
    model = encoder_from_config(bert_config(size, len(tokenizer), max_length))
    return tokenizer, model


# --- seq2seq (T5) bootstrap: the generative reader's model ---------------------------------------------------------


def t5_config(
    size: str,
    vocab_size: int,
    pad_id: int = 0,
    eos_id: int = 3,
    dropout: float = 0.1,
    relative_attention_num_buckets: int = 32,
    relative_attention_max_distance: int = 128,
) -> Any:
    """A T5 config of a bootstrap ``size`` (the :data:`BERT_SIZES` dimensions, as many decoder as encoder layers).

    The ids fit the :func:`train_wordpiece` tokenizer: ``[PAD]`` (0) pads and starts decoding, ``[SEP]`` (3) ends
    a generated sequence. T5's attention is relative, so there is no maximum input length; input and output
    embeddings are tied (T5's default).
    """
    from transformers import T5Config

    dims = bert_size(size)
    return T5Config(
        vocab_size=vocab_size,
        d_model=dims.hidden,
        d_kv=dims.hidden // dims.heads,
        d_ff=dims.intermediate,
        num_layers=dims.layers,
        num_decoder_layers=dims.layers,
        num_heads=dims.heads,
        relative_attention_num_buckets=relative_attention_num_buckets,
        relative_attention_max_distance=relative_attention_max_distance,
        dropout_rate=dropout,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        decoder_start_token_id=pad_id,
    )


def bootstrap_seq2seq(
    texts: Iterable[str], size: str = "tiny", vocab_size: int = 16000, max_length: int = 512, seed: int = 0
) -> tuple[Any, Any]:
    """``(tokenizer, model)``: the :func:`train_wordpiece` tokenizer of ``texts`` (the same recipe and cache as
    :func:`bootstrap_encoder`'s) and a randomly initialised ``T5ForConditionalGeneration`` (:func:`t5_config`)."""
    import torch
    from transformers import T5ForConditionalGeneration

    from odqa_transformers.hf import quiet_transformers

    bert_size(size)  # validate before the (slower) tokenizer training
    tokenizer = train_wordpiece(texts, vocab_size, max_length)
    quiet_transformers()
    torch.manual_seed(seed)
    config = t5_config(size, len(tokenizer), tokenizer.pad_token_id, tokenizer.sep_token_id)
    return tokenizer, T5ForConditionalGeneration(config)
