"""The ``extractive`` reader: a span-prediction transformer (BERT-style ``…ForQuestionAnswering``) over passages.

Every (question, retrieved passage) pair is tokenized as ``[CLS] question [SEP] passage [SEP]``; a passage longer
than the room the question leaves is cut into overlapping windows (``doc_stride`` tokens shared by neighbours), as
in HuggingFace's ``run_qa.py``. The windows of a block of questions go through the network in batches of
``batch_size`` windows, longest first, each batch padded to its own longest window.

Long passages (:mod:`odqa_readers.windows`). Windows are streamed: passages are tokenized in pieces of at most
200,000 characters, each window is made as soon as the tokens read so far decide it, and at most
``window_block`` windows are held and scored at a time, each question keeping only its running ``n_best`` spans.
So reading holds a bounded amount of memory whatever a passage's length; the time still grows with it (a
progress bar counts the passages read, fractions included). ``max_windows_per_passage`` reads only the first
windows of each passage and says on stderr how many passages it cut. The answers are those of reading all
windows at once: the windows are the tokenizer's overflowing tokens (but for two quirks of theirs, see
:mod:`odqa_readers.windows`), and an n-best kept block by block is the overall n-best; the scores are the same to
the bit while a block of :data:`PAIR_BLOCK` pairs has at most ``window_block`` windows (the batches are too).

Decoding (:func:`decode_spans`, a pure function): per window, the ``top_spans_per_passage`` best start and end
tokens among the passage's tokens, every pair with ``start <= end < start + max_answer_length``, scored
``start_logit + end_logit``. The scores are raw logits, never normalised per window, so they compare across the
windows and passages of a question; :func:`merge_spans` keeps each distinct (passage, character span) once at its
best score and ranks the question's spans: score descending, then passage rank, then start. Answers are slices of
``Document.text`` through the tokenizer's offsets, so ``text[start : start + len(answer)] == answer`` always.

Options and checkpoints: ``max_length``, ``doc_stride``, ``max_answer_length``, ``max_question_length`` and
``include_title`` are stored in a checkpoint (:attr:`ExtractiveReader.stored_options`). Left unset (None) they take
the checkpoint's value when the model is loaded, else :data:`DEFAULTS`; a value the user gives always wins. Until a
model is loaded or attached an unset stored option reads None (and so does :meth:`config`, which therefore rebuilds
a reader that behaves the same); afterwards it holds the value in use.

Edge cases, by design:

- a question whose results row has no passage (only ``-1`` padding) gets no predictions (``[]``);
- a question longer than ``max_question_length`` tokens is cut from its end; if ``max_length`` then leaves fewer
  than :data:`MIN_CONTEXT_TOKENS` tokens for the passage, reading (or making training features) is a one-line
  UsageError naming both lengths;
- ``doc_stride`` is capped at half the room the question leaves for the passage in a window (the tokenizer needs
  the overlap to be shorter than a window's passage part), so the default suits a small ``max_length`` too; only
  a ``doc_stride`` given together with a ``max_length`` it is not smaller than is refused;
- with ``include_title`` the passage's title is added to the question side (``question [SEP] title``); answers
  still come from the passage text only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from odqa_core import options
from odqa_core.errors import DataError, UsageError
from odqa_core.progress import progress, stderr_echo
from odqa_core.types import Prediction, Question, RankedResults
from odqa_readers.base import ReaderExample, TransformerReader
from odqa_readers.windows import ReadProgress, WindowCursor, stream_windows

#: The values of the stored options when neither the user nor a checkpoint sets them.
DEFAULTS: dict[str, Any] = {
    "max_length": 384,
    "doc_stride": 128,
    "max_answer_length": 30,
    "max_question_length": 64,
    "include_title": False,
}
#: How a span is scored: ``logits`` = start + end logit (SQuAD v1 style); ``minus-null`` subtracts the window's
#: no-answer score (its [CLS] start + end logits, SQuAD v2 style), so a passage the reader, trained with no-answer
#: examples (retrieved-passage training), finds unanswerable ranks its spans low.
SCORES = ("logits", "minus-null")
#: The fewest passage tokens a window may hold after the question and the special tokens.
MIN_CONTEXT_TOKENS = 16
#: (question, passage) pairs whose question sides are tokenized together while reading; their windows, up to
#: ``window_block`` of them, are scored as one block (sorted by length into batches).
PAIR_BLOCK = 1024


# --- span decoding (pure functions) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spans:
    """Candidate answer spans, one per entry of the parallel arrays.

    ``window`` indexes the windows given to :func:`decode_spans`; ``token_start``/``token_end`` are token positions
    in that window (inclusive), ``char_start``/``char_end`` the character span in the passage (end exclusive).
    """

    window: np.ndarray
    token_start: np.ndarray
    token_end: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    def take(self, keep: np.ndarray) -> Spans:
        return Spans(*(getattr(self, f)[keep] for f in _SPAN_FIELDS))


_SPAN_FIELDS = ("window", "token_start", "token_end", "char_start", "char_end", "score")


def decode_spans(
    start_logits: Any,
    end_logits: Any,
    offsets: Any,
    context: Any,
    *,
    top_n: int = 20,
    max_answer_length: int = 30,
    keep: int | None = None,
) -> Spans:
    """The best answer spans of a batch of windows, vectorized over windows and candidate pairs.

    ``start_logits``, ``end_logits``: float ``(W, L)``; ``offsets``: int ``(W, L, 2)`` character offsets of each
    token in its passage; ``context``: bool ``(W, L)``, True for the passage's tokens (``sequence_ids == 1``),
    False for the question, special and padding tokens. In each window the ``top_n`` best start and end tokens
    among the context tokens are paired; a pair is valid when ``start <= end < start + max_answer_length`` and its
    characters are not empty; its score is ``start_logit + end_logit``. Spans of one window with the same
    characters are kept once (best score), and with ``keep`` only each window's ``keep`` best survive (enough for
    an n-best across windows: a span cut here is beaten by ``keep`` distinct spans). Sorted by window, then score
    descending, then start.
    """
    start = np.asarray(start_logits, dtype=np.float32)
    end = np.asarray(end_logits, dtype=np.float32)
    context = np.asarray(context, dtype=bool)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(*context.shape, 2)
    if start.shape != context.shape or end.shape != context.shape or start.ndim != 2:
        raise ValueError(f"logits {start.shape}, {end.shape} and context {context.shape} must be equal (W, L) shapes")
    n_windows, length = context.shape
    n = min(top_n, length)
    if n_windows == 0 or n == 0:
        return _empty_spans()
    s = np.where(context, start, -np.inf)
    e = np.where(context, end, -np.inf)
    # A stable sort keeps ties in token order (deterministic); L is at most a few hundred tokens.
    s_idx = np.argsort(-s, axis=1, kind="stable")[:, :n]
    e_idx = np.argsort(-e, axis=1, kind="stable")[:, :n]
    s_val = np.take_along_axis(s, s_idx, 1)
    e_val = np.take_along_axis(e, e_idx, 1)
    scores = s_val[:, :, None] + e_val[:, None, :]  # (W, n starts, n ends)
    gap = e_idx[:, None, :] - s_idx[:, :, None]
    valid = (gap >= 0) & (gap < max_answer_length) & np.isfinite(scores)
    w, a, b = np.nonzero(valid)
    tok_s, tok_e = s_idx[w, a], e_idx[w, b]
    char_s, char_e = offsets[w, tok_s, 0], offsets[w, tok_e, 1]
    spans = Spans(w, tok_s, tok_e, char_s, char_e, scores[w, a, b])
    spans = spans.take(spans.char_end > spans.char_start)
    # One entry per (window, characters) at its best score, then best first inside each window.
    spans = spans.take(
        np.lexsort((spans.token_end, spans.token_start, -spans.score, spans.char_end, spans.char_start, spans.window))
    )
    spans = spans.take(_first_of_groups(spans.window, spans.char_start, spans.char_end))
    spans = spans.take(np.lexsort((spans.char_end, spans.char_start, -spans.score, spans.window)))
    if keep is not None:
        spans = spans.take(_rank_in_group(spans.window) < keep)
    return spans


def merge_spans(
    spans: Spans, group: np.ndarray, doc_row: np.ndarray, rank: np.ndarray, window: np.ndarray, n_best: int
) -> np.ndarray:
    """Indices into ``spans`` of each group's ``n_best`` answers, best first, grouped by ascending ``group``.

    ``group`` (the question), ``doc_row`` (the passage's document row), ``rank`` (its rank in the question's
    results) and ``window`` (its number in the passage) are given per span. Identical (group, document row,
    character span) entries — from overlapping windows, or a passage retrieved twice — are kept once, at their best
    score (ties: the earlier passage rank, then window). The survivors rank by score descending, then passage rank,
    then character start.
    """
    if not len(spans):
        return np.zeros(0, np.int64)
    order = np.lexsort((window, rank, -spans.score, spans.char_end, spans.char_start, doc_row, group))
    kept = order[_first_of_groups(group[order], doc_row[order], spans.char_start[order], spans.char_end[order])]
    kept = kept[
        np.lexsort((spans.char_end[kept], spans.char_start[kept], rank[kept], -spans.score[kept], group[kept]))
    ]
    return kept[_rank_in_group(group[kept]) < n_best]


def _empty_spans() -> Spans:
    return Spans(*(np.zeros(0, np.float32 if f == "score" else np.int64) for f in _SPAN_FIELDS))


def _first_of_groups(*keys: np.ndarray) -> np.ndarray:
    """Positions where any key changes from the previous row (rows sorted by the keys): the first of each run."""
    if not len(keys[0]):
        return np.zeros(0, np.int64)
    change = np.zeros(len(keys[0]), bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def _rank_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2 ... within each run of equal values of a sorted ``group``."""
    starts = np.searchsorted(group, group, side="left")
    return np.arange(len(group)) - starts


# --- tokenized windows ----------------------------------------------------------------------------------------------


@dataclass
class Windows:
    """The windows of some (question side, passage) pairs, in pair order then window order.

    Per window: token ids, token type ids (None when the tokenizer gives none), character offsets into the
    passage, which tokens are the passage's (``sequence_ids == 1``), the pair it belongs to and its number in it.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    offsets: list[list[tuple[int, int]]]
    context: list[list[bool]]
    pair: list[int]
    number: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class _PairFrame:
    """Where the tokenizer puts its special tokens around a (question side, passage) pair, and each part's segment
    id: ``head question middle passage tail`` (``[CLS] q [SEP] p [SEP]``, RoBERTa's ``<s> q </s></s> p </s>``)."""

    head: np.ndarray
    middle: np.ndarray
    tail: np.ndarray
    head_types: np.ndarray
    middle_types: np.ndarray
    tail_types: np.ndarray
    question_type: int
    passage_type: int

    @property
    def specials(self) -> int:
        return len(self.head) + len(self.middle) + len(self.tail)


@dataclass(frozen=True)
class _Window:
    """One window of pair ``pair``: its model inputs (``token_type_ids`` None without segment ids), the character
    offsets of its tokens (of question tokens in the question side, (0, 0) for special tokens), which tokens are the
    passage's, the passage characters read up to its end, whether it is the last window read of its pair, and
    whether ``max_windows_per_passage`` stopped that pair before its passage's end."""

    pair: int
    number: int
    input_ids: np.ndarray
    token_type_ids: np.ndarray | None
    offsets: np.ndarray
    context: np.ndarray
    read_to: int
    last: bool
    cut: bool


@dataclass
class _WindowBlock:
    """Windows scored together: their pairs (positions in the question-major pairs of a read), numbers, the
    passages read once they are (for the progress bar) and how many pairs ``max_windows_per_passage`` cut."""

    windows: list[_Window]
    pair: np.ndarray
    number: np.ndarray
    passages_read: float
    passages_cut: int
    #: Questions whose every window is made once this block is (the progress bar's postfix).
    questions_done: int = 0

    def __len__(self) -> int:
        return len(self.windows)


class ExtractiveReader(TransformerReader):
    """Answers are spans of the retrieved passages, scored by a ``…ForQuestionAnswering`` transformer.

    Options:

    - ``model``: a HuggingFace QA model, an odqa ``extractive`` checkpoint or ``sample`` (:mod:`odqa_readers.base`);
    - ``max_length`` (384): tokens per window (question + passage + special tokens), at most the model's positions;
    - ``doc_stride`` (128): tokens shared by consecutive windows of a long passage;
    - ``max_answer_length`` (30): the longest answer, in tokens;
    - ``max_question_length`` (64): longer questions are cut to this many tokens (from the end);
    - ``batch_size`` (32): windows per forward pass;
    - ``device``, ``precision``: see :mod:`odqa_transformers.hf` (auto: cuda/mps/cpu; bf16 on a capable GPU, else
      fp32);
    - ``include_title`` (False): put the passage's title on the question side;
    - ``top_spans_per_passage`` (20): start and end candidates per window;
    - ``max_windows_per_passage`` (None: all): read only the first windows of each passage (a warning says how many
      passages it cut), to bound the time a very long passage takes;
    - ``window_block`` (2048): windows held and scored at a time while reading, which bounds the reader's memory
      (a block of pairs whose windows fit is scored as one, as it always was);
    - ``passage_cache_mb`` (64): with a lexical model, the memory bound of its per-passage cache of the
      question-independent work of reading (:class:`odqa_readers.lexical.PassageTableCache`, least recently used
      out first; 0: no cache). The same answers with or without it.

    ``max_length``, ``doc_stride``, ``max_answer_length``, ``max_question_length`` and ``include_title``
    (:attr:`stored_options`) default to the checkpoint's values, then to :data:`DEFAULTS`; see the module docstring.
    """

    name = "extractive"
    auto_class = "AutoModelForQuestionAnswering"
    stored_options: ClassVar[tuple[str, ...]] = (
        "max_length",
        "doc_stride",
        "max_answer_length",
        "max_question_length",
        "include_title",
    )

    def __init__(
        self,
        *,
        model: str | None = None,
        max_length: int | None = None,
        doc_stride: int | None = None,
        max_answer_length: int | None = None,
        max_question_length: int | None = None,
        batch_size: int = 32,
        device: str = "auto",
        precision: str = "auto",
        include_title: bool | None = None,
        top_spans_per_passage: int = 20,
        score: str = "logits",
        max_windows_per_passage: int | None = None,
        window_block: int = 2048,
        passage_cache_mb: int = 64,
    ) -> None:
        from odqa_transformers import hf

        owner = f"reader {self.name!r}"
        if model is not None and not isinstance(model, str):
            raise UsageError(f"{owner}: option 'model' must be a model path or HuggingFace id, got {model!r}")
        for key, value in (
            ("max_length", max_length),
            ("max_answer_length", max_answer_length),
            ("max_question_length", max_question_length),
        ):
            if value is not None:
                options.positive_int(owner, key, value)
        if doc_stride is not None:
            options.integer(owner, "doc_stride", doc_stride, minimum=0)
        if include_title is not None:
            options.boolean(owner, "include_title", include_title)
        options.choice(owner, "score", score, SCORES)
        options.choice(owner, "device", device, hf.DEVICES)
        options.choice(owner, "precision", precision, hf.PRECISIONS)
        self.model = model
        self.max_length = max_length
        self.doc_stride = doc_stride
        self.max_answer_length = max_answer_length
        self.max_question_length = max_question_length
        self.batch_size = options.positive_int(owner, "batch_size", batch_size)
        self.device = device
        self.precision = precision
        self.include_title = include_title
        self.top_spans_per_passage = options.positive_int(owner, "top_spans_per_passage", top_spans_per_passage)
        self.score = score
        if max_windows_per_passage is not None:
            options.positive_int(owner, "max_windows_per_passage", max_windows_per_passage)
        self.max_windows_per_passage = max_windows_per_passage
        self.window_block = options.positive_int(owner, "window_block", window_block)
        self.passage_cache_mb = options.integer(owner, "passage_cache_mb", passage_cache_mb, minimum=0)
        self.remember_given({key: getattr(self, key) for key in self.stored_options})
        if max_length is not None and doc_stride is not None:
            self._check_stride()

    @property
    def _owner(self) -> str:
        return f"reader {self.name!r}"

    def _check_stride(self) -> None:
        if self.doc_stride >= self.max_length:
            raise UsageError(
                f"{self._owner}: doc_stride ({self.doc_stride}) must be smaller than max_length ({self.max_length})"
            )

    # --- model --------------------------------------------------------------------------------------------------

    #: The lexical span scorer (:mod:`odqa_readers.lexical`) when ``model`` is a lexical reader store.
    lexical: Any = None

    def warm_up(self) -> None:
        """Load the model: a lexical reader store (recognised by its manifest's kind) reads with the lexical span
        scorer instead of a transformer; anything else as :meth:`TransformerReader.warm_up`."""
        if self.lexical is not None or self.network is not None:
            return
        from odqa_readers.base import resolve_model
        from odqa_readers.lexical import LexicalModel, PassageTableCache, is_lexical_store

        # The sample's demo model (trained and cached on first use) is a lexical store: resolve it first.
        spec = str(resolve_model(self.model, self.name)) if self.model == "sample" else self.model
        if spec and is_lexical_store(spec):
            lexical = LexicalModel.load(spec)
            trained = lexical.settings.include_title
            if "include_title" in self._user_options and self.include_title != trained:
                raise UsageError(
                    f"{self._owner}: the lexical model {spec} was trained with include_title={trained}; "
                    "leave include_title unset"
                )
            lexical.passage_cache = PassageTableCache(self.passage_cache_mb << 20)
            self.include_title, self.source, self.lexical = trained, str(spec), lexical
            return
        super().warm_up()

    @property
    def max_positions(self) -> int:
        """The longest input (in tokens) the network takes."""
        from odqa_transformers import hf

        return hf.max_positions(self.network.config)

    def check_model(self) -> None:
        """Fill the stored options nobody set with the defaults, then check them against the model (a failed
        check leaves the reader without a model, so that a later warm_up tries again)."""
        for key, value in DEFAULTS.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        #: Segment ids go in only when the network has more than one segment type (BERT, ELECTRA) and the
        #: tokenizer's ids fit them. The network decides, not the tokenizer: klue/roberta's BERT-style tokenizer
        #: lists token_type_ids and gives the passage segment 1, but its RoBERTa has one segment type
        #: (type_vocab_size 1), where a 1 is an index error (a device-side assert on a GPU).
        segment_types = int(getattr(self.network.config, "type_vocab_size", 0) or 0)
        self.use_token_types = segment_types > 1 and (
            max(self.tokenizer("a", "b", return_token_type_ids=True)["token_type_ids"]) < segment_types
        )
        try:
            for key in ("max_length", "max_answer_length", "max_question_length"):
                options.positive_int(self._owner, key, getattr(self, key))
            if not getattr(self.tokenizer, "is_fast", False):
                raise DataError(
                    f"{self._owner} needs a fast (Rust) tokenizer for character offsets; {self.source} has none"
                )
            if self.max_length > self.max_positions:
                raise UsageError(
                    f"{self._owner}: max_length {self.max_length} exceeds the {self.max_positions} positions the "
                    f"model {self.source or '(in memory)'} takes; use a max_length of at most {self.max_positions}"
                )
        except (UsageError, DataError):
            self.tokenizer = self.network = None
            raise

    @classmethod
    def bootstrap(
        cls, texts: Sequence[str], size: str = "tiny", vocab_size: int = 16000, seed: int = 0, **options: Any
    ) -> ExtractiveReader:
        """A reader with a random ``BertForQuestionAnswering`` of a bootstrap ``size`` and a WordPiece tokenizer
        trained on ``texts`` (:mod:`odqa_transformers.bootstrap`), attached and ready to train."""
        import torch
        import transformers
        from odqa_transformers import hf
        from odqa_transformers.bootstrap import bert_config, bert_size, train_wordpiece

        reader = cls.from_options(options)  # bad options fail before the tokenizer is trained
        bert_size(size)
        tokenizer = train_wordpiece(texts, vocab_size, max_length=512)
        torch.manual_seed(seed)
        hf.quiet_transformers()
        network = transformers.BertForQuestionAnswering(bert_config(size, len(tokenizer), 512))
        reader.source = f"(bootstrap {size})"
        reader.attach(tokenizer, network)
        return reader  # type: ignore[return-value]

    @classmethod
    def from_encoder(cls, tokenizer: Any, encoder: Any, seed: int = 0, **options: Any) -> ExtractiveReader:
        """A reader whose transformer starts from ``encoder``'s weights (e.g. a DPR checkpoint's passage encoder,
        which Inverse Cloze Task and retrieval training taught the corpus) and a new, random span head."""
        import torch
        import transformers
        from odqa_transformers import hf

        reader = cls.from_options(options)
        hf.quiet_transformers()
        torch.manual_seed(seed)
        network = transformers.AutoModelForQuestionAnswering.from_config(encoder.config)
        base = getattr(network, network.base_model_prefix)
        missing, unexpected = base.load_state_dict(encoder.state_dict(), strict=False)
        # A QA head reads token states: the encoder's pooler (if any) has no place in it, and nothing else may differ.
        if any(not key.startswith("pooler.") for key in [*missing, *unexpected]):
            raise DataError(
                f"{cls.name!r}: the encoder's weights do not fit a {type(network).__name__} "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        reader.source = "(encoder)"
        reader.attach(tokenizer, network)
        return reader  # type: ignore[return-value]

    # --- tokenization -------------------------------------------------------------------------------------------

    def _cut(self, texts: Sequence[str], limit: int) -> list[str]:
        """Each text cut after its ``limit``-th token (at that token's last character)."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return [
            text if len(offsets) <= limit else text[: offsets[limit - 1][1]]
            for text, offsets in zip(texts, encoded["offset_mapping"])
        ]

    def question_sides(self, questions: Sequence[str], titles: Sequence[str] | None = None) -> list[str]:
        """The first segment of each pair: the question cut to ``max_question_length`` tokens, and with
        ``include_title`` the passage's title (cut the same way) after a separator."""
        firsts = self._cut(questions, self.max_question_length)
        if self.include_title and titles is not None:
            sep = self.tokenizer.sep_token or "|"
            cut_titles = self._cut([t or "" for t in titles], self.max_question_length)
            firsts = [f"{q} {sep} {t}" if t else q for q, t in zip(firsts, cut_titles)]
        return firsts

    def _pair_frame(self) -> _PairFrame:
        """The tokenizer's pair template (:class:`_PairFrame`), read off a probe pair."""
        for probe in ("a", "1", ".", "가"):
            encoded = self.tokenizer(probe, probe, return_token_type_ids=True)
            sequence = encoded.sequence_ids(0)
            if 0 in sequence and 1 in sequence:
                break
        else:
            raise DataError(f"{self._owner}: cannot tell where the tokenizer puts a pair's special tokens")
        ids = np.asarray(encoded["input_ids"], np.int64)
        types = np.asarray(encoded["token_type_ids"], np.int64)
        first = [i for i, s in enumerate(sequence) if s == 0]
        second = [i for i, s in enumerate(sequence) if s == 1]
        parts = slice(0, first[0]), slice(first[-1] + 1, second[0]), slice(second[-1] + 1, len(ids))
        segment_types = int(types[first[0]]), int(types[second[0]])
        return _PairFrame(*(ids[part] for part in parts), *(types[part] for part in parts), *segment_types)

    def _pair_windows(
        self, firsts: Sequence[str], texts: Sequence[str], text_of: Sequence[int], limit: int | None = None
    ) -> Any:
        """Yield the windows (:class:`_Window`) of the pairs ``(firsts[i], texts[text_of[i]])``, streamed
        (:func:`odqa_readers.windows.stream_windows`): the passage's tokens are cut into windows of the room the
        question leaves (``max_length`` less the question and the special tokens) sharing ``doc_stride`` tokens
        (capped at half the room). Each pair's windows come in order; pairs of one text come together.
        ``limit``: at most that many windows per pair."""
        frame = self._pair_frame()
        encoded = self.tokenizer(list(firsts), add_special_tokens=False, return_offsets_mapping=True)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        room = [self.max_length - n - frame.specials for n in lengths]
        worst = int(np.argmin(room))
        if room[worst] < MIN_CONTEXT_TOKENS:
            raise UsageError(
                f"{self._owner}: max_length {self.max_length} leaves {max(room[worst], 0)} tokens for the passage "
                f"after a question of {lengths[worst]} tokens (at least {MIN_CONTEXT_TOKENS} needed); raise "
                "max_length or lower max_question_length"
            )
        cursors: list[list[WindowCursor]] = [[] for _ in texts]
        for pair, text in enumerate(text_of):
            stride = min(self.doc_stride, room[pair] // 2)
            cursors[text].append(WindowCursor(room[pair], room[pair] - stride, key=pair, limit=limit))
        prefixes: dict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}
        tail_offsets = np.zeros((len(frame.tail), 2), np.int64)
        for cursor, number, ids, offsets in stream_windows(self.tokenizer, texts, cursors):
            pair = cursor.key
            if pair not in prefixes:  # the window's tokens before the passage: head, question side, middle
                question = np.asarray(encoded["input_ids"][pair], np.int64)
                types = None
                if self.use_token_types:
                    types = np.concatenate(
                        [frame.head_types, np.full(len(question), frame.question_type), frame.middle_types]
                    )
                prefixes[pair] = (
                    np.concatenate([frame.head, question, frame.middle]),
                    types,
                    np.concatenate(
                        [
                            np.zeros((len(frame.head), 2), np.int64),
                            np.asarray(encoded["offset_mapping"][pair], np.int64).reshape(-1, 2),
                            np.zeros((len(frame.middle), 2), np.int64),
                        ]
                    ),
                )
            prefix_ids, prefix_types, prefix_offsets = prefixes[pair]
            context = np.zeros(len(prefix_ids) + len(ids) + len(frame.tail), bool)
            context[len(prefix_ids) : len(prefix_ids) + len(ids)] = True
            types = None
            if prefix_types is not None:
                types = np.concatenate([prefix_types, np.full(len(ids), frame.passage_type), frame.tail_types])
            if cursor.done:
                del prefixes[pair]
            yield _Window(
                pair,
                number,
                np.concatenate([prefix_ids, ids, frame.tail]),
                types,
                np.concatenate([prefix_offsets, offsets, tail_offsets]),
                context,
                int(offsets[-1, 1]) if len(offsets) else 0,
                cursor.done,
                cursor.cut,
            )

    def tokenize_pairs(self, firsts: Sequence[str], passages: Sequence[str]) -> Windows:
        """The windows of the pairs ``(firsts[i], passages[i])``: the passage truncated and overflowing into
        windows of ``max_length`` tokens sharing ``doc_stride`` tokens (capped for long questions), as the
        tokenizer's overflowing tokens would give them; each passage text is tokenized once, in pieces."""
        windows = Windows([], [] if self.use_token_types else None, [], [], [], [])
        if not firsts:
            return windows
        texts = list(dict.fromkeys(passages))
        position = {text: i for i, text in enumerate(texts)}
        made = sorted(
            self._pair_windows(firsts, texts, [position[p] for p in passages]), key=lambda w: (w.pair, w.number)
        )
        for window in made:
            windows.input_ids.append(window.input_ids.tolist())
            if windows.token_type_ids is not None:
                windows.token_type_ids.append(window.token_type_ids.tolist())
            windows.offsets.append([(int(a), int(b)) for a, b in window.offsets])
            windows.context.append(window.context.tolist())
            windows.pair.append(window.pair)
            windows.number.append(window.number)
        return windows

    def _pad(self, rows: Sequence[Sequence[int]], value: int) -> np.ndarray:
        width = max(len(r) for r in rows)
        out = np.full((len(rows), width), value, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    def _inputs(self, ids: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None) -> dict[str, Any]:
        """Padded model inputs (torch, on the device) of some windows."""
        import torch

        input_ids = self._pad(ids, self.tokenizer.pad_token_id or 0)
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(self._pad([[1] * len(r) for r in ids], 0)),
        }
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(self._pad(types, 0))
        return {k: v.to(self.torch_device) for k, v in batch.items()}

    # --- reading ------------------------------------------------------------------------------------------------

    def read(self, questions: Sequence[Question], results: RankedResults, n_best: int = 5) -> list[list[Prediction]]:
        """Up to ``n_best`` spans per question from its results row, best first (``[]`` for a row of no passage).

        Each prediction has ``doc_id`` (the passage's id), ``start`` (character offset of the answer in its text),
        ``score`` (start + end logit) and ``metadata = {"passage_rank": r, "window": w}``. Windows are made,
        scored and forgotten block by block (at most ``window_block`` at a time); each question keeps its
        running ``n_best``.
        """
        n_best = options.positive_int(self._owner, "n_best", n_best)
        if len(results) != len(questions):
            raise UsageError(f"{self._owner}: {len(questions)} questions but {len(results)} rows of results")
        out: list[list[Prediction]] = [[] for _ in questions]
        documents = results.documents
        q_of, rank_of = (a.astype(np.int64) for a in np.nonzero(results.indices >= 0))  # pairs, question-major
        row_of = results.indices[q_of, rank_of].astype(np.int64)
        if not len(q_of):
            return out
        self.warm_up()
        self.check_corpus(documents, row_of)
        if self.lexical is not None:
            return self.lexical.read(questions, results, n_best, label=f"{self.name}: reading (lexical)")
        question_sides = self.question_sides([q.text for q in questions]) if not self.include_title else None
        best, pairs, numbers = _empty_spans(), np.zeros(0, np.int64), np.zeros(0, np.int64)
        cut = 0
        was_training = self.network.training
        self.network.eval()
        questions_done, scored = 0, 0  # the bar counts passages; its postfix questions read and windows scored

        def show(windows: int) -> None:
            bar.set_postfix_str(f"{questions_done:,}/{len(questions):,} questions, {windows:,} windows", False)

        try:
            with progress(len(q_of), f"{self.name}: reading", "passage", unit_scale=True) as bar:
                for block in self._window_blocks(questions, question_sides, documents, q_of, row_of):
                    spans, pair_of, window_of = [best], [pairs], [numbers]
                    for batch, (block_spans, window_ids) in enumerate(self._score_windows(block, n_best)):
                        spans.append(block_spans)
                        pair_of.append(block.pair[window_ids])
                        window_of.append(block.number[window_ids])
                        # A block of window_block windows takes long on a CPU: say so batch by batch.
                        show(scored + min((batch + 1) * self.batch_size, len(block)))
                        bar.update(0)
                    scored += len(block)
                    merged = Spans(*(np.concatenate([getattr(s, f) for s in spans]) for f in _SPAN_FIELDS))
                    pairs, numbers = np.concatenate(pair_of), np.concatenate(window_of)
                    # Each question's n-best so far: a span cut here has n_best better ones, and keeps them.
                    kept = merge_spans(merged, q_of[pairs], row_of[pairs], rank_of[pairs], numbers, n_best)
                    best, pairs, numbers = merged.take(kept), pairs[kept], numbers[kept]
                    cut += block.passages_cut
                    questions_done = block.questions_done
                    show(scored)
                    bar.update(block.passages_read - bar.n)
        finally:
            self.network.train(was_training)
        if cut:
            limit = self.max_windows_per_passage
            stderr_echo(
                f"warning: {self._owner} read only the first {limit} windows of {cut} of {len(q_of)} passages "
                f"(max_windows_per_passage={limit}); answers further in were not considered"
            )
        for i in range(len(best)):
            p = int(pairs[i])
            doc = documents[int(row_of[p])]
            char_start, char_end = int(best.char_start[i]), int(best.char_end[i])
            out[int(q_of[p])].append(
                Prediction(
                    question_id=questions[int(q_of[p])].id,
                    answer=doc.text[char_start:char_end],
                    score=float(best.score[i]),
                    doc_id=doc.id,
                    start=char_start,
                    metadata={"passage_rank": int(rank_of[p]), "window": int(numbers[i])},
                )
            )
        return out

    def _window_blocks(
        self,
        questions: Sequence[Question],
        question_sides: list[str] | None,
        documents: Sequence[Any],
        q_of: np.ndarray,
        row_of: np.ndarray,
    ) -> Any:
        """Yield the windows of the pairs ``(q_of[i], row_of[i])`` in blocks (:class:`_WindowBlock`) of at most
        ``window_block`` windows; a block never spans two blocks of :data:`PAIR_BLOCK` pairs."""
        read = ReadProgress()
        # Pairs still to read per question: a question is done when its last pair's last window is made.
        pairs_left = np.bincount(q_of, minlength=len(questions))
        done = int((pairs_left == 0).sum())
        for block in range(0, len(q_of), PAIR_BLOCK):
            members = np.arange(block, min(block + PAIR_BLOCK, len(q_of)))
            rows = row_of[members].tolist()
            texts = list(dict.fromkeys(rows))  # each passage once, however many questions read it
            position = {row: i for i, row in enumerate(texts)}
            if question_sides is None:
                titles = [documents[row].title for row in rows]
                firsts = self.question_sides([questions[int(q_of[p])].text for p in members], titles)
            else:
                firsts = [question_sides[int(q_of[p])] for p in members]
            windows: list[_Window] = []
            cut = 0
            for window in self._pair_windows(
                firsts,
                [documents[row].text for row in texts],
                [position[row] for row in rows],
                self.max_windows_per_passage,
            ):
                length = len(documents[rows[window.pair]].text)
                read.advance(block + window.pair, window.read_to, length, window.last)
                cut += window.last and window.cut
                if window.last:
                    question = int(q_of[block + window.pair])
                    pairs_left[question] -= 1
                    done += int(pairs_left[question] == 0)
                windows.append(window)
                if len(windows) == self.window_block:
                    yield self._block(windows, members, read.read, cut, done)
                    windows, cut = [], 0
            if windows:
                yield self._block(windows, members, read.read, cut, done)

    @staticmethod
    def _block(windows: list[_Window], members: np.ndarray, read: float, cut: int, done: int) -> _WindowBlock:
        pair = members[np.asarray([w.pair for w in windows], np.int64)]
        return _WindowBlock(windows, pair, np.asarray([w.number for w in windows], np.int64), read, cut, done)

    def _score_windows(self, block: _WindowBlock, n_best: int) -> Any:
        """Yield ``(spans, window indices)`` per model batch: each window's ``n_best`` best spans. Windows go
        longest first (ties: by pair, then number), so that each batch pads little."""
        import torch
        from odqa_transformers import hf

        windows = block.windows
        order = np.lexsort((block.number, block.pair, [-len(w.input_ids) for w in windows]))
        use_types = bool(windows) and windows[0].token_type_ids is not None
        with torch.inference_mode(), hf.autocast(self.torch_device, self.run_precision):
            for b in range(0, len(order), self.batch_size):
                members = order[b : b + self.batch_size]
                types = [windows[i].token_type_ids for i in members] if use_types else None
                batch = self._inputs([windows[i].input_ids for i in members], types)
                output = self.network(**batch)
                width = batch["input_ids"].shape[1]
                context = np.zeros((len(members), width), bool)
                offsets = np.zeros((len(members), width, 2), np.int64)
                for j, i in enumerate(members):
                    n = len(windows[i].context)
                    context[j, :n] = windows[i].context
                    offsets[j, :n] = windows[i].offsets
                start_logits = output.start_logits.float().cpu().numpy()
                end_logits = output.end_logits.float().cpu().numpy()
                spans = decode_spans(
                    start_logits,
                    end_logits,
                    offsets,
                    context,
                    top_n=self.top_spans_per_passage,
                    max_answer_length=self.max_answer_length,
                    keep=n_best,
                )
                if self.score == "minus-null":  # position 0 is [CLS], the no-answer target of training
                    null = start_logits[:, 0] + end_logits[:, 0]
                    spans = Spans(*(getattr(spans, f) for f in _SPAN_FIELDS[:-1]), spans.score - null[spans.window])
                yield spans, members[spans.window]

    # --- training hooks -----------------------------------------------------------------------------------------

    def training_features(self, examples: Sequence[ReaderExample]) -> list[dict[str, Any]]:
        """One feature per window of each example (HF ``run_qa.py`` labelling): ``start_positions`` and
        ``end_positions`` are the answer's first and last tokens in a window that holds the whole answer, and 0
        (the [CLS] token: no answer) in the other windows and for examples without an answer."""
        self.warm_up()
        if not examples:
            return []
        spans = [_answer_span(ex) for ex in examples]
        firsts = self.question_sides([ex.question.text for ex in examples], [ex.document.title for ex in examples])
        windows = self.tokenize_pairs(firsts, [ex.document.text for ex in examples])
        features = []
        for w in range(len(windows)):
            start = end = 0
            span = spans[windows.pair[w]]
            if span is not None:
                offsets = np.asarray(windows.offsets[w], np.int64)
                ctx = np.flatnonzero(windows.context[w])
                first, last = offsets[ctx, 0], offsets[ctx, 1]
                if len(ctx) and first[0] <= span[0] and last[-1] >= span[1]:
                    start = int(ctx[np.flatnonzero(first <= span[0])[-1]])
                    end = int(ctx[np.flatnonzero(last >= span[1])[0]])
            feature: dict[str, Any] = {
                "input_ids": windows.input_ids[w],
                "attention_mask": [1] * len(windows.input_ids[w]),
            }
            if windows.token_type_ids is not None:
                feature["token_type_ids"] = windows.token_type_ids[w]
            feature["start_positions"] = start
            feature["end_positions"] = end
            features.append(feature)
        return features

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Features padded to the longest of the batch, as torch tensors on the reader's device."""
        import torch

        types = [f["token_type_ids"] for f in features] if all("token_type_ids" in f for f in features) else None
        batch = self._inputs([f["input_ids"] for f in features], types)
        for key in ("start_positions", "end_positions"):
            batch[key] = torch.tensor([int(f[key]) for f in features], dtype=torch.long, device=self.torch_device)
        return batch

    def training_loss(self, batch: dict[str, Any]) -> Any:
        """The mean of the start and end cross-entropies (the QA head's own loss)."""
        return self.network(**batch).loss


def _answer_span(example: ReaderExample) -> tuple[int, int] | None:
    """The answer's character span in the example's passage (None: no answer).

    ``answer_start`` is used when it points at the answer, else the answer's first occurrence (as
    :func:`odqa_readers.training.reader_examples` does); an answer that is not in the passage is a DataError.
    """
    if example.answer is None:
        return None
    text, answer, start = example.document.text, example.answer, example.answer_start
    if start is None or start < 0 or text[start : start + len(answer)] != answer:
        start = text.find(answer) if answer else -1
    if start < 0:
        raise DataError(
            f"question {example.question.id!r}: answer {answer!r} is not in passage {example.document.id!r}"
        )
    return start, start + len(answer)


__all__ = ["DEFAULTS", "ExtractiveReader", "Spans", "Windows", "decode_spans", "merge_spans"]
