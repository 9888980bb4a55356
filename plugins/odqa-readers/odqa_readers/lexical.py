"""The lexical reader: answer spans scored by a linear model over hand-made features, no pretrained network.

A model kind of the ``extractive`` reader (``-o extractive.model=DIR`` where DIR holds a store of kind
:data:`STORE_KIND`), trained by ``odqa train reader --model lexical`` in seconds to minutes on a CPU. In the spirit
of the SQuAD logistic-regression baseline (Rajpurkar et al. 2016), adapted to Korean.

Candidates (:func:`passage_table`). A passage is cut into tokens at whitespace and before ``(`` and ``[``
(``부산(釜山)이다`` → ``부산`` + ``(釜山)이다``). A candidate is 1 to ``max_words`` consecutive tokens of one
sentence; its start may skip the first token's opening quotes/brackets, its end may drop the last token's closing
punctuation, then a Korean ending of :data:`PARTICLES` (the longest and the shortest one that match, ~100 case
particles, copulas and their combinations: ``세종대왕이`` → ``세종대왕``, ``1446년에`` → ``1446년``), and, with Kiwi,
the trailing particles/endings/copula morphemes of the last token. Each distinct character span is kept once;
answers are exact slices of ``Document.text``.

Features (groups of :data:`FEATURE_GROUPS`, each a set of hashed sparse columns; ``features`` picks them):

- ``span``: the candidate itself, question-independent — the ending cut off its last token, its character-class
  shape (``0가`` for ``1446년``), first and last character, tokens and length bucket, the characters just outside
  it (``(`` after ``세종``), the last character/particle of the token before and the first of the token after;
- ``cross``: each of those crossed with the question type (:func:`question_type`: 언제, 몇+counter, 누구, 어디,
  무엇, 얼마, 어느+noun, ...), with the question's last word and with its head noun (``시작된 대학은?`` → 대학):
  "a 4-digit number ending in 년 answers 몇 년", "a span followed by 은/는 rarely answers 누구"; whether the head
  noun ends or is inside the span (부산대학교); the ending cut off the span against the particle on the question's
  wh-phrase (``누구에게 박해당했나`` ↔ ``바흐람 1세에게 박해당했다``);
- ``match``: question-word overlap (tokens reduced to stems by particle trimming, weighted by an IDF table hashed
  from the training corpus) in windows of 1, 3 and 8 tokens left and right of the span, in its sentence, and
  inside the span (answers rarely repeat question words); how much of the question (distinct stems, IDF-weighted)
  the span's sentence covers, and against the best-covering sentence of all the question's passages;
- ``ngram``: the same windows and sentence coverage over character bigrams (robust to inflection: 반포된 / 반포한);
- ``kiwi`` (when kiwipiepy is importable at training): Kiwi's POS tags at the span's first and last character,
  right after it, at the edges of the neighbouring tokens and at the start of each of its tokens (NNP|NNG),
  whether both ends are morpheme boundaries (each crossed with the question type), and the window overlap of
  content morphemes;
- ``align``: question-to-sentence alignment — the distance to the nearest matching question word left and right
  (bucketed, crossed with the question type) and whether the question's words around its wh-word (``X는 [언제]
  Y했나``) surround the span (``X는 [1446년에] Y했다``);
- ``passage``: the passage's retrieval rank (bucketed) and score (scaled within the question's list), the share of
  the question's IDF its text and best sentence match, and with ``include_title`` the share its title matches.

Scoring. A conditional-logit model (the multinomial form of logistic regression): the probability of a candidate
is the softmax of ``x · w`` over every candidate of every passage of the question, so scores compare across
passages and the n-best's probabilities are calibrated over all of them (``Prediction.score`` is the log of that
probability, ``metadata["probability"]`` the probability). Training maximises the log of the summed probability of
the candidates equal to an answer (every occurrence; retrieved passages without the answer supply negatives only)
with an L2 penalty ``l2`` per question, by SciPy's L-BFGS for ``max_iter`` iterations from zero — deterministic,
single-threaded. Columns are hashed into ``2**hash_bits`` dimensions (scikit-learn's ``murmurhash3_32`` for
strings, a 64-bit multiply-xorshift for the crosses). Questions whose answer is no candidate do not train.

Storage: an odqa store (:mod:`odqa_core.storage`, manifest with checksums and format version
:data:`STORE_VERSION`): ``weights.npy`` (float32), ``idf.npy`` (float32, the hashed IDF table) and the settings in
the manifest's config — no pickle. A store trained with Kiwi features needs kiwipiepy to read.
"""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core.errors import DataError, IndexFormatError, UsageError
from odqa_core.progress import progress
from odqa_core.types import Document, Prediction, Question, RankedResults

STORE_KIND = "lexical-reader"
STORE_NAME = "extractive"
STORE_VERSION = 1

#: The default bound of a model's :class:`PassageTableCache`, in MiB (the 58 passages of the bundled sample that its
#: 107 questions read take 5.5 MiB, about 100 KiB a passage of ~430 characters: 64 MiB hold ~650 such passages).
DEFAULT_PASSAGE_CACHE_MB = 64

#: The rank of a training passage the retriever did not return (a gold passage it missed).
UNPLACED = -1

FEATURE_GROUPS = ("span", "cross", "match", "ngram", "kiwi", "align", "passage")

#: Korean endings a candidate's last token may lose: case particles, delimiters, copulas and their combinations.
PARTICLES = tuple(
    sorted(
        {
            "이",
            "가",
            "을",
            "를",
            "은",
            "는",
            "의",
            "에",
            "에서",
            "에게",
            "에게서",
            "께",
            "께서",
            "께서는",
            "한테",
            "으로",
            "로",
            "으로서",
            "로서",
            "으로써",
            "로써",
            "와",
            "과",
            "도",
            "만",
            "까지",
            "부터",
            "보다",
            "처럼",
            "같이",
            "마다",
            "조차",
            "밖에",
            "이나",
            "나",
            "이나마",
            "이든",
            "든",
            "이며",
            "며",
            "이고",
            "이자",
            "이요",
            "이다",
            "였다",
            "이었다",
            "였으며",
            "이었으며",
            "였고",
            "이었고",
            "였던",
            "이었던",
            "인",
            "이라는",
            "라는",
            "이라고",
            "라고",
            "이란",
            "란",
            "이라",
            "라",
            "이지만",
            "인데",
            "이므로",
            "에는",
            "에서는",
            "에서도",
            "에도",
            "으로는",
            "로는",
            "으로도",
            "로도",
            "와는",
            "과는",
            "와도",
            "과도",
            "와의",
            "과의",
            "에서의",
            "으로의",
            "로의",
            "에의",
            "까지의",
            "부터의",
            "까지는",
            "부터는",
            "만을",
            "만이",
            "만의",
            "만은",
            "에게는",
            "에게도",
            "께는",
            "들",
            "들이",
            "들은",
            "들을",
            "들의",
            "들과",
            "들에게",
            "등",
            "등의",
            "등을",
            "등이",
            "등은",
            "등과",
            "등에",
            "등으로",
            "이다.",
            "에서부터",
            "으로부터",
            "로부터",
            "만큼",
            "이외",
            "이외의",
        },
        key=lambda p: (-len(p), p),
    )
)
_OPENERS = "\"'(<[{«‘“《「『【〈"
_CLOSERS = "\"')>]}»’”》」』】〉.,;:!?·…"
_SENTENCE_END = (".", "?", "!", "。")
_TOKEN = re.compile(r"[(\[][^\s(\[]*|[^\s(\[]+")
_WORD_CHARS = re.compile(r"[\W_]+")
_QUESTION_MARKS = re.compile(r"[?？.!]+$")
#: Kiwi tags of the morphemes a candidate's end may drop (particles, endings, copula, suffixes, punctuation).
_KIWI_TRAILING = ("J", "E", "VCP", "XS", "SF", "SP", "SS", "SE", "SO", "SW")
#: Kiwi tags of content morphemes, matched between question and passage.
_KIWI_CONTENT = ("NN", "NR", "NP", "VV", "VA", "XR", "SL", "SH", "SN", "MAG")

#: Question types: (type, words starting with it). 몇 and 어느/어떤/무슨 take the next word as a qualifier.
_WH = (
    ("언제", ("언제",)),
    ("몇", ("몇",)),
    ("며칠", ("며칠",)),
    ("누구", ("누구", "누가", "누군")),
    ("어디", ("어디", "어딘")),
    ("얼마", ("얼마",)),
    ("무엇", ("무엇", "뭐", "뭘", "무얼")),
    ("무슨", ("무슨",)),
    ("어느", ("어느",)),
    ("어떤", ("어떤", "어떠한", "어떻", "어떠")),
    ("왜", ("왜",)),
    ("what", ("what", "which")),
    ("who", ("who", "whom", "whose")),
    ("when", ("when",)),
    ("where", ("where",)),
    ("how", ("how",)),
)
_QUALIFIED = {"몇", "무슨", "어느", "어떤", "how", "what", "which"}


@dataclass(frozen=True)
class LexicalSettings:
    """What a lexical model is built with (stored in its manifest)."""

    features: tuple[str, ...] = FEATURE_GROUPS
    max_words: int = 4
    hash_bits: int = 20
    l2: float = 1.0
    max_iter: int = 150
    idf_bits: int = 18
    include_title: bool = False

    def validate(self) -> LexicalSettings:
        unknown = sorted(set(self.features) - set(FEATURE_GROUPS))
        if unknown or not self.features:
            raise UsageError(
                f"lexical reader: unknown feature group(s) {', '.join(unknown) or '(none given)'}; valid: "
                f"{', '.join(FEATURE_GROUPS)}"
            )
        for name, low, high in (("max_words", 1, 12), ("hash_bits", 10, 26), ("max_iter", 1, 100000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise UsageError(f"lexical reader: {name} must be an integer in [{low}, {high}], got {value!r}")
        if isinstance(self.l2, bool) or not isinstance(self.l2, (int, float)) or not self.l2 >= 0:
            raise UsageError(f"lexical reader: l2 must be a non-negative number, got {self.l2!r}")
        if not isinstance(self.include_title, bool):
            raise UsageError(f"lexical reader: include_title must be true or false, got {self.include_title!r}")
        return self

    @classmethod
    def from_options(cls, options: dict[str, Any], include_title: bool | None = None) -> LexicalSettings:
        """Settings from ``lexical_options`` (``features`` as a list or a comma-separated string)."""
        valid = {f for f in cls.__dataclass_fields__ if f != "include_title"}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise UsageError(
                f"unknown lexical reader option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        values = dict(options)
        features = values.get("features")
        if isinstance(features, str):
            values["features"] = tuple(f.strip() for f in features.split(",") if f.strip())
        elif features is not None:
            values["features"] = tuple(features)
        if isinstance(values.get("l2"), int) and not isinstance(values.get("l2"), bool):
            values["l2"] = float(values["l2"])
        return cls(**values, include_title=bool(include_title)).validate()


# --- text analysis ----------------------------------------------------------------------------------------------


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xBF58476D1CE4E5B9)


def _mix(*parts: np.ndarray | int) -> np.ndarray:
    """A 64-bit hash of the element-wise tuple of ``parts`` (uint64 arrays or ints), vectorized."""
    h = np.zeros(1, np.uint64)
    for part in parts:
        value = np.asarray(part).astype(np.uint64)
        h = (h ^ value) * _MUL
        h = h ^ (h >> np.uint64(31))
        h = h * _MUL2
        h = h ^ (h >> np.uint64(29))
    return h


class _Hasher:
    """Strings to stable 32-bit hashes (scikit-learn's murmurhash3_32), memoised."""

    def __init__(self) -> None:
        from sklearn.utils import murmurhash3_32

        self._hash = murmurhash3_32
        self._memo: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        value = self._memo.get(text)
        if value is None:
            value = self._memo[text] = int(self._hash(text, seed=7, positive=True))
        return value

    def many(self, texts: Sequence[str]) -> np.ndarray:
        return np.fromiter((self(t) for t in texts), np.uint64, len(texts))


def char_class(ch: str) -> str:
    if ch.isdigit():
        return "0"
    if "\uac00" <= ch <= "\ud7a3":
        return "가"
    if ch.isascii() and ch.isalpha():
        return "A" if ch.isupper() else "a"
    if "\u4e00" <= ch <= "\u9fff":
        return "漢"
    if ch.isalpha():
        return "α"
    if ch.isspace():
        return " "
    return ch if unicodedata.category(ch).startswith("P") else "#"


def shape(text: str, limit: int = 6) -> str:
    """Character classes with runs collapsed: ``1446년`` → ``0가``, ``세종 (世宗)`` → ``가 (漢)``."""
    out: list[str] = []
    for ch in text:
        c = char_class(ch)
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out[:limit]) + ("~" if len(out) > limit else "")


def trim_particle(word: str, longest: bool = True) -> str:
    """``word`` without a :data:`PARTICLES` ending (the longest, or the shortest, that leaves something)."""
    found = [p for p in PARTICLES if len(p) < len(word) and word.endswith(p)]
    if not found:
        return word
    cut = found[0] if longest else found[-1]
    return word[: -len(cut)]


def stem(word: str) -> str:
    """The matching form of a token: word characters only, lower case, the longest particle ending trimmed."""
    plain = _WORD_CHARS.sub("", word).lower()
    return trim_particle(plain) if len(plain) > 1 else plain


def bigrams(word: str) -> list[str]:
    plain = _WORD_CHARS.sub("", word).lower()
    return [plain[i : i + 2] for i in range(len(plain) - 1)] or ([plain] if plain else [])


def tokens(text: str) -> list[tuple[int, int]]:
    """Character spans of a text's tokens: whitespace-separated, split again before ``(`` and ``[``."""
    return [m.span() for m in _TOKEN.finditer(text)]


_KIWI: Any = None
_KIWI_FAILED = False


def kiwi_analyzer() -> Any:
    """A shared single-threaded Kiwi, or None when kiwipiepy cannot be imported."""
    global _KIWI, _KIWI_FAILED
    if _KIWI is None and not _KIWI_FAILED:
        try:
            from kiwipiepy import Kiwi
        except ImportError:
            _KIWI_FAILED = True
            return None
        with warnings.catch_warnings():  # num_workers=0 (one thread) warns about an old meaning of 0
            warnings.simplefilter("ignore", DeprecationWarning)
            _KIWI = Kiwi(num_workers=0)
    return _KIWI


def kiwi_available() -> bool:
    return kiwi_analyzer() is not None


def _kiwi_morphemes(texts: Sequence[str]) -> list[list[tuple[str, str, int, int]]]:
    """Kiwi's (form, tag, start, end) morphemes of each text (character offsets into the text)."""
    kiwi = kiwi_analyzer()
    out = []
    for text in texts:
        if not text.strip():
            out.append([])
            continue
        morphs = kiwi.tokenize(text)
        out.append([(m.form, m.tag, int(m.start), int(m.start + m.len)) for m in morphs])
    return out


# --- passages ---------------------------------------------------------------------------------------------------


@dataclass
class PassageTable:
    """Tokens and candidates of some passages, as flat arrays (``*_offsets`` index them by passage)."""

    texts: list[str]
    tok_offsets: np.ndarray  # (P + 1,)
    tok_start: np.ndarray
    tok_end: np.ndarray
    tok_stem: np.ndarray  # uint64 hash of the token's stem (0: no word characters)
    tok_sent_start: np.ndarray  # local token index of the first token of the token's sentence
    tok_sent_end: np.ndarray  # local index one past its sentence's last token
    gram_offsets: np.ndarray  # (T + 1,) per token: its bigram hashes
    grams: np.ndarray
    morph_offsets: np.ndarray  # (T + 1,) per token: its content morphemes (Kiwi), hashed
    morphs: np.ndarray
    cand_offsets: np.ndarray  # (P + 1,)
    cand_tok_start: np.ndarray  # local token indices (inclusive)
    cand_tok_end: np.ndarray
    cand_start: np.ndarray  # character offsets in the passage (end exclusive)
    cand_end: np.ndarray
    cand_cats: np.ndarray  # (C, n span templates) uint64 hashed values
    cand_kiwi: np.ndarray  # (C, n kiwi templates) uint64 (zeros without Kiwi)


SPAN_TEMPLATES = ("suffix", "shape", "first", "last", "size", "before", "after", "prev", "next", "lead")
KIWI_TEMPLATES = (
    "tag_first",
    "tag_last",
    "tag_after",
    "bounds",
    "tag_prev_token",
    "tag_next_token",
    "tag_tokens",
    "tag_prev_first",
)


def _sentence_bounds(texts: list[str], spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    first = 0
    for i in range(len(spans)):
        if texts[i].endswith(_SENTENCE_END) or i == len(spans) - 1:
            starts.extend([first] * (i + 1 - first))
            ends.extend([i + 1] * (i + 1 - first))
            first = i + 1
    return starts, ends


def passage_table(texts: Sequence[str], settings: LexicalSettings, hasher: _Hasher, use_kiwi: bool) -> PassageTable:
    """Tokens, stems, bigrams, morphemes and candidate spans (with their question-independent features)."""
    texts = list(texts)
    morph_lists = _kiwi_morphemes(texts) if use_kiwi else [[] for _ in texts]
    tok_offsets, cand_offsets = [0], [0]
    tok_start: list[int] = []
    tok_end: list[int] = []
    tok_stem: list[int] = []
    sent_start: list[int] = []
    sent_end: list[int] = []
    gram_counts: list[int] = []
    grams: list[int] = []
    morph_counts: list[int] = []
    morphs: list[int] = []
    c_tok_s: list[int] = []
    c_tok_e: list[int] = []
    c_start: list[int] = []
    c_end: list[int] = []
    cats: list[tuple[str, ...]] = []
    kiwi_rows: list[tuple[str, ...]] = []
    max_words = settings.max_words
    for text, morph_list in zip(texts, morph_lists):
        spans = tokens(text)
        words = [text[a:b] for a, b in spans]
        n = len(spans)
        s_starts, s_ends = _sentence_bounds(words, spans)
        tok_start += [a for a, _ in spans]
        tok_end += [b for _, b in spans]
        tok_stem += [hasher(stem(w)) if _WORD_CHARS.sub("", w) else 0 for w in words]
        sent_start += s_starts
        sent_end += s_ends
        for w in words:
            g = bigrams(w)
            gram_counts.append(len(g))
            grams.extend(hasher("g:" + x) for x in g)
        # Kiwi: tag per character, morpheme boundaries, trailing-morpheme cut points, content morphemes per token.
        tag_at = [""] * (len(text) + 1)
        starts_at = set()
        ends_at = set()
        content_of: list[list[str]] = [[] for _ in range(n)]
        tail_cut: dict[int, int] = {}
        if morph_list:
            tok_index = np.searchsorted(np.asarray([b for _, b in spans]), [m[2] for m in morph_list], side="right")
            for (form, tag, a, b), t in zip(morph_list, tok_index.tolist()):
                b = min(b, len(text))
                for c in range(a, b):
                    tag_at[c] = tag
                starts_at.add(a)
                ends_at.add(b)
                if t < n and tag.startswith(_KIWI_CONTENT):
                    content_of[t].append(form)
            # The cut before each token's trailing run of particles / endings / copula (within the token).
            for (_form, tag, a, _end), t in zip(morph_list, tok_index.tolist()):
                if t >= n or not tag.startswith(_KIWI_TRAILING):
                    continue
                if spans[t][0] < a and all(
                    m[1].startswith(_KIWI_TRAILING) for m in morph_list if a <= m[2] < spans[t][1]
                ):
                    tail_cut.setdefault(t, a)
        for t in range(n):
            morph_counts.append(len(content_of[t]))
            morphs.extend(hasher(f.lower()) for f in content_of[t])  # as a stem: the IDF table weighs it
        # Start and end variants of each token.
        start_variants = []
        end_variants = []
        for t, (a, b) in enumerate(spans):
            w = words[t]
            lead = len(w) - len(w.lstrip(_OPENERS))
            start_variants.append((a,) if lead in (0, len(w)) else (a, a + lead))
            ends = [b]
            core = w.rstrip(_CLOSERS)
            if core and len(core) < len(w):
                ends.append(a + len(core))
            if core:
                for longest in (True, False):
                    cut = trim_particle(core, longest)
                    if cut and len(cut) < len(core):
                        ends.append(a + len(cut))
                        bare = cut.rstrip(_CLOSERS)  # "한국"의 → "한국" → 한국
                        if bare and len(bare) > lead:
                            ends.append(a + len(bare))
            if t in tail_cut:
                ends.append(tail_cut[t])
            end_variants.append(sorted(set(ends), reverse=True))
        seen: set[tuple[int, int]] = set()
        before = len(c_start)
        for i in range(n):
            for j in range(i, min(n, i + max_words)):
                if j > i and words[j - 1].endswith(_SENTENCE_END):
                    break
                for s in start_variants[i]:
                    for e in end_variants[j]:
                        if e <= s or (s, e) in seen:
                            continue
                        seen.add((s, e))
                        c_tok_s.append(i)
                        c_tok_e.append(j)
                        c_start.append(s)
                        c_end.append(e)
                        span_text = text[s:e]
                        prev_word = words[i - 1] if i else ""
                        next_word = words[j + 1] if j + 1 < n else ""
                        cats.append(
                            (
                                text[e : spans[j][1]],
                                shape(span_text),
                                span_text[0] if char_class(span_text[0]) == "가" else char_class(span_text[0]),
                                span_text[-1] if char_class(span_text[-1]) == "가" else char_class(span_text[-1]),
                                f"{j - i + 1}/{min(len(span_text), 12)}",
                                text[s - 1] if s > spans[i][0] else ("^" if i == 0 else "_"),
                                text[e] if e < spans[j][1] else ("$" if j + 1 == n else "_"),
                                _neighbour(prev_word, last=True),
                                _neighbour(next_word, last=False),
                                text[spans[i][0] : s],
                            )
                        )
                        if morph_list:
                            bounds = f"{int(s in starts_at)}{int(e in ends_at)}"
                            after = tag_at[e] if e < len(text) and not text[e].isspace() else "_"
                            # The neighbouring tokens' edges decide where a name starts and ends (앨버트 로젤리니).
                            prev_tag = tag_at[spans[i - 1][1] - 1] if i else "^"
                            next_tag = tag_at[spans[j + 1][0]] if j + 1 < n else "$"
                            # The tags the span's tokens start with (NNP|NNG: a name and its title), and the one
                            # the token before starts with.
                            tokens_tags = "|".join(tag_at[spans[t][0]] for t in range(i, j + 1))
                            prev_first = tag_at[spans[i - 1][0]] if i else "^"
                            kiwi_rows.append(
                                (tag_at[s], tag_at[e - 1], after, bounds, prev_tag, next_tag, tokens_tags, prev_first)
                            )
                        else:
                            kiwi_rows.append(("",) * len(KIWI_TEMPLATES))
        tok_offsets.append(len(tok_start))
        cand_offsets.append(cand_offsets[-1] + len(c_start) - before)
    n_c = len(c_start)
    cand_cats = np.zeros((n_c, len(SPAN_TEMPLATES)), np.uint64)
    for k in range(len(SPAN_TEMPLATES)):
        cand_cats[:, k] = hasher.many([row[k] for row in cats])
    cand_kiwi = np.zeros((n_c, len(KIWI_TEMPLATES)), np.uint64)
    if use_kiwi:
        for k in range(len(KIWI_TEMPLATES)):
            cand_kiwi[:, k] = hasher.many([row[k] for row in kiwi_rows])
    return PassageTable(
        texts=texts,
        tok_offsets=np.asarray(tok_offsets, np.int64),
        tok_start=np.asarray(tok_start, np.int64),
        tok_end=np.asarray(tok_end, np.int64),
        tok_stem=np.asarray(tok_stem, np.uint64),
        tok_sent_start=np.asarray(sent_start, np.int64),
        tok_sent_end=np.asarray(sent_end, np.int64),
        gram_offsets=np.concatenate([[0], np.cumsum(gram_counts, dtype=np.int64)]),
        grams=np.asarray(grams, np.uint64),
        morph_offsets=np.concatenate([[0], np.cumsum(morph_counts, dtype=np.int64)]),
        morphs=np.asarray(morphs, np.uint64),
        cand_offsets=np.asarray(cand_offsets, np.int64),
        cand_tok_start=np.asarray(c_tok_s, np.int64),
        cand_tok_end=np.asarray(c_tok_e, np.int64),
        cand_start=np.asarray(c_start, np.int64),
        cand_end=np.asarray(c_end, np.int64),
        cand_cats=cand_cats,
        cand_kiwi=cand_kiwi,
    )


def _split_table(table: PassageTable) -> list[PassageTable]:
    """One table per passage of ``table`` (arrays copied, so that each holds only its own passage's memory)."""
    out = []
    for p, text in enumerate(table.texts):
        t0, t1 = int(table.tok_offsets[p]), int(table.tok_offsets[p + 1])
        c0, c1 = int(table.cand_offsets[p]), int(table.cand_offsets[p + 1])
        g0, g1 = int(table.gram_offsets[t0]), int(table.gram_offsets[t1])
        m0, m1 = int(table.morph_offsets[t0]), int(table.morph_offsets[t1])
        out.append(
            PassageTable(
                texts=[text],
                tok_offsets=np.asarray([0, t1 - t0], np.int64),
                tok_start=table.tok_start[t0:t1].copy(),
                tok_end=table.tok_end[t0:t1].copy(),
                tok_stem=table.tok_stem[t0:t1].copy(),
                tok_sent_start=table.tok_sent_start[t0:t1].copy(),
                tok_sent_end=table.tok_sent_end[t0:t1].copy(),
                gram_offsets=table.gram_offsets[t0 : t1 + 1] - g0,
                grams=table.grams[g0:g1].copy(),
                morph_offsets=table.morph_offsets[t0 : t1 + 1] - m0,
                morphs=table.morphs[m0:m1].copy(),
                cand_offsets=np.asarray([0, c1 - c0], np.int64),
                cand_tok_start=table.cand_tok_start[c0:c1].copy(),
                cand_tok_end=table.cand_tok_end[c0:c1].copy(),
                cand_start=table.cand_start[c0:c1].copy(),
                cand_end=table.cand_end[c0:c1].copy(),
                cand_cats=table.cand_cats[c0:c1].copy(),
                cand_kiwi=table.cand_kiwi[c0:c1].copy(),
            )
        )
    return out


def _concat_tables(tables: Sequence[PassageTable]) -> PassageTable:
    """The table of the passages of ``tables`` in order, as :func:`passage_table` of all their texts makes it
    (token and candidate indices inside a passage are local; only the offsets shift)."""

    def offsets(parts: list[np.ndarray]) -> np.ndarray:
        # Each part starts at 0: shift it by the running total and drop its leading 0.
        total, shifted = 0, [np.zeros(1, np.int64)]
        for part in parts:
            shifted.append(part[1:] + total)
            total += int(part[-1])
        return np.concatenate(shifted)

    def flat(name: str) -> np.ndarray:
        return np.concatenate([getattr(t, name) for t in tables])

    return PassageTable(
        texts=[text for t in tables for text in t.texts],
        tok_offsets=offsets([t.tok_offsets for t in tables]),
        tok_start=flat("tok_start"),
        tok_end=flat("tok_end"),
        tok_stem=flat("tok_stem"),
        tok_sent_start=flat("tok_sent_start"),
        tok_sent_end=flat("tok_sent_end"),
        gram_offsets=offsets([t.gram_offsets for t in tables]),
        grams=flat("grams"),
        morph_offsets=offsets([t.morph_offsets for t in tables]),
        morphs=flat("morphs"),
        cand_offsets=offsets([t.cand_offsets for t in tables]),
        cand_tok_start=flat("cand_tok_start"),
        cand_tok_end=flat("cand_tok_end"),
        cand_start=flat("cand_start"),
        cand_end=flat("cand_end"),
        cand_cats=flat("cand_cats"),
        cand_kiwi=flat("cand_kiwi"),
    )


def _table_bytes(table: PassageTable) -> int:
    """The memory a cached table holds: its arrays and its text."""
    arrays = sum(value.nbytes for value in vars(table).values() if isinstance(value, np.ndarray))
    return arrays + sum(sys.getsizeof(text) for text in table.texts)


class PassageTableCache:
    """The question-independent work of reading (:func:`passage_table`: tokens, stems, bigrams, morphemes,
    candidate spans and their span features), kept per passage and reused by later calls and by every question
    of a batch that reads the same passage.

    Keyed by the passage's text itself (not its id: two passages with one id and different texts never share an
    entry), least recently used first out once the entries hold more than ``max_bytes`` (arrays + text, measured
    by :func:`_table_bytes`; a passage larger than the whole bound is not kept). ``max_bytes=0`` keeps nothing.
    Thread-safe; a table is built outside the lock (two threads may build the same one: the same result)."""

    def __init__(self, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise UsageError(
                f"lexical reader: the passage cache's size must be a non-negative integer, got {max_bytes!r}"
            )
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, tuple[PassageTable, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def tables(self, texts: Sequence[str], build: Callable[[list[str]], PassageTable]) -> PassageTable:
        """The table of ``texts`` (in order), built by ``build`` (one call, for the passages not cached)."""
        texts = list(texts)
        if not self.max_bytes:
            return build(texts)
        found: dict[str, PassageTable] = {}
        with self._lock:
            for text in texts:
                if text in found:
                    continue
                entry = self._entries.get(text)
                if entry is not None:
                    self._entries.move_to_end(text)
                    found[text] = entry[0]
                    self.hits += 1
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            built = _split_table(build(missing))
            with self._lock:
                self.misses += len(missing)
                for text, table in zip(missing, built):
                    found[text] = table
                    self._store(text, table)
        return _concat_tables([found[text] for text in texts])

    def _store(self, text: str, table: PassageTable) -> None:
        size = _table_bytes(table)
        if size > self.max_bytes:
            return
        old = self._entries.pop(text, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[text] = (table, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped


def _neighbour(word: str, last: bool) -> str:
    """What a neighbouring token says about a span: the particle it ends with (before) or its first character
    (after); ``^``/``$`` at the passage's ends."""
    if not word:
        return "^" if last else "$"
    plain = word.strip(_OPENERS + _CLOSERS) or word
    if last:
        cut = trim_particle(plain)
        return "p:" + plain[len(cut) :] if len(cut) < len(plain) else "c:" + char_class(plain[-1])
    return plain[0] if char_class(plain[0]) == "가" else char_class(plain[0])


# --- questions --------------------------------------------------------------------------------------------------


@dataclass
class QuestionTable:
    """Per question: stems (flat, hashed), bigrams, morphemes, type and last word, the wh-word's neighbours."""

    stem_offsets: np.ndarray
    stems: np.ndarray
    gram_offsets: np.ndarray
    grams: np.ndarray
    morph_offsets: np.ndarray
    morphs: np.ndarray
    qtype: np.ndarray  # uint64 hashes
    qlast: np.ndarray
    wh_prev: np.ndarray  # stem hash of the token before the wh-word (0: none)
    wh_next: np.ndarray
    wh_suffix: np.ndarray  # hash of the particle on the wh-phrase (누구에게 → 에게, 몇 년에 → 에; "" → none)
    heads: list[str]  # the question's head noun: the stem of its last word that is not the wh-phrase (도시는? → 도시)
    qhead: np.ndarray  # its hash
    before_offsets: np.ndarray  # the stems of the words before the wh-word, and after it
    before: np.ndarray
    after_offsets: np.ndarray
    after: np.ndarray


def question_type(words: Sequence[str]) -> tuple[str, int, int]:
    """The question's type (its wh-word, with the next word for 몇/어느/무슨/어떤 as in ``몇/년``), the wh-word's
    token index and the index of the last token of the wh-phrase (-1, -1: no wh-word)."""
    for i, word in enumerate(words):
        lower = word.lower()
        for qtype, prefixes in _WH:
            if lower.startswith(prefixes):
                qualifier, last = "", i
                if qtype in _QUALIFIED:
                    rest = _WORD_CHARS.sub("", lower[len(prefixes[0]) :] if qtype == "몇" else "")
                    if not rest and i + 1 < len(words):
                        rest, last = stem(words[i + 1]), i + 1
                    qualifier = "/" + rest[:2] if rest else ""
                return qtype + qualifier, i, last
    return "none", -1, -1


def _wh_suffix(words: Sequence[str], wh: int, wh_last: int) -> str:
    """The ending on the wh-phrase's last token: the passage often puts the same one after the answer
    (누구에게 박해당하였나 ↔ 바흐람 1세에게 박해당하였다)."""
    if wh < 0:
        return "\x00none"
    plain = _WORD_CHARS.sub("", _QUESTION_MARKS.sub("", words[wh_last])).lower()
    if wh_last == wh:
        for _, prefixes in _WH:
            for prefix in prefixes:
                if plain.startswith(prefix):
                    return plain[len(prefix) :]
    return plain[len(trim_particle(plain)) :]


def _is_wh(form: str) -> bool:
    return any(form.startswith(prefixes) for _, prefixes in _WH)


def question_table(
    questions: Sequence[str], hasher: _Hasher, use_kiwi: bool, idf: Callable[[np.ndarray], np.ndarray] | None = None
) -> QuestionTable:
    stems, stem_counts, grams, gram_counts, morphs, morph_counts = [], [], [], [], [], []
    qtypes, qlasts, wh_prev, wh_next = [], [], [], []
    before, before_counts, after, after_counts = [], [], [], []
    heads: list[str] = []
    wh_suffixes: list[str] = []
    morph_lists = _kiwi_morphemes(questions) if use_kiwi else [[] for _ in questions]
    for text, morph_list in zip(questions, morph_lists):
        words = [text[a:b] for a, b in tokens(text)]
        qtype, wh, wh_last = question_type(words)
        content = [w for i, w in enumerate(words) if i != wh]
        qstems = sorted({s for s in (stem(w) for w in content) if s})
        stems.extend(hasher(s) for s in qstems)
        stem_counts.append(len(qstems))
        qgrams = sorted({g for w in content for g in bigrams(w)})
        grams.extend(hasher("g:" + g) for g in qgrams)
        gram_counts.append(len(qgrams))
        qmorphs = sorted({m[0] for m in morph_list if m[1].startswith(_KIWI_CONTENT) and not _is_wh(m[0])})
        morphs.extend(hasher(m.lower()) for m in qmorphs)
        morph_counts.append(len(qmorphs))
        sides = (
            sorted({s for s in (stem(w) for w in words[: max(wh, 0)]) if s}),
            sorted({s for s in (stem(w) for w in words[wh_last + 1 :]) if s}) if wh >= 0 else [],
        )
        before.extend(hasher(s) for s in sides[0])
        before_counts.append(len(sides[0]))
        after.extend(hasher(s) for s in sides[1])
        after_counts.append(len(sides[1]))
        qtypes.append(qtype)
        last = _QUESTION_MARKS.sub("", words[-1]) if words else ""
        qlasts.append(stem(last) or last)
        wh_suffixes.append(_wh_suffix(words, wh, wh_last))
        head_at = wh - 1 if wh >= 0 and wh_last == len(words) - 1 else len(words) - 1
        heads.append(stem(_QUESTION_MARKS.sub("", words[head_at])) if head_at >= 0 else "")
        wh_prev.append(hasher(stem(words[wh - 1])) if wh > 0 else 0)
        wh_next.append(hasher(stem(words[wh_last + 1])) if wh >= 0 and wh_last + 1 < len(words) else 0)
    return QuestionTable(
        stem_offsets=np.concatenate([[0], np.cumsum(stem_counts, dtype=np.int64)]),
        stems=np.asarray(stems, np.uint64),
        gram_offsets=np.concatenate([[0], np.cumsum(gram_counts, dtype=np.int64)]),
        grams=np.asarray(grams, np.uint64),
        morph_offsets=np.concatenate([[0], np.cumsum(morph_counts, dtype=np.int64)]),
        morphs=np.asarray(morphs, np.uint64),
        qtype=hasher.many(["t:" + t for t in qtypes]),
        qlast=hasher.many(["l:" + t for t in qlasts]),
        wh_prev=np.asarray(wh_prev, np.uint64),
        wh_next=np.asarray(wh_next, np.uint64),
        wh_suffix=hasher.many(wh_suffixes),
        heads=heads,
        qhead=hasher.many(["h:" + h for h in heads]),
        before_offsets=np.concatenate([[0], np.cumsum(before_counts, dtype=np.int64)]),
        before=np.asarray(before, np.uint64),
        after_offsets=np.concatenate([[0], np.cumsum(after_counts, dtype=np.int64)]),
        after=np.asarray(after, np.uint64),
    )


# --- pair features ----------------------------------------------------------------------------------------------


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(starts[i], starts[i] + lengths[i])``."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    bases = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return bases + np.arange(total, dtype=np.int64)


def _member_counts(
    item_offsets: np.ndarray,
    items: np.ndarray,
    unit_of_pair: np.ndarray,
    pair_units: np.ndarray,
    q_offsets: np.ndarray,
    q_items: np.ndarray,
    q_of_pair: np.ndarray,
    weights: Callable[[np.ndarray], np.ndarray] | None = None,
    sentence_of_unit: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """For each pair-token (``pair_units``: global token indices, ``unit_of_pair``: its pair), the (weighted)
    number of its items (stems, bigrams, morphemes) among its question's items, its number of items and, with
    ``sentence_of_unit`` (a pair-token index naming each one's sentence), the (weighted) number of distinct
    question items its sentence holds: how much of the question the sentence covers."""
    counts = item_offsets[pair_units + 1] - item_offsets[pair_units]
    flat = _ranges(item_offsets[pair_units], counts)
    owner = np.repeat(np.arange(len(pair_units)), counts)
    values = items[flat]
    pair_of_item = unit_of_pair[owner]
    q_counts = q_offsets[q_of_pair + 1] - q_offsets[q_of_pair]
    q_flat = _ranges(q_offsets[q_of_pair], q_counts)
    q_keys = _mix(np.repeat(np.arange(len(q_of_pair)), q_counts), q_items[q_flat])
    keys = _mix(pair_of_item, values)
    hit = np.isin(keys, q_keys) & (values != 0)
    w = hit.astype(np.float64) if weights is None else hit * weights(values)
    matched = np.bincount(owner, weights=w, minlength=len(pair_units))
    coverage = None
    if sentence_of_unit is not None:
        sentence = sentence_of_unit[owner[hit]]
        _, first = np.unique(_mix(sentence, values[hit]), return_index=True)
        per_sentence = np.bincount(sentence[first], weights=w[hit][first], minlength=len(pair_units))
        coverage = per_sentence[sentence_of_unit]
    return matched, counts.astype(np.float64), coverage


def _bucket(values: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges), values, side="right").astype(np.uint64)


class FeatureBuilder:
    """Sparse feature rows for (question, passage) pairs; one instance per model (settings + IDF table)."""

    def __init__(self, settings: LexicalSettings, idf_table: np.ndarray, use_kiwi: bool) -> None:
        self.settings = settings
        self.groups = set(settings.features)
        self.use_kiwi = use_kiwi and "kiwi" in self.groups
        self.idf_table = idf_table
        self.hasher = _Hasher()
        self.dim = 1 << settings.hash_bits

    def idf(self, hashes: np.ndarray) -> np.ndarray:
        return self.idf_table[(hashes % np.uint64(len(self.idf_table))).astype(np.int64)].astype(np.float64)

    def passages(self, texts: Sequence[str]) -> PassageTable:
        return passage_table(texts, self.settings, self.hasher, self.use_kiwi)

    def questions(self, texts: Sequence[str]) -> QuestionTable:
        return question_table(texts, self.hasher, self.use_kiwi)

    def rows(
        self,
        table: PassageTable,
        qtable: QuestionTable,
        q_of_pair: np.ndarray,
        p_of_pair: np.ndarray,
        rank: np.ndarray,
        score_gap: np.ndarray,
        titles: Sequence[str] | None = None,
    ) -> tuple[Any, np.ndarray, np.ndarray]:
        """The feature matrix (CSR, one row per candidate of each pair, pairs in order) and, per row, its pair
        and its candidate (a global index into the table's candidate arrays)."""
        from scipy import sparse

        groups = self.groups
        n_pairs = len(q_of_pair)
        t_counts = table.tok_offsets[p_of_pair + 1] - table.tok_offsets[p_of_pair]
        pt_base = np.concatenate([[0], np.cumsum(t_counts)])  # pair-token offsets
        pt_tok = _ranges(table.tok_offsets[p_of_pair], t_counts)  # global token of each pair-token
        pt_pair = np.repeat(np.arange(n_pairs), t_counts)
        c_counts = table.cand_offsets[p_of_pair + 1] - table.cand_offsets[p_of_pair]
        row_cand = _ranges(table.cand_offsets[p_of_pair], c_counts)
        row_pair = np.repeat(np.arange(n_pairs), c_counts)
        row_q = q_of_pair[row_pair]
        base = pt_base[row_pair]
        s = base + table.cand_tok_start[row_cand]  # pair-token index of the span's first / last token
        e = base + table.cand_tok_end[row_cand]
        lo, hi = base, pt_base[row_pair + 1]  # the pair's token range [lo, hi)
        cols: list[np.ndarray] = []  # per feature slot: the column of every row (int32), its value (None: 1)
        vals: list[np.ndarray | None] = []
        mask = np.uint64(self.dim - 1)

        def cat(template: str, *values: np.ndarray) -> None:
            column = _mix(self.hasher(template), *values) & mask
            cols.append(np.broadcast_to(column.astype(np.int32), (len(row_cand),)))
            vals.append(None)

        def num(template: str, value: np.ndarray) -> None:
            column = int(_mix(self.hasher(template), 0)[0] & mask)
            cols.append(np.full(len(row_cand), column, np.int32))
            vals.append(np.asarray(value, np.float32))

        cand_cats = table.cand_cats[row_cand]
        qtype, qlast = qtable.qtype[row_q], qtable.qlast[row_q]
        if "span" in groups:
            for k, name in enumerate(SPAN_TEMPLATES):
                cat("s:" + name, cand_cats[:, k])
        if "cross" in groups:
            for k, name in enumerate(SPAN_TEMPLATES):
                cat("x:t:" + name, cand_cats[:, k], qtype)
                if name in ("suffix", "shape", "last", "size", "after", "next", "prev"):
                    cat("x:l:" + name, cand_cats[:, k], qlast)
                if name in ("suffix", "shape", "last", "next"):
                    cat("x:h:" + name, cand_cats[:, k], qtable.qhead[row_q])
            # The head noun of the question inside the span (대학은? → 부산대학교, 성은? → 다쓰노 성): the answer
            # often names its own type: 2 when the span ends with it, 1 when it holds it elsewhere. Vectorized per
            # pair over the head's occurrences in the passage (overlapping ones too): the span [a, b) holds one
            # when an occurrence o has a <= o and o + len <= b, and ends with it when b - len is one.
            head_in = np.zeros(len(row_cand), np.uint64)
            pair_rows = np.concatenate([[0], np.cumsum(c_counts)])
            for pair, (q, p) in enumerate(zip(q_of_pair.tolist(), p_of_pair.tolist())):
                head, text = qtable.heads[q], table.texts[p]
                if not head or head not in text:
                    continue
                found, at = [], text.find(head)
                while at >= 0:
                    found.append(at)
                    at = text.find(head, at + 1)
                occ = np.asarray(found, np.int64)
                size = len(head)
                r0, r1 = int(pair_rows[pair]), int(pair_rows[pair + 1])
                a, b = table.cand_start[row_cand[r0:r1]], table.cand_end[row_cand[r0:r1]]
                first = np.searchsorted(occ, a, side="left")
                holds = (first < len(occ)) & (occ[np.minimum(first, len(occ) - 1)] + size <= b)
                ends_with = np.isin(b - size, occ) & (b - size >= a)
                head_in[r0:r1] = np.where(ends_with, 2, holds.astype(np.int64)).astype(np.uint64)
            cat("x:head_in", head_in, qtype)
            # The wh-phrase's particle against the ending cut off the candidate (or the text right after it).
            wh_suffix = qtable.wh_suffix[row_q]
            cat("x:whsuf", cand_cats[:, 0], wh_suffix)
            num("x:whsuf_eq", (cand_cats[:, 0] == wh_suffix) & (wh_suffix != self.hasher("")))
        if self.use_kiwi:
            kiwi_cats = table.cand_kiwi[row_cand]
            for k, name in enumerate(KIWI_TEMPLATES):
                cat("k:" + name, kiwi_cats[:, k])
                if "cross" in groups:
                    cat("k:t:" + name, kiwi_cats[:, k], qtype)
            if "cross" in groups:
                cat("k:seq", kiwi_cats[:, 0], kiwi_cats[:, 1], kiwi_cats[:, 2], qtype)
                cat("k:l:tag_tokens", kiwi_cats[:, KIWI_TEMPLATES.index("tag_tokens")], qlast)

        def window_features(prefix: str, weight: np.ndarray, norm: np.ndarray) -> np.ndarray:
            cum = np.concatenate([[0.0], np.cumsum(weight)])
            inside = cum[e + 1] - cum[s]
            for k in (1, 3, 8):
                left = cum[s] - cum[np.maximum(s - k, lo)]
                right = cum[np.minimum(e + 1 + k, hi)] - cum[e + 1]
                num(f"{prefix}:l{k}", left / norm)
                num(f"{prefix}:r{k}", right / norm)
            sent_lo = base + table.tok_sent_start[pt_tok[s]]
            sent_hi = base + table.tok_sent_end[pt_tok[s]]
            sentence = cum[sent_hi] - cum[sent_lo] - inside
            num(f"{prefix}:sent", sentence / norm)
            num(f"{prefix}:in", inside / norm)
            return sentence

        q_norm_pair = np.ones(n_pairs)
        stem_weight = None
        sentence_of_pt = pt_base[pt_pair] + table.tok_sent_start[pt_tok]  # each pair-token's sentence: its start

        def coverage_features(prefix: str, cover: np.ndarray, q_size: np.ndarray) -> None:
            """How much of the question the span's sentence covers, and against the best sentence of the
            question's passages (its rank among them is what reading many passages needs)."""
            share = cover / np.maximum(q_size[pt_pair], 1e-9)
            best = np.zeros(len(qtable.qtype))
            np.maximum.at(best, q_of_pair[pt_pair], share)
            row_share = share[s]
            row_best = best[row_q]
            num(f"{prefix}:cover", row_share)
            num(f"{prefix}:cover_gap", row_best - row_share)
            num(f"{prefix}:cover_best", (row_share >= row_best - 1e-9) & (row_best > 0))

        if groups & {"match", "align", "passage"}:
            matched, _, stem_cover = _member_counts(
                np.arange(len(table.tok_stem) + 1),
                table.tok_stem,
                pt_pair,
                pt_tok,
                qtable.stem_offsets,
                qtable.stems,
                q_of_pair,
                self.idf,
                sentence_of_pt,
            )
            q_idf = np.bincount(
                np.repeat(np.arange(len(qtable.stem_offsets) - 1), np.diff(qtable.stem_offsets)),
                weights=self.idf(qtable.stems),
                minlength=len(qtable.stem_offsets) - 1,
            )
            q_norm_pair = np.maximum(q_idf[q_of_pair], 1.0)
            stem_weight = matched
        norm = q_norm_pair[row_pair]
        if "match" in groups and stem_weight is not None:
            sentence = window_features("m", stem_weight, norm)
            coverage_features("m", stem_cover, q_norm_pair)
            cum = np.concatenate([[0.0], np.cumsum(stem_weight)])
            hit = (cum[e + 1] - cum[s]) > 0
            num("m:in_any", hit)
            # The best-matching sentence of the pair (per token: its sentence's sum), crossed with nothing.
            tok_sent = (
                cum[pt_base[pt_pair] + table.tok_sent_end[pt_tok]]
                - cum[pt_base[pt_pair] + table.tok_sent_start[pt_tok]]
            )
            best = np.zeros(n_pairs)
            np.maximum.at(best, pt_pair, tok_sent)
            sent_total = sentence + (cum[e + 1] - cum[s])
            num("m:best_sent", (sent_total >= best[row_pair] - 1e-9) & (best[row_pair] > 0))
        if "ngram" in groups:
            matched, count, gram_cover = _member_counts(
                table.gram_offsets,
                table.grams,
                pt_pair,
                pt_tok,
                qtable.gram_offsets,
                qtable.grams,
                q_of_pair,
                None,
                sentence_of_pt,
            )
            frac = matched / np.maximum(count, 1)
            window_features("g", frac, np.ones(len(row_cand)))
            coverage_features("g", gram_cover, np.diff(qtable.gram_offsets)[q_of_pair].astype(np.float64))
        if self.use_kiwi:
            matched, _, morph_cover = _member_counts(
                table.morph_offsets,
                table.morphs,
                pt_pair,
                pt_tok,
                qtable.morph_offsets,
                qtable.morphs,
                q_of_pair,
                self.idf,
                sentence_of_pt,
            )
            window_features("k", matched, norm)
            q_morph_idf = np.bincount(
                np.repeat(np.arange(len(qtable.morph_offsets) - 1), np.diff(qtable.morph_offsets)),
                weights=self.idf(qtable.morphs),
                minlength=len(qtable.morph_offsets) - 1,
            )
            coverage_features("k", morph_cover, q_morph_idf[q_of_pair])
        if "align" in groups and stem_weight is not None:
            hit_idx = np.where(stem_weight > 0, np.arange(len(stem_weight)), -1)
            prev_hit = np.maximum.accumulate(hit_idx) if len(hit_idx) else hit_idx
            big = np.iinfo(np.int64).max
            nxt = np.where(stem_weight > 0, np.arange(len(stem_weight)), big)
            next_hit = np.minimum.accumulate(nxt[::-1])[::-1] if len(nxt) else nxt
            left = np.where(s > lo, prev_hit[np.maximum(s - 1, 0)], -1)
            left_d = np.where(left >= lo, s - left, 99)
            right = np.where(e + 1 < hi, next_hit[np.minimum(e + 1, len(next_hit) - 1)], big)
            right_d = np.where(right < hi, right - e, 99)
            edges = (2, 3, 4, 6, 11, 99)
            lb, rb = _bucket(left_d, edges), _bucket(right_d, edges)
            cat("a:dl", lb)
            cat("a:dr", rb)
            cat("a:dlr", lb, rb)
            cat("a:dl:t", lb, qtype)
            cat("a:dr:t", rb, qtype)
            tok_stem = table.tok_stem[pt_tok]
            prev_eq = tok_stem == qtable.wh_prev[q_of_pair][pt_pair]
            next_eq = tok_stem == qtable.wh_next[q_of_pair][pt_pair]
            prev_eq &= qtable.wh_prev[q_of_pair][pt_pair] != 0
            next_eq &= qtable.wh_next[q_of_pair][pt_pair] != 0
            cp = np.concatenate([[0], np.cumsum(prev_eq)])
            cn = np.concatenate([[0], np.cumsum(next_eq)])
            # The question's words before its wh-word are expected left of the answer, those after it right of it.
            token_items = np.arange(len(table.tok_stem) + 1)
            for side, offsets, items in (
                ("b", qtable.before_offsets, qtable.before),
                ("a", qtable.after_offsets, qtable.after),
            ):
                weight, _, _ = _member_counts(
                    token_items, table.tok_stem, pt_pair, pt_tok, offsets, items, q_of_pair, self.idf
                )
                cw = np.concatenate([[0.0], np.cumsum(weight)])
                for k in (3, 8):
                    num(f"a:{side}l{k}", (cw[s] - cw[np.maximum(s - k, lo)]) / norm)
                    num(f"a:{side}r{k}", (cw[np.minimum(e + 1 + k, hi)] - cw[e + 1]) / norm)
            for k in (1, 3):
                a_prev = (cp[s] - cp[np.maximum(s - k, lo)]) > 0
                a_next = (cn[np.minimum(e + 1 + k, hi)] - cn[e + 1]) > 0
                num(f"a:prev{k}", a_prev)
                num(f"a:next{k}", a_next)
                cat(f"a:pn{k}:t", a_prev.astype(np.uint64) * 2 + a_next.astype(np.uint64), qtype)
        if "passage" in groups:
            # A training passage the retriever did not return (rank UNPLACED) gets a rank bucket and gap of its own,
            # which reading never meets.
            unplaced = rank[row_pair] == UNPLACED
            rank_b = np.where(unplaced, np.uint64(99), _bucket(rank[row_pair], (1, 2, 3, 5, 10, 20)))
            cat("p:rank", rank_b)
            num("p:gap", np.where(unplaced, 0.0, score_gap[row_pair]))
            num("p:unplaced", unplaced)
            if stem_weight is not None:
                pair_match = np.bincount(pt_pair, weights=stem_weight, minlength=n_pairs) / q_norm_pair
                num("p:match", pair_match[row_pair])
                cum = np.concatenate([[0.0], np.cumsum(stem_weight)])
                tok_sent = (
                    cum[pt_base[pt_pair] + table.tok_sent_end[pt_tok]]
                    - cum[pt_base[pt_pair] + table.tok_sent_start[pt_tok]]
                )
                best = np.zeros(n_pairs)
                np.maximum.at(best, pt_pair, tok_sent)
                num("p:best_sent", best[row_pair] / norm)
            if self.settings.include_title and titles is not None:
                ttable = self.passages_titles(titles)
                num("p:title", self._title_match(ttable, qtable, q_of_pair, p_of_pair)[row_pair])
        n_rows = len(row_cand)
        width = len(cols)
        indices = np.empty((n_rows, width), np.int32)
        data = np.ones((n_rows, width), np.float32)
        for k, (c, v) in enumerate(zip(cols, vals)):
            indices[:, k] = c
            if v is not None:
                data[:, k] = v
        matrix = sparse.csr_matrix(
            (data.ravel(), indices.ravel(), np.arange(0, n_rows * width + 1, width, dtype=np.int64)),
            shape=(n_rows, self.dim),
        )
        return matrix, row_pair, row_cand

    def passages_titles(self, titles: Sequence[str]) -> list[set[int]]:
        return [{self.hasher(stem(w)) for w in (t[a:b] for a, b in tokens(t or "")) if stem(w)} for t in titles]

    def _title_match(
        self, title_stems: list[set[int]], qtable: QuestionTable, q_of_pair: np.ndarray, p_of_pair: np.ndarray
    ) -> np.ndarray:
        out = np.zeros(len(q_of_pair))
        for i, (q, p) in enumerate(zip(q_of_pair.tolist(), p_of_pair.tolist())):
            qs = qtable.stems[qtable.stem_offsets[q] : qtable.stem_offsets[q + 1]]
            if len(qs):
                out[i] = np.mean([int(h) in title_stems[p] for h in qs.tolist()])
        return out


# --- the model --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingPassage:
    """A passage a training question reads: the answers it holds (empty: none), its retrieval rank and score gap."""

    document: Document
    answers: tuple[str, ...] = ()
    rank: int = 0
    gap: float = 0.0


def idf_table(texts: Sequence[str], bits: int, hasher: _Hasher | None = None) -> np.ndarray:
    """BM25-style IDF of token stems over ``texts``, hashed into ``2**bits`` buckets (unseen stems: the maximum)."""
    hasher = hasher or _Hasher()
    size = 1 << bits
    df = np.zeros(size, np.int64)
    for text in texts:
        stems = {hasher(s) for s in (stem(text[a:b]) for a, b in tokens(text)) if s}
        if stems:
            np.add.at(df, (np.fromiter(stems, np.uint64, len(stems)) % np.uint64(size)).astype(np.int64), 1)
    n = max(len(texts), 1)
    return np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)


def _occurrences(text: str, answers: Sequence[str]) -> list[tuple[int, int]]:
    found = []
    for answer in dict.fromkeys(a for a in answers if a):
        at = text.find(answer)
        while at >= 0:
            found.append((at, at + len(answer)))
            at = text.find(answer, at + 1)
    return found


def _group_starts(group: np.ndarray) -> np.ndarray:
    """Start positions of the runs of a sorted group array."""
    if not len(group):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))


def _segment_log_softmax(scores: np.ndarray, starts: np.ndarray, group: np.ndarray) -> np.ndarray:
    top = np.maximum.reduceat(scores, starts)
    shifted = scores - top[group]
    log_z = np.log(np.add.reduceat(np.exp(shifted), starts))
    return shifted - log_z[group]


@dataclass
class LexicalModel:
    """A trained lexical span scorer: settings, hashed weights, IDF table, whether it uses Kiwi."""

    settings: LexicalSettings
    weights: np.ndarray
    idf: np.ndarray
    use_kiwi: bool
    info: dict[str, Any] = field(default_factory=dict)
    #: Reading's per-passage tables, reused across calls (:class:`PassageTableCache`; the reader's
    #: ``passage_cache_mb`` option sizes it).
    passage_cache: PassageTableCache = field(
        default_factory=lambda: PassageTableCache(DEFAULT_PASSAGE_CACHE_MB << 20), repr=False, compare=False
    )

    def builder(self) -> FeatureBuilder:
        if self.use_kiwi and not kiwi_available():
            raise DataError(
                "this lexical reader was trained with Kiwi morpheme features; install kiwipiepy to read with it "
                "(pip install kiwipiepy), or train one without Kiwi"
            )
        return FeatureBuilder(self.settings, self.idf, self.use_kiwi)

    # --- training ---------------------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        questions: Sequence[Question],
        passages: Sequence[Sequence[TrainingPassage]],
        corpus: Sequence[Document],
        settings: LexicalSettings,
        *,
        echo: Callable[[str], None] | None = None,
        chunk: int = 512,
    ) -> LexicalModel:
        """Fit a model on ``questions``, each reading its ``passages`` (same order); IDF from ``corpus``."""
        from scipy import optimize, sparse

        settings.validate()
        echo = echo or (lambda _message: None)
        use_kiwi = "kiwi" in settings.features and kiwi_available()
        if "kiwi" in settings.features and not use_kiwi:
            echo("kiwipiepy is not importable: training the lexical reader without its Kiwi features")
        hasher = _Hasher()
        texts = [f"{d.title} {d.text}" if settings.include_title and d.title else d.text for d in corpus]
        idf = idf_table(texts, settings.idf_bits, hasher)
        model = cls(settings, np.zeros(1 << settings.hash_bits, np.float32), idf, use_kiwi)
        builder = model.builder()
        builder.hasher = hasher
        blocks, positives, groups = [], [], []
        dropped = 0
        n_groups = 0
        order = [i for i in range(len(questions)) if passages[i]]
        with progress(len(order), "lexical reader: features", "question") as bar:
            for at in range(0, len(order), chunk):
                members = order[at : at + chunk]
                matrix, positive, group = model._training_block(
                    builder, [questions[i] for i in members], [passages[i] for i in members]
                )
                keep_group = np.zeros(len(members), bool)
                keep_group[np.unique(group[positive])] = True
                dropped += int((~keep_group).sum())
                keep = keep_group[group]
                renumber = np.cumsum(keep_group) - 1 + n_groups
                blocks.append(matrix[keep])
                positives.append(positive[keep])
                groups.append(renumber[group[keep]])
                n_groups += int(keep_group.sum())
                bar.update(len(members))
        if not n_groups:
            raise DataError("no training question has its answer among the lexical reader's candidate spans")
        x = sparse.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
        positive = np.concatenate(positives)
        group = np.concatenate(groups)
        del blocks
        x.sum_duplicates()
        x.eliminate_zeros()
        # Only the columns the data uses are optimised (the others stay 0: L2 alone would keep them there).
        used = np.flatnonzero(np.bincount(x.indices, minlength=x.shape[1]))
        compact = np.zeros(x.shape[1], np.int32)
        compact[used] = np.arange(len(used), dtype=np.int32)
        x = sparse.csr_matrix((x.data, compact[x.indices], x.indptr), shape=(x.shape[0], len(used)))
        xt = x.T.tocsr()
        starts = _group_starts(group)
        pos = positive.astype(np.float64)
        l2 = float(settings.l2)
        echo(
            f"lexical reader: {n_groups} questions ({dropped} without their answer among the candidates), "
            f"{x.shape[0]} candidate rows, {len(used)} feature columns"
        )

        def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
            # float32 products (the matrix is float32: half the memory traffic), float64 for everything else.
            scores = (x @ w.astype(np.float32)).astype(np.float64)
            log_p = _segment_log_softmax(scores, starts, group)
            masked = np.where(pos > 0, scores, -np.inf)
            top = np.maximum.reduceat(masked, starts)
            pos_exp = np.where(pos > 0, np.exp(masked - top[group]), 0.0)
            z_pos = np.add.reduceat(pos_exp, starts)
            log_z = scores - log_p  # per row: the group's log partition
            loss = float(np.sum(log_z[starts] - top - np.log(z_pos))) + 0.5 * l2 * float(w @ w)
            residual = np.exp(log_p) - pos_exp / z_pos[group]
            grad = (xt @ residual.astype(np.float32)).astype(np.float64) + l2 * w
            return loss / n_groups, grad / n_groups

        result = optimize.minimize(
            objective,
            np.zeros(len(used)),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": settings.max_iter, "maxcor": 20},
        )
        weights = np.zeros(1 << settings.hash_bits, np.float32)
        weights[used] = result.x.astype(np.float32)
        model.weights = weights
        model.info = {
            "questions": n_groups,
            "dropped_questions": dropped,
            "rows": int(x.shape[0]),
            "columns": int(len(used)),
            "iterations": int(result.nit),
            "loss": float(result.fun),
            "initial_loss": float(objective(np.zeros(len(used)))[0]),
        }
        echo(
            f"lexical reader: loss {model.info['initial_loss']:.4f} → {model.info['loss']:.4f} in "
            f"{model.info['iterations']} L-BFGS iterations"
        )
        return model

    def _training_block(
        self, builder: FeatureBuilder, questions: Sequence[Question], passages: Sequence[Sequence[TrainingPassage]]
    ) -> tuple[Any, np.ndarray, np.ndarray]:
        texts: dict[str, int] = {}
        titles: list[str] = []
        q_of, p_of, rank, gap, answers = [], [], [], [], []
        for qi, plist in enumerate(passages):
            for tp in plist:
                if tp.document.text not in texts:
                    texts[tp.document.text] = len(texts)
                    titles.append(tp.document.title)
                q_of.append(qi)
                p_of.append(texts[tp.document.text])
                rank.append(tp.rank)
                gap.append(tp.gap)
                answers.append(tp.answers)
        table = builder.passages(list(texts))
        qtable = builder.questions([q.text for q in questions])
        q_of_pair = np.asarray(q_of, np.int64)
        matrix, row_pair, row_cand = builder.rows(
            table,
            qtable,
            q_of_pair,
            np.asarray(p_of, np.int64),
            np.asarray(rank, np.int64),
            np.asarray(gap, np.float64),
            titles,
        )
        gold_keys = [
            (pair, a, b)
            for pair, (p, ans) in enumerate(zip(p_of, answers))
            for a, b in _occurrences(table.texts[p], ans)
        ]
        keys = _mix(row_pair, table.cand_start[row_cand], table.cand_end[row_cand])
        if gold_keys:
            g = np.asarray(gold_keys, np.int64)
            positive = np.isin(keys, _mix(g[:, 0], g[:, 1], g[:, 2]))
        else:
            positive = np.zeros(len(keys), bool)
        return matrix, positive, q_of_pair[row_pair]

    # --- reading ----------------------------------------------------------------------------------------------

    def read(
        self,
        questions: Sequence[Question],
        results: RankedResults,
        n_best: int = 5,
        *,
        label: str = "lexical reader: reading",
        pair_block: int = 2048,
        char_block: int = 8192,
    ) -> list[list[Prediction]]:
        """Up to ``n_best`` spans per question over all passages of its results row, best first; ``score`` is the
        log-probability of the span among every candidate of the row, ``metadata`` has ``probability``,
        ``passage_rank`` and ``window`` (always 0). Questions are read in blocks (the same answers whatever the
        blocks: each question's softmax is its own)."""
        out: list[list[Prediction]] = [[] for _ in questions]
        if not len(questions):
            return out
        builder = self.builder()
        documents = results.documents
        # Blocks of whole questions holding at most about ``pair_block`` (question, passage) pairs and
        # ``char_block`` characters of passage text (candidate rows grow with the text): small blocks keep the
        # feature matrix in the CPU caches (32 sample questions read 1.7x faster in blocks of ~16 pairs than in one
        # block of 320, RESULTS.md §19) while the per-block overhead stays small. Without the passage cache a block
        # is as large as ``pair_block`` allows: it builds each passage's table once for all its questions.
        bound_chars = bool(self.passage_cache.max_bytes)
        valid = results.indices >= 0
        pairs = np.cumsum(valid.sum(axis=1))
        lengths = np.fromiter((len(d.text) for d in documents), np.int64, len(documents))
        text_of_pair = (
            lengths[np.where(valid, results.indices, 0)] if len(lengths) else np.zeros(valid.shape, np.int64)
        )
        chars = np.cumsum(np.where(valid, text_of_pair, 0).sum(axis=1))
        with progress(len(questions), label, "question") as bar:
            at = 0
            while at < len(questions):
                done = int(pairs[at - 1]) if at else 0
                read = int(chars[at - 1]) if at else 0
                stop = int(np.searchsorted(pairs, done + pair_block, side="right"))
                if bound_chars:
                    stop = min(stop, int(np.searchsorted(chars, read + char_block, side="right")))
                members = np.arange(at, min(max(at + 1, stop), len(questions)))
                self._read_block(builder, questions, results, documents, members, n_best, out)
                bar.update(len(members))
                at = int(members[-1]) + 1
        return out

    def _read_block(self, builder, questions, results, documents, members, n_best, out) -> None:
        indices = results.indices[members]
        local_q, rank = (a.astype(np.int64) for a in np.nonzero(indices >= 0))
        if not len(local_q):
            return
        rows = indices[local_q, rank].astype(np.int64)
        scores = results.scores[members][local_q, rank].astype(np.float64)
        # The score gap within each question's list, 0 (top) to 1 (bottom); one passage: 0.
        top = np.full(len(members), -np.inf)
        bottom = np.full(len(members), np.inf)
        np.maximum.at(top, local_q, scores)
        np.minimum.at(bottom, local_q, scores)
        spread = top[local_q] - bottom[local_q]
        gap = np.where(spread > 0, (top[local_q] - scores) / np.where(spread > 0, spread, 1), 0.0)
        unique_rows, p_of = np.unique(rows, return_inverse=True)
        # The passages' question-independent tables come from the model's cache (built once per passage text).
        table = self.passage_cache.tables([documents[int(r)].text for r in unique_rows], builder.passages)
        qtable = builder.questions([questions[int(q)].text for q in members])
        matrix, row_pair, row_cand = builder.rows(
            table,
            qtable,
            local_q,
            p_of.astype(np.int64),
            rank,
            gap,
            [documents[int(r)].title for r in unique_rows],
        )
        if not matrix.shape[0]:
            return
        logits = matrix @ self.weights.astype(np.float64)
        row_q = local_q[row_pair]
        starts = _group_starts(row_q)
        log_p = _segment_log_softmax(logits, starts, row_q)
        order = np.lexsort((table.cand_start[row_cand], rank[row_pair], -log_p, row_q))
        sorted_q = row_q[order]
        keep = order[(np.arange(len(order)) - np.searchsorted(sorted_q, sorted_q)) < n_best]
        for r in keep.tolist():
            q = int(members[row_q[r]])
            pair = int(row_pair[r])
            doc = documents[int(rows[pair])]
            c = int(row_cand[r])
            start, end = int(table.cand_start[c]), int(table.cand_end[c])
            out[q].append(
                Prediction(
                    question_id=questions[q].id,
                    answer=doc.text[start:end],
                    score=float(log_p[r]),
                    doc_id=doc.id,
                    start=start,
                    metadata={"passage_rank": int(rank[pair]), "window": 0, "probability": float(np.exp(log_p[r]))},
                )
            )

    # --- storage ----------------------------------------------------------------------------------------------

    def save(self, path: str | Path, params: dict[str, Any] | None = None) -> None:
        from odqa_core.storage import write_store

        config = {**asdict(self.settings), "features": list(self.settings.features), "use_kiwi": self.use_kiwi}
        with write_store(
            path, kind=STORE_KIND, name=STORE_NAME, format_version=STORE_VERSION, config=config
        ) as writer:
            writer.save_array("weights", self.weights.astype(np.float32))
            writer.save_array("idf", self.idf.astype(np.float32))
            writer.params.update({"training": self.info, **(params or {})})

    @classmethod
    def load(cls, path: str | Path) -> LexicalModel:
        from odqa_core.storage import open_store

        store = open_store(path, kind=STORE_KIND, name=STORE_NAME, format_version=STORE_VERSION)
        config = store.config
        use_kiwi = config.pop("use_kiwi", None)
        try:
            settings = LexicalSettings(**{**config, "features": tuple(config.get("features", ()))}).validate()
        except (TypeError, UsageError) as exc:
            raise IndexFormatError(f"{path}: not a valid lexical reader configuration ({exc})") from None
        weights, idf = store.load_array("weights"), store.load_array("idf")
        if (
            not isinstance(use_kiwi, bool)
            or weights.dtype != np.float32
            or weights.shape != (1 << settings.hash_bits,)
            or idf.dtype != np.float32
            or idf.shape != (1 << settings.idf_bits,)
            or not (np.isfinite(weights).all() and np.isfinite(idf).all())
        ):
            raise IndexFormatError(f"{path}: the lexical reader's arrays do not match its configuration")
        return cls(settings, weights, idf, use_kiwi, dict(store.params.get("training", {})))


class LexicalTrainer:
    """Trains a lexical model inside :func:`odqa_readers.training.train_reader` (``model = "lexical"``): the same
    examples (gold passages, ``retrieved`` passages, cloze questions, particle-stripped spans), dev questions and
    folds as a transformer reader, one fit instead of epochs. Writes ``best/`` (and ``epoch-1/`` with
    ``keep_epochs``) and ``report.json`` with one epoch row, so that sweeps and ``odqa train reader`` read it as
    any reader training's."""

    def __init__(
        self,
        examples: Sequence[Any],
        dev: Sequence[Question],
        documents: Sequence[Document],
        config: Any,
        output: Path,
        *,
        test: Sequence[Question] = (),
        echo: Callable[[str], None],
        questions: Sequence[Question] = (),
        retrieved: RankedResults | None = None,
    ) -> None:
        self.examples, self.documents, self.config, self.output, self.echo = examples, documents, config, output, echo
        self.dev, self.test = list(dev), list(test)
        self.questions, self.retrieved = questions, retrieved

    def _placement(self) -> dict[tuple[str, str], tuple[int, float]]:
        """(question id, document id) → (rank, score gap) in the question's retrieved list. A gold passage the
        retriever missed gets rank -1 (:data:`UNPLACED`): placed after the list it would always be a positive at
        its bottom, and the rank and score features would learn that the bottom of a list is good."""
        placed: dict[tuple[str, str], tuple[int, float]] = {}
        if self.retrieved is None:
            return placed
        indices, scores, docs = (
            self.retrieved.indices,
            self.retrieved.scores.astype(np.float64),
            self.retrieved.documents,
        )
        for qi, q in enumerate(self.questions):
            valid = indices[qi] >= 0
            row_scores = scores[qi][valid]
            if not len(row_scores):
                continue
            top, bottom = row_scores.max(), row_scores.min()
            spread = top - bottom
            for rank, (row, score) in enumerate(zip(indices[qi][valid].tolist(), row_scores.tolist())):
                placed[(q.id, docs[row].id)] = (rank, (top - score) / spread if spread > 0 else 0.0)
            placed[(q.id, "")] = (UNPLACED, 0.0)
        return placed

    def run(self) -> dict[str, Any]:
        import json
        import time

        from odqa_core.data import gold_results
        from odqa_core.outputs import atomic_write_text
        from odqa_readers.reports import best_answer_metrics, training_report

        config = self.config
        settings = LexicalSettings.from_options(
            dict(config.lexical_options), bool(config.reader_options.get("include_title", False))
        )
        placed = self._placement()
        by_question: dict[str, tuple[Question, list[TrainingPassage]]] = {}
        for example in self.examples:
            q = example.question
            rank, gap = placed.get((q.id, example.document.id), placed.get((q.id, ""), (0, 0.0)))
            answers = (example.answer,) if example.has_answer else ()
            by_question.setdefault(q.id, (q, []))[1].append(TrainingPassage(example.document, answers, rank, gap))
        if not by_question:
            raise DataError("no training examples: no question has a passage to read")
        started = time.perf_counter()
        model = LexicalModel.train(
            [q for q, _ in by_question.values()],
            [passages for _, passages in by_question.values()],
            self.documents,
            settings,
            echo=self.echo,
        )
        train_s = time.perf_counter() - started

        def evaluate(questions: Sequence[Question]) -> dict[str, float]:
            gold = gold_results(questions, self.documents)
            report = best_answer_metrics(model.read, questions, gold, config.metric)
            return {"exact_match": report["exact_match"], "f1": report["f1"]}

        row: dict[str, Any] = {"epoch": 1, "loss": model.info["loss"], "train_s": round(train_s, 2)}
        row["dev"] = evaluate(self.dev) if self.dev else {"exact_match": 0.0, "f1": 0.0}
        row["metric"] = row["dev"][config.select]
        if self.test:
            row["test"] = evaluate(self.test)
        row["eval_s"] = round(time.perf_counter() - started - train_s, 2)
        params = {"epoch": 1, "loss": row["loss"], "dev": row["dev"]}
        model.save(self.output / "best", params=params)
        if config.keep_epochs:
            model.save(self.output / "epoch-1", params=params)
        best = {"epoch": 1, "metric": row["metric"]}
        report = training_report(
            config, self.examples, self.dev, self.test, [row], best, True, kind="lexical", lexical=model.info
        )
        atomic_write_text(self.output / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
        self.echo(
            f"lexical reader: dev EM {row['dev']['exact_match']:.2f} F1 {row['dev']['f1']:.2f} "
            f"(trained in {train_s:.1f} s)"
        )
        return report


def is_lexical_store(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding a lexical reader store (by its manifest's kind)."""
    import json

    manifest = Path(path) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("kind") == STORE_KIND
    except (ValueError, OSError, AttributeError):
        return False


__all__ = [
    "DEFAULT_PASSAGE_CACHE_MB",
    "FEATURE_GROUPS",
    "PARTICLES",
    "STORE_KIND",
    "LexicalModel",
    "LexicalSettings",
    "LexicalTrainer",
    "PassageTableCache",
    "TrainingPassage",
    "is_lexical_store",
    "passage_table",
    "question_type",
    "trim_particle",
]
