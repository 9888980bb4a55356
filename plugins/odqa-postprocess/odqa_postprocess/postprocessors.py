"""The postprocessors: ``clean`` (span cleanup), ``strip-particles`` (a trailing Korean 조사) and ``vote``.

Each rewrites one question's n-best list (:meth:`~odqa_core.Postprocessor.process`) and returns a new list (the
input is never modified). None of them reads the passages, so spans stay consistent by arithmetic: characters
removed from the start of an answer move ``Prediction.start`` by as many, so that
``passage[start:start + len(answer)] == answer`` still holds whenever the answer is still passage text.
"""

from __future__ import annotations

import importlib.util
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from odqa_core import DataError, Postprocessor, Prediction, Question, UsageError, options
from odqa_postprocess.korean import DEFAULT_KEEP, DEFAULT_PARTICLES, particle_may_go, strip_particle

__all__ = [
    "CleanPostprocessor",
    "StripParticlesPostprocessor",
    "VotePostprocessor",
    "clean_span",
    "normalize_answer",
    "strip_particle",
]


# --- option checks -----------------------------------------------------------------------------------------------


def _check_words(owner: str, name: str, value: Any, *, empty: bool = False) -> list[str] | None:
    """``None``, or a list (non-empty unless ``empty``) of non-empty strings without whitespace."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not (value or empty):
        kind = "a list" if empty else "a non-empty list"
        raise UsageError(f"{owner}: option {name!r} must be {kind} of strings, got {value!r}")
    for word in value:
        if not isinstance(word, str) or not word or any(c.isspace() for c in word):
            raise UsageError(f"{owner}: option {name!r} must hold non-empty strings without spaces, got {word!r}")
    return list(value)


# --- clean -------------------------------------------------------------------------------------------------------

#: Bracket and quote pairs (opening → closing) whose unmatched ends ``clean`` drops.
BRACKETS: dict[str, str] = {
    "(": ")",
    "[": "]",
    "{": "}",
    "「": "」",
    "『": "』",
    "《": "》",
    "〈": "〉",
    "“": "”",
    "‘": "’",
    "（": "）",
    "［": "］",
    "｛": "｝",
    "【": "】",
    "〔": "〕",
}
CLOSING: dict[str, str] = {close: open_ for open_, close in BRACKETS.items()}
#: Quotes that open and close alike: one at an end is unmatched when the answer holds an odd number of them.
SYMMETRIC_QUOTES = frozenset("\"'＂＇")
#: Punctuation dropped from either end of an answer (a leading "." is kept before a digit: ".5").
STRAY_PUNCTUATION = frozenset(",.:;、。，．：；·・…")
_RUN_OF_WHITESPACE = re.compile(r"\s+")
#: A trailing "." that ends an abbreviation of single letters ("U.S.", "D.C.") is kept.
_ABBREVIATION = re.compile(r"(?:^|[\s(])(?:[^\W\d_]\.){2,}$")


def _finds_partner(text: str, positions: range, bracket: str, partner: str) -> bool:
    """Whether the ``bracket`` at ``text[positions[0]]`` meets its ``partner`` walking ``positions`` (nested pairs
    of the same brackets balance): forward from an opening bracket, backward from a closing one."""
    depth = 0
    for i in positions:
        if text[i] == bracket:
            depth += 1
        elif text[i] == partner:
            depth -= 1
            if depth == 0:
                return True
    return False


def _drop_first(text: str, lo: int, hi: int) -> bool:
    c = text[lo]
    if c in CLOSING:
        return True
    if c in BRACKETS:
        return not _finds_partner(text, range(lo, hi), c, BRACKETS[c])
    if c in SYMMETRIC_QUOTES:
        return text.count(c, lo, hi) % 2 == 1
    if c in STRAY_PUNCTUATION:
        return not (c == "." and lo + 1 < hi and text[lo + 1].isdigit())
    return False


def _drop_last(text: str, lo: int, hi: int) -> bool:
    c = text[hi - 1]
    if c in BRACKETS:
        return True
    if c in CLOSING:
        return not _finds_partner(text, range(hi - 1, lo - 1, -1), c, CLOSING[c])
    if c in SYMMETRIC_QUOTES:
        return text.count(c, lo, hi) % 2 == 1
    if c in STRAY_PUNCTUATION:
        return not (c == "." and _ABBREVIATION.search(text[lo:hi]))
    return False


def _strip_unbalanced(text: str, lo: int, hi: int) -> tuple[int, int]:
    """Drop unmatched brackets and quotes and stray punctuation at the ends of ``text[lo:hi]``, one character at a
    time until none is left; whitespace that a removal uncovers goes with it."""
    while lo < hi:
        if _drop_first(text, lo, hi):
            lo += 1
            while lo < hi and text[lo].isspace():
                lo += 1
        elif _drop_last(text, lo, hi):
            hi -= 1
            while lo < hi and text[hi - 1].isspace():
                hi -= 1
        else:
            break
    return lo, hi


def clean_span(text: str, *, brackets: bool = True, whitespace: bool = True) -> tuple[int, int, str]:
    """``(lo, hi, cleaned)``: the answer ``text`` keeps the slice ``text[lo:hi]``, which reads ``cleaned``.

    ``cleaned`` is the slice itself unless ``whitespace`` collapsed a run of whitespace inside it. Bracket cleanup
    never empties an answer: when it would remove everything (``"("``, ``"..."``), it is not applied.

    >>> clean_span(" 삼성(")
    (1, 3, '삼성')
    >>> clean_span("(주)삼성")
    (0, 5, '(주)삼성')
    """
    lo, hi = 0, len(text)
    if whitespace:
        while lo < hi and text[lo].isspace():
            lo += 1
        while lo < hi and text[hi - 1].isspace():
            hi -= 1
    if brackets:
        new_lo, new_hi = _strip_unbalanced(text, lo, hi)
        if new_lo < new_hi:
            lo, hi = new_lo, new_hi
    kept = text[lo:hi]
    if whitespace:
        kept = _RUN_OF_WHITESPACE.sub(" ", kept)
    return lo, hi, kept


class CleanPostprocessor(Postprocessor):
    """Cleans the ends of each answer; keeps the order and the scores.

    - ``whitespace``: strip the answer and collapse every run of whitespace inside it (newlines, tabs, NBSP, ...)
      to one space.
    - ``brackets``: drop an unmatched bracket or quote at either end — pairs ``() [] {} 「」 『』 《》 〈〉 “” ‘’``
      and their full-width forms, and the symmetric quotes ``"`` and ``'`` (unmatched when the answer holds an
      odd number) — and stray punctuation (``, . : ;`` ...) at either end, repeatedly: ``"삼성("`` → ``"삼성"``,
      ``"서울),"`` → ``"서울"``, while balanced ones stay (``"(주)삼성"``, ``'"사랑"'``, ``"1,000"``). A leading
      ``.`` before a digit (``".5"``) and the ``.`` of ``"U.S."`` stay.

    ``start`` moves past what was removed from the front, so the answer is still ``passage[start:start +
    len(answer)]``. When whitespace inside a span was collapsed the answer is no longer verbatim passage text:
    ``metadata["span_end"]`` then gives the end of the passage text it stands for (``passage[start:span_end]``).
    """

    name = "clean"

    def __init__(self, *, brackets: bool = True, whitespace: bool = True) -> None:
        owner = f"postprocessor {self.name!r}"
        self.brackets = options.boolean(owner, "brackets", brackets)
        self.whitespace = options.boolean(owner, "whitespace", whitespace)

    def clean(self, prediction: Prediction) -> Prediction:
        text = prediction.answer
        lo, hi, answer = clean_span(text, brackets=self.brackets, whitespace=self.whitespace)
        if answer == text:
            return prediction
        start, metadata = prediction.start, prediction.metadata
        if start is not None:
            # The ends of an answer are verbatim passage text even when its inside is not: they move alike.
            if answer != text[lo:hi] or "span_end" in metadata:
                end = metadata.get("span_end", start + len(text)) - (len(text) - hi)
                metadata = {**metadata, "span_end": end}
            start += lo
        return replace(prediction, answer=answer, start=start, metadata=metadata)

    def process(self, question: Question, predictions: list[Prediction]) -> list[Prediction]:
        return [self.clean(p) for p in predictions]


# --- strip-particles ---------------------------------------------------------------------------------------------

_KIWI: Any = None


def _kiwi() -> Any:
    """One shared kiwipiepy tokenizer (loading its model takes a while)."""
    global _KIWI
    if _KIWI is None:
        try:
            from kiwipiepy import Kiwi
        except ImportError:
            raise UsageError(_NO_KIWI) from None
        try:
            _KIWI = Kiwi()
        except Exception as exc:  # kiwipiepy raises ValueError/RuntimeError/OSError for a bad model install
            raise DataError(f"postprocessor 'strip-particles': cannot start kiwipiepy ({exc})") from None
    return _KIWI


_NO_KIWI = (
    "postprocessor 'strip-particles': analyzer 'kiwi' needs the kiwipiepy package: "
    "pip install 'odqa-postprocess[kiwi]'"
)


class StripParticlesPostprocessor(Postprocessor):
    """Removes a trailing Korean particle (조사) from each answer: ``"세종대왕이"`` → ``"세종대왕"``.

    ``analyzer="rules"`` (the default, no dependency) removes one particle of ``particles`` (default
    :data:`DEFAULT_PARTICLES`; longest first) when the answer ends in a Hangul syllable and what is left of its last
    word — the stem — ends in a letter (not a digit: ``"10만"`` stays) and has at least ``min_stem`` characters;
    a particle that must follow a final consonant, or must not, is only removed after a stem that agrees
    (``"국가"`` and ``"마을"`` stay, ``"왕이"`` and ``"집을"`` lose it). No cut goes through a word of ``keep``
    (default :data:`DEFAULT_KEEP`: ``제주도``, ``고양이``, ``결과``, ``민주주의`` ...; ``[]`` for none).

    ``analyzer="kiwi"`` asks kiwipiepy (``pip install 'odqa-postprocess[kiwi]'``) instead and removes the run of
    particle morphemes (tags ``J*``: ``JKS``, ``JKB``, ``JX`` ...) that ends the answer; ``min_stem`` and ``keep``
    still apply, ``particles`` does not.

    Only the end of an answer changes, so ``start`` stays (a ``metadata["span_end"]`` that ``clean`` set moves).
    """

    name = "strip-particles"
    ANALYZERS: ClassVar[tuple[str, ...]] = ("rules", "kiwi")

    def __init__(
        self,
        *,
        analyzer: str = "rules",
        particles: list[str] | None = None,
        min_stem: int = 2,
        keep: list[str] | None = None,
    ) -> None:
        owner = f"postprocessor {self.name!r}"
        self.analyzer = options.choice(owner, "analyzer", analyzer, self.ANALYZERS)
        self.particles = _check_words(owner, "particles", particles)
        self.min_stem = options.positive_int(owner, "min_stem", min_stem)
        self.keep = _check_words(owner, "keep", keep, empty=True)
        if self.analyzer == "kiwi":
            if self.particles is not None:
                raise UsageError(f"{owner}: option 'particles' applies to analyzer 'rules', not 'kiwi'")
            if importlib.util.find_spec("kiwipiepy") is None:
                raise UsageError(_NO_KIWI)
        self._particles = tuple(sorted(self.particles or DEFAULT_PARTICLES, key=len, reverse=True))
        self._keep = tuple(DEFAULT_KEEP if self.keep is None else self.keep)

    def warm_up(self) -> None:
        if self.analyzer == "kiwi":
            _kiwi()

    def strip_many(self, answers: Sequence[str]) -> list[str]:
        """Each answer without its trailing particle(s)."""
        if self.analyzer == "rules":
            return [strip_particle(a, self._particles, min_stem=self.min_stem, keep=self._keep) for a in answers]
        if not answers:
            return []
        return [self._strip_kiwi(a, tokens) for a, tokens in zip(answers, _kiwi().tokenize(list(answers)))]

    def _strip_kiwi(self, answer: str, tokens: Sequence[Any]) -> str:
        cut, i = len(answer), len(tokens) - 1
        # The run of particle morphemes that ends the answer, each right after the morpheme before it (a particle
        # fused into the previous syllable, "난" = 나 + 는, shares its position and is not removable).
        while (
            i > 0
            and tokens[i].tag.startswith("J")
            and tokens[i].start + tokens[i].len == cut
            and tokens[i - 1].start + tokens[i - 1].len == tokens[i].start
        ):
            cut, i = tokens[i].start, i - 1
        return answer[:cut] if particle_may_go(answer, cut, self.min_stem, self._keep) else answer

    def process(self, question: Question, predictions: list[Prediction]) -> list[Prediction]:
        out = []
        for p, answer in zip(predictions, self.strip_many([p.answer for p in predictions])):
            if answer == p.answer:
                out.append(p)
                continue
            metadata = p.metadata
            if "span_end" in metadata:
                metadata = {**metadata, "span_end": metadata["span_end"] - (len(p.answer) - len(answer))}
            out.append(replace(p, answer=answer, metadata=metadata))
        return out


# --- vote --------------------------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """The key ``vote`` groups answers by: NFKC, whitespace collapsed and stripped, lower-cased."""
    return _RUN_OF_WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def softmax(scores: Sequence[float], temperature: float = 1.0) -> list[float]:
    """``exp(s / T) / Σ exp(s / T)`` over ``scores``, computed stably (infinite scores share the mass)."""
    top = max(scores)
    if math.isinf(top):  # +inf: the infinite ones share everything; -inf: all are -inf, uniform
        tied = [s == top for s in scores]
        return [1.0 / sum(tied) if t else 0.0 for t in tied]
    exps = [math.exp((s - top) / temperature) for s in scores]
    total = math.fsum(exps)
    return [e / total for e in exps]


class VotePostprocessor(Postprocessor):
    """Merges the predictions that give the same answer (from several passages) and ranks the answers by vote.

    Answers are grouped by :func:`normalize_answer` (NFKC, whitespace collapsed, lower-cased). A group's score is
    ``aggregate`` over its members:

    - ``sum-softmax`` (default): the sum of the members' softmax probabilities over the question's whole n-best
      list, ``exp(s_i / T) / Σ_j exp(s_j / T)`` with ``temperature`` T — robust to negative logits and to scores
      on any scale;
    - ``sum``: the sum of the members' scores; ``max``: the best member's score; ``count``: the number of members.

    Each group becomes one prediction: its best-scoring member (the earlier on a tie), keeping that member's
    answer text, ``doc_id`` and ``start``, with the group's score and ``metadata["votes"]`` = the number of members.
    Groups are ranked by score, ties by the rank of their first member in the input. Run it after ``clean`` and
    ``strip-particles``, so that variants of one answer share a group.
    """

    name = "vote"
    AGGREGATES: ClassVar[tuple[str, ...]] = ("sum-softmax", "sum", "max", "count")

    def __init__(self, *, aggregate: str = "sum-softmax", temperature: float = 1.0) -> None:
        owner = f"postprocessor {self.name!r}"
        self.aggregate = options.choice(owner, "aggregate", aggregate, self.AGGREGATES)
        self.temperature = options.number(owner, "temperature", temperature)
        if self.temperature <= 0:  # a softmax temperature divides the scores
            raise UsageError(f"{owner}: option 'temperature' must be a number > 0, got {temperature!r}")

    def group_scores(self, scores: Sequence[float], groups: Sequence[Sequence[int]]) -> list[float]:
        """The score of each group of positions in ``scores``."""
        if self.aggregate == "count":
            return [float(len(g)) for g in groups]
        if self.aggregate == "max":
            return [max(scores[i] for i in g) for g in groups]
        weights = softmax(scores, self.temperature) if self.aggregate == "sum-softmax" else scores
        return [math.fsum(weights[i] for i in g) for g in groups]

    def process(self, question: Question, predictions: list[Prediction]) -> list[Prediction]:
        if not predictions:
            return []
        scores = [float(p.score) for p in predictions]
        if any(math.isnan(s) for s in scores):
            raise DataError(f"postprocessor {self.name!r}: question {question.id!r} has a prediction scored NaN")
        members: dict[str, list[int]] = {}
        for i, p in enumerate(predictions):
            members.setdefault(normalize_answer(p.answer), []).append(i)
        groups = list(members.values())  # in order of first appearance
        totals = self.group_scores(scores, groups)
        order = sorted(range(len(groups)), key=lambda g: (-totals[g], groups[g][0]))
        out = []
        for g in order:
            best = min(groups[g], key=lambda i: (-scores[i], i))
            rep = predictions[best]
            out.append(replace(rep, score=totals[g], metadata={**rep.metadata, "votes": len(groups[g])}))
        return out
