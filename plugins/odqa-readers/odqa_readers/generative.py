"""The ``generative`` reader: a seq2seq model (T5) that writes the answer, per passage or Fusion-in-Decoder.

Input. Every (question, passage) pair is read as ``question: {question} context: {title} {passage}``
(:func:`format_input`, the one format of training and reading). Long passages are never silently truncated: the
passage is tokenized with offsets and cut into overlapping token chunks (:func:`stream_chunks`) that fit
``max_length`` together with the question, the title and the special tokens; consecutive chunks share
``chunk_stride`` tokens (at most half a chunk, so that a long question cannot make the chunks crawl). A question
that leaves fewer than 16 tokens of a chunk for the passage is a usage error.

Modes.

- ``passages``: every chunk of every retrieved passage is generated from separately; the answers are pooled by
  normalised text (:func:`normalize_answer`) across chunks and passages with ``aggregate`` (``max``: the best
  log-probability; ``sum``: the log of the summed probabilities).
- ``fid`` (Fusion-in-Decoder, Izacard & Grave 2021): the encoder reads each chunk of a question's passages
  (at most ``max_passages`` passages) separately; their outputs are concatenated along the sequence and the decoder
  generates one answer over all of them.

What chunks without the answer get. In ``passages`` training every chunk is a feature: the chunk holding the whole
answer span is trained to produce the answer, every other chunk — and every chunk of a retrieved passage without
the answer — to produce the empty answer (just the end-of-sequence token). At reading time an empty generation
therefore means "no answer here" and is skipped; a question whose chunks all say so gets no prediction. (An answer
longer than a chunk goes with the chunk where it starts; an answer not found in its passage with every chunk.) In
``fid`` training a question is one feature: all chunks of its passages, and the answer (empty when none of its
passages holds one).

Snapping. The bootstrap WordPiece tokenizer lower-cases and re-spaces what it decodes ("1,000" may come back as
"1 , 000"). With ``snap`` each generated answer is mapped back to the passage: the first substring whose normalised
form (NFKC, lower-case, whitespace removed) equals the answer's (preferring one on word boundaries) becomes the
prediction's exact answer text, with its ``doc_id`` and ``start`` (:func:`snap_answer`). An answer found in no
passage keeps its decoded text and ``start=None``.

Long passages (:mod:`odqa_readers.windows`). Chunks are streamed: passages are tokenized in pieces of at most
200,000 characters and each chunk is made as soon as the tokens read so far decide it. In ``passages`` mode at
most ``chunk_block`` chunks are held and generated from at a time, each question pooling its answers as they
come, so memory stays bounded whatever a passage's length. ``fid`` holds all the chunks of a question at once
(their encoder outputs feed one decoding), so it reads at most ``max_chunks`` chunks per question (256 by
default; its passages' first ones, in rank order) and says on stderr how many questions that cut. In both modes
``max_chunks_per_passage`` reads only the first chunks of each passage (with a warning), to bound the time a very
long passage takes, and a progress bar counts the passages read.

Scores are log-probabilities of the generated sequence (the sum of its token log-probabilities, the end token
included); with ``num_beams > 1`` every beam is a candidate. ``metadata`` holds ``mode`` and ``passage_rank``, the
0-based column in the retrieval row of the passage the answer came from (fid: the passage it snapped to; None when
it snapped to none).
"""

from __future__ import annotations

import contextlib
import functools
import math
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from odqa_core import options
from odqa_core.errors import DataError, UsageError
from odqa_core.progress import progress, stderr_echo
from odqa_core.types import Document, Prediction, Question, RankedResults
from odqa_readers.base import ReaderExample, TransformerReader
from odqa_readers.windows import ReadProgress, WindowCursor, stream_windows

MODES = ("passages", "fid")
AGGREGATES = ("max", "sum")
#: Fewest passage tokens a chunk must leave room for after the question.
MIN_CONTEXT_TOKENS = 16
DEFAULTS: dict[str, Any] = {"max_length": 384, "chunk_stride": 128, "max_answer_length": 32, "mode": "fid"}
#: (question, passage) pairs chunked together while reading in ``passages`` mode; their chunks, up to
#: ``chunk_block`` of them, are generated from as one block (sorted by length into batches).
PAIR_BLOCK = 1024
#: fid: passages chunked together while reading, a few questions' worth (at most ``max_chunks`` chunks each).
FID_PAIR_BLOCK = 64
_OWNER = "reader 'generative'"


# --- input format and chunking ------------------------------------------------------------------------------------


def format_input(question: str, title: str, passage: str = "") -> str:
    """The model input of a question and a passage (chunk): ``question: {q} context: {title} {passage}``.

    :func:`passage_chunks` tokenizes ``format_input(question, title)`` and appends the passage tokens of a chunk.
    """
    return " ".join(part for part in (f"question: {question} context:", title, passage) if part)


@dataclass(frozen=True)
class Chunk:
    """The model input of one chunk and the character span ``[start, end)`` of the passage text it holds
    (``input_ids``: a list from :func:`passage_chunks`, an array while reading)."""

    input_ids: Sequence[int]
    start: int
    end: int


def _special_frame(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single text (``[CLS]``/``[SEP]``, or T5's ``</s>``)."""
    probe = "question"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return full[:i], full[i + len(plain) :]
    raise DataError("cannot tell where the tokenizer puts its special tokens")


def stream_chunks(
    tokenizer: Any,
    pairs: Sequence[tuple[str, Document]],
    max_length: int,
    chunk_stride: int,
    limit: int | None = None,
) -> Iterator[tuple[int, int, Chunk, WindowCursor]]:
    """``(pair, number, chunk, cursor)`` of every chunk of each ``(question text, passage)`` pair, streamed
    (:func:`odqa_readers.windows.stream_windows`): each passage text is tokenized once, in pieces, whatever its
    length. Chunks are windows of the passage tokens that fit ``max_length`` together with the question and title,
    overlapping by ``chunk_stride`` tokens (at most half a window); a pair's come in order, the pairs of one text
    together. The chunks' ``input_ids`` are arrays; ``cursor.cut`` tells that ``limit`` (chunks per pair) stopped
    the pair before the end of its passage."""
    if not pairs:
        return
    head, tail = _special_frame(tokenizer)
    prefixes = list(dict.fromkeys(format_input(q, d.title) for q, d in pairs))
    prefix_ids = dict(zip(prefixes, tokenizer(prefixes, add_special_tokens=False)["input_ids"]))
    texts = list(dict.fromkeys(d.text for _, d in pairs))
    position = {text: i for i, text in enumerate(texts)}
    cursors: list[list[WindowCursor]] = [[] for _ in texts]
    frames = []
    for i, (question, doc) in enumerate(pairs):
        prefix = head + prefix_ids[format_input(question, doc.title)]
        window = max_length - len(prefix) - len(tail)
        if window < MIN_CONTEXT_TOKENS:
            raise UsageError(
                f"{_OWNER}: the question and title take {len(prefix) + len(tail)} of max_length={max_length} "
                f"tokens, leaving {max(window, 0)} (fewer than {MIN_CONTEXT_TOKENS}) for the passage; raise "
                "max_length or shorten the question"
            )
        step = window - min(chunk_stride, window // 2)
        cursors[position[doc.text]].append(WindowCursor(window, step, key=i, limit=limit))
        frames.append(np.asarray(prefix, np.int64))
    end = np.asarray(tail, np.int64)
    for cursor, number, ids, offsets in stream_windows(tokenizer, texts, cursors):
        span = (int(offsets[0, 0]), int(offsets[-1, 1])) if len(ids) else (0, 0)
        yield cursor.key, number, Chunk(np.concatenate([frames[cursor.key], ids, end]), *span), cursor


def passage_chunks(
    tokenizer: Any, pairs: Sequence[tuple[str, Document]], max_length: int, chunk_stride: int
) -> list[list[Chunk]]:
    """The chunks of each ``(question text, passage)`` pair (:func:`stream_chunks`, with ``input_ids`` lists)."""
    out: list[list[Chunk]] = [[] for _ in pairs]
    for pair, _, chunk, _ in stream_chunks(tokenizer, pairs, max_length, chunk_stride):
        out[pair].append(Chunk(chunk.input_ids.tolist(), chunk.start, chunk.end))
    return out


# --- snapping -----------------------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """NFKC, lower-case, all whitespace removed: the form in which a generated answer meets its passage."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


_WHITESPACE = np.array([c for c in range(0x3100) if chr(c).isspace()], np.uint32)


def _is_cluster_start(char: str) -> bool:
    """Whether a character starts a new unit of normalisation (not a combining mark or a conjoining jamo)."""
    code = ord(char)
    return not unicodedata.combining(char) and not (0x1160 <= code <= 0x11FF or 0xD7B0 <= code <= 0xD7FF)


@functools.lru_cache(maxsize=2048)
def _char_map(text: str) -> tuple[str, np.ndarray, np.ndarray]:
    """The normalised ``text`` and, for each of its characters, the start and end in ``text`` of the characters
    it came from (a base character with its combining marks is normalised as one unit)."""
    lowered = text.lower()
    if len(lowered) == len(text) and unicodedata.is_normalized("NFKC", text):
        # The common case, vectorised: characters map one to one; only whitespace goes.
        codes = np.frombuffer(lowered.encode("utf-32-le"), np.uint32)
        keep = np.flatnonzero(~np.isin(codes, _WHITESPACE))
        return codes[keep].tobytes().decode("utf-32-le"), keep, keep + 1
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    bounds = [i for i, c in enumerate(text) if i == 0 or _is_cluster_start(c)] + [len(text)]
    for s, e in zip(bounds, bounds[1:]):
        piece = normalize_answer(text[s:e])
        pieces.append(piece)
        starts.extend([s] * len(piece))
        ends.extend([e] * len(piece))
    return "".join(pieces), np.asarray(starts, np.int64), np.asarray(ends, np.int64)


def snap_answer(answer: str, text: str) -> tuple[int, int] | None:
    """The span ``[start, end)`` of ``text`` whose normalised form (:func:`normalize_answer`) is the answer's.

    The first such span on word boundaries wins, else the first at all; None when there is none.
    """
    target = normalize_answer(answer)
    if not target:
        return None
    norm, starts, ends = _char_map(text)
    first = None
    at = norm.find(target)
    while at >= 0:
        last = at + len(target) - 1
        s, e = int(starts[at]), int(ends[last])
        whole_units = (at == 0 or starts[at - 1] != s) and (last + 1 == len(norm) or ends[last + 1] != e)
        if whole_units:
            if (s == 0 or not text[s - 1].isalnum()) and (e == len(text) or not text[e].isalnum()):
                return s, e
            first = first or (s, e)
        at = norm.find(target, at + 1)
    return first


# --- the reader ---------------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    answer: str
    logprob: float
    doc: Document | None
    rank: int | None
    start: int | None


class _AnswerPool:
    """A question's candidates pooled by normalised answer as they come: the first best occurrence of each answer,
    scored by ``aggregate`` (``max``: its log-probability; ``sum``: the log of the summed probabilities of all its
    occurrences, which are kept for that, one float each)."""

    def __init__(self, aggregate: str) -> None:
        self.aggregate = aggregate
        self.best: dict[str, _Candidate] = {}
        self.logprobs: dict[str, list[float]] = {}

    def add(self, candidate: _Candidate) -> None:
        key = normalize_answer(candidate.answer)
        if key not in self.best or candidate.logprob > self.best[key].logprob:
            self.best[key] = candidate
        if self.aggregate == "sum":
            self.logprobs.setdefault(key, []).append(candidate.logprob)

    def pooled(self) -> list[_Candidate]:
        if self.aggregate == "max":
            return list(self.best.values())
        pooled = []
        for key, best in self.best.items():
            top = best.logprob
            total = top + math.log(sum(math.exp(logprob - top) for logprob in self.logprobs[key]))
            pooled.append(_Candidate(best.answer, total, best.doc, best.rank, best.start))
        return pooled


class GenerativeReader(TransformerReader):
    """Generates answers with a seq2seq model (see the module docstring).

    Options: ``model`` (HF seq2seq model, reader checkpoint or ``sample``); ``mode`` (``fid``, the default, or
    ``passages``); ``max_length`` (input tokens of a chunk, 384), ``chunk_stride`` (tokens shared by consecutive
    chunks, 128), ``max_answer_length`` (generated tokens, 32) — these four are stored in a checkpoint and restored
    from it unless given; ``num_beams`` (every beam is a candidate); ``batch_size`` (chunks per encoder or
    generation call; fid batches whole questions up to that many chunks); ``device``; ``precision``; ``snap``;
    ``max_passages`` (fid: the top passages of a row read together; None: all); ``aggregate`` (``max`` or ``sum``,
    how ``passages`` mode pools an answer found in several chunks); ``max_chunks`` (fid: the most chunks of a
    question read together, 256); ``max_chunks_per_passage`` (None: all); ``chunk_block`` (``passages``: chunks held
    and generated from at a time while reading, 2048). See "Long passages" in the module docstring.
    """

    name = "generative"
    auto_class = "AutoModelForSeq2SeqLM"
    stored_options = ("max_length", "chunk_stride", "max_answer_length", "mode")

    def __init__(
        self,
        *,
        model: str | None = None,
        mode: str | None = None,
        max_length: int | None = None,
        chunk_stride: int | None = None,
        max_answer_length: int | None = None,
        num_beams: int = 1,
        batch_size: int = 16,
        device: str = "auto",
        precision: str = "auto",
        snap: bool = True,
        max_passages: int | None = None,
        aggregate: str = "max",
        max_chunks: int = 256,
        max_chunks_per_passage: int | None = None,
        chunk_block: int = 2048,
    ) -> None:
        from odqa_transformers.hf import DEVICES, PRECISIONS

        given = {"mode": mode, "max_length": max_length, "chunk_stride": chunk_stride}
        given["max_answer_length"] = max_answer_length
        self.remember_given(given)
        values = {key: DEFAULTS[key] if value is None else value for key, value in given.items()}
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise UsageError(f"{_OWNER}: option 'model' must be a model path or HuggingFace id, got {model!r}")
        options.choice(_OWNER, "mode", values["mode"], MODES)
        for key in ("max_length", "max_answer_length"):
            options.positive_int(_OWNER, key, values[key])
        for key, value in (("num_beams", num_beams), ("batch_size", batch_size)):
            options.positive_int(_OWNER, key, value)
        stride = values["chunk_stride"]
        # The overlap is at most half a chunk in any case (see passage_chunks); a stride the user gives must fit.
        too_long = chunk_stride is not None and stride >= values["max_length"]
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0 or too_long:
            raise UsageError(
                f"{_OWNER}: chunk_stride must be an integer from 0 to max_length - 1 ({values['max_length'] - 1}), "
                f"got {stride!r}"
            )
        if max_passages is not None:
            options.positive_int(_OWNER, "max_passages", max_passages)
        if max_chunks_per_passage is not None:
            options.positive_int(_OWNER, "max_chunks_per_passage", max_chunks_per_passage)
        options.positive_int(_OWNER, "max_chunks", max_chunks)
        options.positive_int(_OWNER, "chunk_block", chunk_block)
        options.boolean(_OWNER, "snap", snap)
        options.choice(_OWNER, "aggregate", aggregate, AGGREGATES)
        options.choice(_OWNER, "device", device, DEVICES)
        options.choice(_OWNER, "precision", precision, PRECISIONS)
        self.model = model
        self.mode: str = values["mode"]
        self.max_length: int = values["max_length"]
        self.chunk_stride: int = values["chunk_stride"]
        self.max_answer_length: int = values["max_answer_length"]
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.snap = snap
        self.max_passages = max_passages
        self.aggregate = aggregate
        self.max_chunks = max_chunks
        self.max_chunks_per_passage = max_chunks_per_passage
        self.chunk_block = chunk_block

    # --- model ----------------------------------------------------------------------------------------------------

    @classmethod
    def bootstrap(
        cls, texts: Sequence[str], size: str = "tiny", vocab_size: int = 16000, seed: int = 0, **options: Any
    ) -> GenerativeReader:
        from odqa_transformers.bootstrap import bootstrap_seq2seq

        reader = cls(**options)
        tokenizer, network = bootstrap_seq2seq(texts, size, vocab_size, max(512, reader.max_length), seed)
        reader.attach(tokenizer, network)
        return reader

    def check_model(self) -> None:
        from odqa_transformers import hf

        hf.quiet_transformers()
        config = self.network.config
        if not getattr(config, "is_encoder_decoder", False):
            raise DataError(f"{_OWNER}: the model is a {type(self.network).__name__}, not an encoder-decoder (T5)")
        if not getattr(self.tokenizer, "is_fast", False):
            raise DataError(f"{_OWNER}: the tokenizer is not a fast (Rust) tokenizer; chunking needs its offsets")
        from transformers import GenerationConfig

        generation = getattr(self.network, "generation_config", None)

        def setting(name: str) -> Any:
            """The model's generation setting, else its config's (where older checkpoints keep them)."""
            value = getattr(generation, name, None)
            return getattr(config, name, None) if value is None else value

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else setting("pad_token_id")
        eos = setting("eos_token_id")
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        if eos is None:
            eos = next((i for i in (self.tokenizer.eos_token_id, self.tokenizer.sep_token_id) if i is not None), None)
        start = setting("decoder_start_token_id")
        start = pad if start is None else start
        if pad is None or eos is None:
            raise DataError(f"{_OWNER}: the model and tokenizer define no padding or end-of-sequence token")
        self._pad_id, self._eos_id, self._start_id = int(pad), int(eos), int(start)
        # A model that forces a first token (facebook/bart-*: <s> after the </s> decoding starts from, as in BART's
        # pre-training) generates it before the answer: every training target starts with it too, so that
        # training and generation agree (without it the forced token takes the place of the answer's first one).
        forced_bos = setting("forced_bos_token_id")
        self._target_prefix = [] if forced_bos is None else [int(forced_bos)]
        # odqa's generation settings replace the model's own: generate() fills every setting odqa leaves unset
        # from the model's generation config, and a hub model's may hold summarisation settings (min_length,
        # no_repeat_ngram_size, length_penalty) that would change the answers.
        self.network.generation_config = GenerationConfig(
            decoder_start_token_id=self._start_id,
            eos_token_id=self._eos_id,
            pad_token_id=self._pad_id,
            forced_bos_token_id=None if forced_bos is None else int(forced_bos),
        )

    def _chunks(self, pairs: Sequence[tuple[str, Document]]) -> list[list[Chunk]]:
        return passage_chunks(self.tokenizer, pairs, self.max_length, self.chunk_stride)

    def _target(self, answer: str) -> list[int]:
        """Label ids of an answer: the forced first token if the model has one, the answer's tokens (at most
        ``max_answer_length - 1``) and the end token."""
        ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"] if answer else []
        return [*self._target_prefix, *ids[: self.max_answer_length - 1], self._eos_id]

    # --- training hooks -------------------------------------------------------------------------------------------

    def training_features(self, examples: Sequence[ReaderExample]) -> list[dict[str, Any]]:
        """``passages``: one feature per chunk (``input_ids``, ``labels``); ``fid``: one per question (``chunks``,
        the input ids of every chunk of its passages, and ``labels``). See the module docstring for the targets."""
        self.warm_up()
        chunks = self._chunks([(e.question.text, e.document) for e in examples])
        if self.mode == "fid":
            groups: dict[str, list[int]] = {}
            for i, example in enumerate(examples):
                groups.setdefault(example.question.id, []).append(i)
            features = []
            for members in groups.values():
                members = sorted(members, key=lambda i: not examples[i].has_answer)[: self.max_passages]
                answer = next((examples[i].answer for i in members if examples[i].answer is not None), "")
                inputs = [c.input_ids for i in members for c in chunks[i]]
                features.append({"chunks": inputs, "labels": self._target(answer)})
            return features
        features = []
        for example, pieces in zip(examples, chunks):
            holder = _answer_holders(example, pieces)
            answer = self._target(example.answer or "")
            empty = self._target("")
            for j, chunk in enumerate(pieces):
                features.append({"input_ids": chunk.input_ids, "labels": answer if j in holder else empty})
        return features

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        labels = _pad_rows([f["labels"] for f in features], -100)
        if "chunks" in features[0]:
            ids, mask = _pad_chunks([f["chunks"] for f in features], self._pad_id)
        else:
            ids = _pad_rows([f["input_ids"] for f in features], self._pad_id)
            mask = _pad_rows([[1] * len(f["input_ids"]) for f in features], 0)
        device = self.torch_device
        return {
            "input_ids": torch.from_numpy(ids).to(device),
            "attention_mask": torch.from_numpy(mask).to(device),
            "labels": torch.from_numpy(labels).to(device),
        }

    def training_loss(self, batch: dict[str, Any]) -> Any:
        if batch["input_ids"].dim() == 3:
            hidden, mask = self._fid_encode(batch["input_ids"], batch["attention_mask"])
            return self.network(encoder_outputs=(hidden,), attention_mask=mask, labels=batch["labels"]).loss
        return self.network(**batch).loss

    def _fid_encode(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
        """Encode every chunk ``(B, n, L)`` on its own; the outputs of a question's chunks concatenated
        ``(B, n * L, H)`` and their attention mask ``(B, n * L)`` (padding chunks are masked out)."""
        import torch

        b, n, length = input_ids.shape
        real = attention_mask.any(-1)
        flat_ids, flat_mask = input_ids[real], attention_mask[real]
        encoder = self.network.get_encoder()
        step = max(1, self.batch_size)
        parts = [
            encoder(input_ids=flat_ids[i : i + step], attention_mask=flat_mask[i : i + step]).last_hidden_state
            for i in range(0, flat_ids.shape[0], step)
        ]
        encoded = torch.cat(parts)
        hidden = encoded.new_zeros((b, n, length, encoded.shape[-1]))
        hidden[real] = encoded
        return hidden.reshape(b, n * length, -1), attention_mask.reshape(b, n * length)

    # --- reading --------------------------------------------------------------------------------------------------

    def read(self, questions: Sequence[Question], results: RankedResults, n_best: int = 5) -> list[list[Prediction]]:
        options.positive_int(_OWNER, "n_best", n_best)
        if len(results) != len(questions):
            raise UsageError(f"{_OWNER}: {len(questions)} questions but {len(results)} rows of retrieval results")
        if not questions:
            return []
        self.warm_up()
        hits = []
        for row in range(len(questions)):
            ranked = [(r, results.documents[i]) for r, i in enumerate(results.indices[row].tolist()) if i >= 0]
            hits.append(ranked[: self.max_passages] if self.mode == "fid" else ranked)
        self.check_corpus(results.documents, results.indices[results.indices >= 0])
        read = self._read_fid if self.mode == "fid" else self._read_passages
        self._cut = {"passages": 0, "questions": 0}
        # Questions read to the end and chunks generated from so far: the progress bar's postfix.
        self._status = {"questions": 0, "chunks": 0}
        with progress(sum(map(len, hits)), f"{self.name}: reading", "passage", unit_scale=True) as bar:
            candidates = read(questions, hits, bar)
        passages = sum(map(len, hits))
        if self._cut["passages"]:
            stderr_echo(
                f"warning: {_OWNER} read only the first {self.max_chunks_per_passage} chunks of "
                f"{self._cut['passages']} of {passages} passages (max_chunks_per_passage="
                f"{self.max_chunks_per_passage}); answers further in were not considered"
            )
        if self._cut["questions"]:
            stderr_echo(
                f"warning: {_OWNER} (fid) read only the first {self.max_chunks} chunks of the passages of "
                f"{self._cut['questions']} of {len(questions)} questions (max_chunks={self.max_chunks}); answers "
                "further in were not considered"
            )
        return [_best(q.id, cands, n_best, self.mode) for q, cands in zip(questions, candidates)]

    def _read_passages(
        self, questions: Sequence[Question], hits: list[list[tuple[int, Document]]], bar: Any
    ) -> list[list[_Candidate]]:
        """Every chunk generated from on its own, in blocks of at most ``chunk_block`` chunks (a block of
        :data:`PAIR_BLOCK` pairs whose chunks fit is one block); each question pools its answers as they come."""
        pairs = [(qi, rank, doc) for qi, row in enumerate(hits) for rank, doc in row]
        pools = [_AnswerPool(self.aggregate) for _ in hits]
        read = ReadProgress()
        pairs_left = [len(row) for row in hits]
        self._status["questions"] = pairs_left.count(0)
        for first in range(0, len(pairs), PAIR_BLOCK):
            members = pairs[first : first + PAIR_BLOCK]
            block: list[tuple[int, int, Chunk]] = []
            stream = stream_chunks(
                self.tokenizer,
                [(questions[qi].text, doc) for qi, _, doc in members],
                self.max_length,
                self.chunk_stride,
                self.max_chunks_per_passage,
            )
            for pair, number, chunk, cursor in stream:
                read.advance(first + pair, chunk.end, len(members[pair][2].text), cursor.done)
                self._cut["passages"] += cursor.done and cursor.cut
                self._status["chunks"] += 1
                if cursor.done:
                    qi = members[pair][0]
                    pairs_left[qi] -= 1
                    self._status["questions"] += int(pairs_left[qi] == 0)
                block.append((first + pair, number, chunk))
                if len(block) == self.chunk_block:
                    self._generate_block(block, pairs, pools)
                    self._show_status(bar, len(hits))
                    bar.update(read.read - bar.n)
                    block = []
            if block:
                self._generate_block(block, pairs, pools)
                self._show_status(bar, len(hits))
                bar.update(read.read - bar.n)
        return [pool.pooled() for pool in pools]

    def _generate_block(
        self, block: list[tuple[int, int, Chunk]], pairs: list[tuple[int, int, Document]], pools: list[_AnswerPool]
    ) -> None:
        """Generate from a block of ``(pair, number, chunk)`` chunks, longest first (ties: by pair, then number),
        in batches of ``batch_size``; each answer goes to its question's pool."""
        import torch

        order = sorted(range(len(block)), key=lambda i: (-len(block[i][2].input_ids), block[i][0], block[i][1]))
        for at in range(0, len(order), self.batch_size):
            batch = [block[i] for i in order[at : at + self.batch_size]]
            ids = _pad_rows([c.input_ids for *_, c in batch], self._pad_id)
            mask = _pad_rows([[1] * len(c.input_ids) for *_, c in batch], 0)
            generated = self._generate(
                input_ids=torch.from_numpy(ids).to(self.torch_device),
                attention_mask=torch.from_numpy(mask).to(self.torch_device),
            )
            for (pair, _, chunk), beams in zip(batch, generated):
                qi, rank, doc = pairs[pair]
                for text, logprob in beams:
                    pools[qi].add(self._snap_to(text, logprob, [(rank, doc)], chunk))

    def _fid_inputs(
        self, questions: Sequence[Question], hits: list[list[tuple[int, Document]]]
    ) -> Iterator[tuple[int, list[Sequence[int]]]]:
        """``(question, chunk input ids)`` of every question in order: the chunks of its passages in rank order,
        at most ``max_chunks``. Passages are chunked a few questions (:data:`FID_PAIR_BLOCK` pairs) at a time."""
        per_passage = self.max_chunks_per_passage
        # The smaller limit stops a passage's chunks: max_chunks_per_passage (a passage cut) or max_chunks (then a
        # passage alone has more than its question may read: the question is cut).
        passage_limited = per_passage is not None and per_passage <= self.max_chunks
        limit = per_passage if passage_limited else self.max_chunks
        first = 0
        while first < len(hits):
            last, size = first + 1, len(hits[first])
            while last < len(hits) and size + len(hits[last]) <= FID_PAIR_BLOCK:
                size += len(hits[last])
                last += 1
            members = [(qi, doc) for qi in range(first, last) for _, doc in hits[qi]]
            chunks: list[list[Sequence[int]]] = [[] for _ in members]
            cut = [False] * len(members)
            pairs = [(questions[qi].text, doc) for qi, doc in members]
            stream = stream_chunks(self.tokenizer, pairs, self.max_length, self.chunk_stride, limit)
            for pair, _, chunk, cursor in stream:
                chunks[pair].append(chunk.input_ids)
                cut[pair] = cursor.cut
            at = 0
            for qi in range(first, last):
                mine = range(at, at + len(hits[qi]))
                at += len(hits[qi])
                inputs = [ids for pair in mine for ids in chunks[pair]]
                pairs_cut = sum(cut[pair] for pair in mine)
                if passage_limited:
                    self._cut["passages"] += pairs_cut
                if len(inputs) > self.max_chunks or (pairs_cut and not passage_limited):
                    self._cut["questions"] += 1
                yield qi, inputs[: self.max_chunks]
            first = last

    def _read_fid(
        self, questions: Sequence[Question], hits: list[list[tuple[int, Document]]], bar: Any
    ) -> list[list[_Candidate]]:
        """Questions generated from in groups of whole questions of at most ``batch_size`` chunks together (a
        question with more is a group of its own)."""
        found: list[list[_Candidate]] = [[] for _ in hits]
        group: list[tuple[int, list[Sequence[int]]]] = []
        total = 0
        for qi, inputs in self._fid_inputs(questions, hits):
            if not inputs:
                self._status["questions"] += 1
                self._show_status(bar, len(hits))
                bar.update(len(hits[qi]))
                continue
            if group and total + len(inputs) > self.batch_size:
                self._generate_fid(group, hits, found, bar)
                group, total = [], 0
            group.append((qi, inputs))
            total += len(inputs)
        if group:
            self._generate_fid(group, hits, found, bar)
        return found

    def _generate_fid(
        self,
        group: list[tuple[int, list[Sequence[int]]]],
        hits: list[list[tuple[int, Document]]],
        found: list[list[_Candidate]],
        bar: Any,
    ) -> None:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        ids, mask = _pad_chunks([inputs for _, inputs in group], self._pad_id)
        with self._inference():
            hidden, flat_mask = self._fid_encode(
                torch.from_numpy(ids).to(self.torch_device), torch.from_numpy(mask).to(self.torch_device)
            )
        generated = self._generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=flat_mask
        )
        for (qi, inputs), beams in zip(group, generated):
            found[qi] = _pool_max([self._snap_to(text, logprob, hits[qi], None) for text, logprob in beams])
            self._status["questions"] += 1
            self._status["chunks"] += len(inputs)
            self._show_status(bar, len(hits))
            bar.update(len(hits[qi]))

    def _show_status(self, bar: Any, n_questions: int) -> None:
        """The questions read and the chunks generated from so far, beside the bar's count of passages."""
        bar.set_postfix_str(
            f"{self._status['questions']:,}/{n_questions:,} questions, {self._status['chunks']:,} chunks",
            refresh=False,
        )

    def _inference(self) -> Any:
        import torch
        from odqa_transformers import hf

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(hf.autocast(self.torch_device, self.run_precision))
        return stack

    def _generate(self, **inputs: Any) -> list[list[tuple[str, float]]]:
        """Beams ``(decoded text, sequence log-probability)`` of each input row; empty answers left out."""
        from transformers import GenerationConfig

        config = GenerationConfig(
            max_new_tokens=self.max_answer_length + len(self._target_prefix),
            num_beams=self.num_beams,
            num_return_sequences=self.num_beams,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            decoder_start_token_id=self._start_id,
            eos_token_id=self._eos_id,
            pad_token_id=self._pad_id,
            forced_bos_token_id=self._target_prefix[0] if self._target_prefix else None,
        )
        with self._inference():
            out = self.network.generate(**inputs, generation_config=config)
            beam_indices = getattr(out, "beam_indices", None) if self.num_beams > 1 else None
            steps = self.network.compute_transition_scores(
                out.sequences, out.scores, beam_indices, normalize_logits=self.num_beams == 1
            ).float()
            tokens = out.sequences[:, -steps.shape[1] :] if steps.shape[1] else out.sequences[:, :0]
            ended = tokens == self._eos_id
            after_end = (ended.cumsum(1) - ended.long()) > 0
            logprobs = steps.masked_fill(after_end | ~steps.isfinite(), 0.0).sum(1).tolist()
        texts = self.tokenizer.batch_decode(tokens.tolist(), skip_special_tokens=True)
        rows = []
        for i in range(0, len(texts), self.num_beams):
            beams = zip(texts[i : i + self.num_beams], logprobs[i : i + self.num_beams])
            rows.append([(t.strip(), float(lp)) for t, lp in beams if t.strip()])
        return rows

    def _snap_to(
        self, text: str, logprob: float, passages: list[tuple[int, Document]], chunk: Chunk | None
    ) -> _Candidate:
        """A candidate answer, snapped to the exact text of the first of ``passages`` that holds it (the chunk's
        own span first) when ``snap`` is on."""
        if self.snap:
            for rank, doc in passages:
                span = None
                if chunk is not None:
                    span = snap_answer(text, doc.text[chunk.start : chunk.end])
                    span = (span[0] + chunk.start, span[1] + chunk.start) if span else None
                span = span or snap_answer(text, doc.text)
                if span:
                    return _Candidate(doc.text[span[0] : span[1]], logprob, doc, rank, span[0])
        if chunk is not None:  # per-passage mode: the answer came from this passage even when it is not in it
            rank, doc = passages[0]
            return _Candidate(text, logprob, doc, rank, None)
        return _Candidate(text, logprob, None, None, None)


# --- helpers ------------------------------------------------------------------------------------------------------


def _answer_holders(example: ReaderExample, chunks: list[Chunk]) -> set[int]:
    """Indices of the chunks trained to produce the example's answer (see the module docstring)."""
    if example.answer is None:
        return set()
    start = example.answer_start
    if start is None or example.document.text[start : start + len(example.answer)] != example.answer:
        start = example.document.text.find(example.answer)
    if start < 0:
        return set(range(len(chunks)))
    end = start + len(example.answer)
    holders = {j for j, c in enumerate(chunks) if c.start <= start and end <= c.end}
    if holders:
        return holders
    return {next((j for j, c in enumerate(chunks) if c.start <= start < c.end), 0)}


def _pool_max(candidates: list[_Candidate]) -> list[_Candidate]:
    best: dict[str, _Candidate] = {}
    for cand in candidates:
        key = normalize_answer(cand.answer)
        if key not in best or cand.logprob > best[key].logprob:
            best[key] = cand
    return list(best.values())


def _best(question_id: str, candidates: list[_Candidate], n_best: int, mode: str) -> list[Prediction]:
    ranked = sorted(candidates, key=lambda c: (-c.logprob, c.rank if c.rank is not None else math.inf, c.answer))
    return [
        Prediction(
            question_id,
            c.answer,
            c.logprob,
            c.doc.id if c.doc is not None else None,
            c.start,
            {"mode": mode, "passage_rank": c.rank},
        )
        for c in ranked[:n_best]
    ]


def _pad_rows(rows: Sequence[Sequence[int]], value: int) -> np.ndarray:
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), value, np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _pad_chunks(groups: Sequence[Sequence[Sequence[int]]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(B, n, L)`` input ids and attention mask of each question's chunks (missing chunks all padding)."""
    n = max(len(g) for g in groups)
    length = max(len(c) for g in groups for c in g)
    ids = np.full((len(groups), n, length), pad_id, np.int64)
    mask = np.zeros((len(groups), n, length), np.int64)
    for i, group in enumerate(groups):
        for j, chunk in enumerate(group):
            ids[i, j, : len(chunk)] = chunk
            mask[i, j, : len(chunk)] = 1
    return ids, mask
