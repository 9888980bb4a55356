"""Passages of any length, tokenized in bounded pieces and read in windows as a stream (both readers).

A reader cuts a passage into overlapping token windows (the extractive reader's windows, the generative reader's
chunks). Tokenizing a long passage in one call and building every window first made memory grow with the passage:
a fast tokenizer needs about 200 bytes per character of a call (its alignments, the tokens' strings, the Python
lists it returns), so one 5 MB document took 600 MB to tokenize and gigabytes as windows. Here

- :func:`token_pieces` tokenizes texts in calls of about :data:`TOKENIZE_CHARS` characters: short passages
  together, a long one in pieces cut where the pieces' tokens put together are the whole text's
  (:func:`piece_bounds`; each piece is tokenized with the word before it, whose tokens are dropped);
- :func:`stream_windows` feeds those pieces to :class:`WindowCursor` s — one per (question, passage) pair — that
  give each window as soon as the tokens seen so far decide it, while the tokens no cursor needs any more are
  dropped. A passage read by several questions of one call is tokenized once for all of them.

So reading holds a piece and a window's worth of tokens per passage at a time, whatever the passage's length. The
windows are the ones HuggingFace's overflowing tokens give (the tests check it on WordPiece, byte-level BPE and
SentencePiece tokenizers), except where those disagree with the tokenizer itself: a TemplateProcessing pair
template's segment ids hold in every window here (tokenizers gives the passage of every overflowing window but
the first segment id 1), and a token's offsets are the whole text's (a byte-level BPE post-processor with
``add_prefix_space`` keeps the leading space of each overflowing window's first token).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Characters tokenized in one call of the tokenizer: several short passages, or one piece of a long one
#: (about 40 MB of tokenizer memory).
TOKENIZE_CHARS = 200_000

#: A text that :func:`cuts_are_seamless` cuts at each of its spaces to test a tokenizer.
_SEAM_PROBE = "Seam probe: 1,000 words (and more) in 한국어 문장과 English, 3.5 km! The END."


def _is_cut(text: str, at: int) -> bool:
    """Whether ``text[at]`` is a space between two non-space characters."""
    return text[at] == " " and 0 < at < len(text) - 1 and not text[at - 1].isspace() and not text[at + 1].isspace()


def piece_bounds(text: str, size: int | None = None) -> list[int]:
    """Where ``text`` is cut into pieces of at most ``size`` (:data:`TOKENIZE_CHARS`) characters for tokenization:
    ``[0, ..., len(text)]``.

    A cut is the last space between two non-space characters in the second half of a piece (the text from that
    space on is the next piece). Word-splitting tokenizers — WordPiece, byte-level BPE, SentencePiece's Metaspace —
    begin a new word at such a space whether or not the text is cut there, so the pieces' tokens put together are
    the whole text's (:func:`cuts_are_seamless` checks a tokenizer). A stretch of more than ``size`` characters
    without such a space is not cut: its piece grows to the next space.
    """
    size = TOKENIZE_CHARS if size is None else size
    bounds = [0]
    while len(text) - bounds[-1] > size:
        start = bounds[-1]
        low, cut = start + max(size // 2, 1), text.rfind(" ", start + 1, start + size + 1)
        while cut >= low and not _is_cut(text, cut):
            cut = text.rfind(" ", low, cut)
        if cut < low:  # no cut in the second half: the first one after it
            cut = text.find(" ", start + size + 1)
            while cut >= 0 and not _is_cut(text, cut):
                cut = text.find(" ", cut + 1)
            if cut < 0:
                break
        bounds.append(cut)
    bounds.append(len(text))
    return bounds


def _tokenize(tokenizer: Any, texts: list[str]) -> tuple[list[list[int]], list[list[Any]]]:
    encoded = tokenizer(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return encoded["input_ids"], encoded["offset_mapping"]


def _context_start(text: str, start: int, low: int) -> int:
    """Where the tokenization of the piece from cut ``start`` begins: the cut before it (``low`` at the earliest).

    The word of context takes whatever a tokenizer does at the start of a text — byte-level BPE keeps the first
    token's leading space in its offsets when its post-processor adds a prefix space, a SentencePiece normaliser
    may prepend "▁" — and its tokens are dropped.
    """
    at = text.rfind(" ", low + 1, start)
    while at > low and not _is_cut(text, at):
        at = text.rfind(" ", low + 1, at)
    return max(at, low)


def _piece_tokens(
    tokenizer: Any, texts: Sequence[str], pieces: list[tuple[int, int, int, int]]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ids, offsets)`` of each piece ``(text, context, start, end)``: ``texts[text][context:end]`` tokenized (in
    one call for all), the tokens that start before ``start`` dropped, offsets in the whole text."""
    ids, offsets = _tokenize(tokenizer, [texts[i][c:b] for i, c, _, b in pieces])
    for (_, c, a, _), piece_ids, piece_offsets in zip(pieces, ids, offsets):
        spans = np.asarray(piece_offsets, np.int64).reshape(-1, 2) + c
        tokens = np.asarray(piece_ids, np.int64)
        if c < a:
            keep = spans[:, 0] >= a
            tokens, spans = tokens[keep], spans[keep]
        yield tokens, spans


def cuts_are_seamless(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` gives a text cut at its spaces (:func:`piece_bounds`) the tokens of the whole text.

    False for a tokenizer that does not split words at spaces the way WordPiece, byte-level BPE and SentencePiece's
    Metaspace do; such a tokenizer gets each passage whole.
    """
    bounds = [0, *(at for at in range(len(_SEAM_PROBE)) if _is_cut(_SEAM_PROBE, at)), len(_SEAM_PROBE)]
    (whole_ids,), (whole_offsets,) = _tokenize(tokenizer, [_SEAM_PROBE])
    pieces = [(0, _context_start(_SEAM_PROBE, a, 0) if a else 0, a, b) for a, b in zip(bounds, bounds[1:])]
    parts = list(_piece_tokens(tokenizer, [_SEAM_PROBE], pieces))
    ids = np.concatenate([part[0] for part in parts])
    offsets = np.concatenate([part[1] for part in parts])
    return ids.tolist() == list(whole_ids) and offsets.tolist() == [list(o) for o in whole_offsets]


@dataclass(frozen=True)
class TokenPiece:
    """Consecutive tokens of text number ``text``: their ids, their character offsets ``(n, 2)`` in the whole text,
    and whether they end it."""

    text: int
    ids: np.ndarray
    offsets: np.ndarray
    last: bool


def token_pieces(tokenizer: Any, texts: Sequence[str], skip: set[int] | None = None) -> Iterator[TokenPiece]:
    """The tokens of ``texts`` (no special tokens), text after text, in pieces (:func:`piece_bounds`), tokenized in
    calls of at most :data:`TOKENIZE_CHARS` characters (several short texts in one call; a piece's call also holds
    the word before it). A text whose number is in ``skip`` when its next call is made (the caller may add to it
    while iterating) is left out from there on. An empty text is one empty piece."""
    skip = set() if skip is None else skip
    seamless: bool | None = None
    batch: list[tuple[int, int, int, int]] = []  # (text, context, start, end)
    size = 0

    def flush() -> Iterator[TokenPiece]:
        wanted = [p for p in batch if p[0] not in skip]
        batch.clear()
        for (i, *_, b), (ids, offsets) in zip(wanted, _piece_tokens(tokenizer, texts, wanted)):
            yield TokenPiece(i, ids, offsets, b == len(texts[i]))

    for i, text in enumerate(texts):
        bounds = piece_bounds(text)
        if len(bounds) > 2:
            seamless = cuts_are_seamless(tokenizer) if seamless is None else seamless
            bounds = bounds if seamless else [0, len(text)]
        for before, a, b in zip([0, *bounds], bounds, bounds[1:]):
            if i in skip:
                break
            context = _context_start(text, a, before) if a else 0
            if batch and size + (b - context) > TOKENIZE_CHARS:
                yield from flush()
                size = 0
            batch.append((i, context, a, b))
            size += b - context
    yield from flush()


@dataclass
class WindowCursor:
    """One reading of a token stream: windows of ``room`` tokens, ``step`` tokens apart, at most ``limit`` of them.

    As HuggingFace's overflowing tokens: windows start at 0, ``step``, ``2 * step`` ...; the last is the first that
    reaches the end of the stream; a stream of at most ``room`` tokens (even an empty one) is one window. ``key``
    is the caller's (e.g. the pair the cursor reads); ``cut`` tells that ``limit`` stopped it before the end.
    """

    room: int
    step: int
    key: Any = None
    limit: int | None = None
    start: int = 0
    number: int = 0
    done: bool = False
    cut: bool = False

    def windows(self, end: int, ended: bool) -> Iterator[tuple[int, int, int]]:
        """``(number, start, stop)`` of the next windows that the first ``end`` tokens decide (``ended``: the
        stream has no more)."""
        while not self.done:
            stop = self.start + self.room
            if stop >= end and not ended:
                return  # the next tokens decide whether this window is the last
            window = (self.number, self.start, min(stop, end))
            self.number += 1
            self.start += self.step
            if stop >= end:
                self.done = True
            elif self.limit is not None and self.number >= self.limit:
                self.done = self.cut = True
            yield window


def stream_windows(
    tokenizer: Any, texts: Sequence[str], cursors: Sequence[Sequence[WindowCursor]]
) -> Iterator[tuple[WindowCursor, int, np.ndarray, np.ndarray]]:
    """``(cursor, number, ids, offsets)`` of every window of every cursor of every text: ``cursors[i]`` read
    ``texts[i]``, which is tokenized once, in pieces (:func:`token_pieces`), and dropped as the cursors move on.

    ``ids`` and ``offsets`` (character offsets in the text, ``(n, 2)``) are views valid until the next window:
    copy what you keep. A text whose cursors are all done is not tokenized further.
    """
    skip = {i for i, readers in enumerate(cursors) if not readers}
    base, ids, offsets = 0, np.zeros(0, np.int64), np.zeros((0, 2), np.int64)
    current = -1
    for piece in token_pieces(tokenizer, texts, skip):
        if piece.text != current:
            current, base = piece.text, 0
            ids, offsets = piece.ids, piece.offsets
        else:
            ids, offsets = np.concatenate([ids, piece.ids]), np.concatenate([offsets, piece.offsets])
        end = base + len(ids)
        readers = cursors[piece.text]
        for cursor in readers:
            for number, start, stop in cursor.windows(end, piece.last):
                yield cursor, number, ids[start - base : stop - base], offsets[start - base : stop - base]
        waiting = [c.start for c in readers if not c.done]
        if not waiting:
            skip.add(piece.text)
            continue
        keep = min(waiting) - base  # tokens before every cursor's next window are read
        ids, offsets, base = ids[keep:], offsets[keep:], base + keep


class ReadProgress:
    """The passages a read has covered, those being read counted by the fraction of their characters read: what a
    progress bar in passages shows, never above the number of passages whatever the rounding."""

    def __init__(self) -> None:
        self.done = 0
        self.partial: dict[Any, float] = {}

    def advance(self, key: Any, read_to: int, length: int, last: bool) -> None:
        """Passage ``key`` (``length`` characters) is read up to character ``read_to``; ``last``: it is done."""
        if last:
            self.partial.pop(key, None)
            self.done += 1
        else:
            self.partial[key] = read_to / max(length, 1)

    @property
    def read(self) -> float:
        return self.done + sum(self.partial.values())


__all__ = [
    "ReadProgress",
    "TOKENIZE_CHARS",
    "TokenPiece",
    "WindowCursor",
    "cuts_are_seamless",
    "piece_bounds",
    "stream_windows",
    "token_pieces",
]
