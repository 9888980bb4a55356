"""Analyzers: text → tokens for the sparse retrievers.

Registered under ``regex`` (the default), ``char-ngram``, ``hf`` and ``kiwi``. Importing this module is cheap:
``tokenizers`` and ``kiwipiepy`` are imported in :meth:`warm_up`, and only by the analyzers that need them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from odqa_core import Analyzer, DataError, UsageError, options

__all__ = ["CharNgramAnalyzer", "HFTokenizerAnalyzer", "KiwiAnalyzer", "RegexAnalyzer", "shared_kiwi"]


#: Text that a token pattern is tried on when it is built: any pattern with an empty match here (``\w*``, ``\b``,
#: ``(?=\w)``) would make empty tokens, or words cut at arbitrary places, from real text too.
_PROBE_TEXT = "Aa Zz 09 가나 漢字 x_y-z, (q). \t\n"


def _compile(owner: str, name: str, pattern: Any) -> re.Pattern[str]:
    """The compiled token pattern, refused unless every match is a non-empty token."""
    if not isinstance(pattern, str) or not pattern:
        raise UsageError(f"{owner}: option {name!r} must be a non-empty regular expression string, got {pattern!r}")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{owner}: option {name!r} is not a valid regular expression {pattern!r} ({exc})") from None
    if compiled.groups > 1:
        # findall would return tuples of groups, which are not tokens
        raise UsageError(
            f"{owner}: option {name!r} has {compiled.groups} capturing groups, {pattern!r}; a token is the whole "
            "match or its one group: make the others non-capturing, (?:...)"
        )
    if compiled.search("") is not None or any(not m.group() for m in compiled.finditer(_PROBE_TEXT)):
        raise UsageError(
            f"{owner}: option {name!r} can match the empty string, {pattern!r}, which makes empty tokens: "
            "use a pattern that needs at least one character (e.g. \\w+ rather than \\w*)"
        )
    return compiled


class RegexAnalyzer(Analyzer):
    """Lowercases (optionally), then keeps every match of ``pattern`` (default ``\\w+``, Unicode-aware).

    A token is the whole match, or the pattern's one capturing group; a pattern that can match the empty string
    (``\\w*``, ``\\b``) or has several groups is refused when the analyzer is built.
    """

    name = "regex"

    def __init__(self, *, lowercase: bool = True, pattern: str = r"\w+") -> None:
        self.lowercase = options.boolean("analyzer 'regex'", "lowercase", lowercase)
        self.pattern = pattern
        self._findall = _non_empty(_compile("analyzer 'regex'", "pattern", pattern).findall)

    def tokenize(self, text: str) -> list[str]:
        return self._findall(text.lower() if self.lowercase else text)

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        findall = self._findall
        if self.lowercase:
            return [findall(t.lower()) for t in texts]
        return [findall(t) for t in texts]


def _non_empty(findall: Any) -> Any:
    """``findall`` without empty strings: a capturing group can match nothing inside a match, and a zero-width
    match can hide from the check in :func:`_compile`. (Testing for one costs next to nothing.)"""

    def tokens(text: str) -> list[str]:
        found = findall(text)
        return [t for t in found if t] if "" in found else found

    return tokens


class CharNgramAnalyzer(Analyzer):
    """Character ``n``-grams inside each word; words shorter than ``n`` are kept whole.

    Suits Korean, where particles and endings attach to the word they follow (``서울에서`` → ``서울 울에 에서``
    for ``n=2``), so that a query word matches its inflected forms without a morphological analyzer. Words are the
    matches of ``pattern`` (default ``\\w+``: whitespace- and punctuation-separated runs), lowercased by default.
    """

    name = "char-ngram"

    def __init__(self, *, n: int = 2, lowercase: bool = True, pattern: str = r"\w+") -> None:
        self.n = options.positive_int("analyzer 'char-ngram'", "n", n)
        self.lowercase = options.boolean("analyzer 'char-ngram'", "lowercase", lowercase)
        self.pattern = pattern
        self._findall = _non_empty(_compile("analyzer 'char-ngram'", "pattern", pattern).findall)

    def tokenize(self, text: str) -> list[str]:
        n = self.n
        out: list[str] = []
        for word in self._findall(text.lower() if self.lowercase else text):
            if len(word) <= n:
                out.append(word)
            else:
                out.extend(word[i : i + n] for i in range(len(word) - n + 1))
        return out

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]


class HFTokenizerAnalyzer(Analyzer):
    """The tokens of a HuggingFace ``tokenizers`` tokenizer (``tokenizer.json`` or a directory holding one).

    Special tokens are not added. Needs ``pip install 'odqa-sparse[hf]'``.
    """

    name = "hf"

    def __init__(self, *, path: str | None = None) -> None:
        if not isinstance(path, str) or not path:
            raise UsageError(
                "analyzer 'hf': option 'path' must name a tokenizer.json file or a directory holding one, "
                f"got {path!r}"
            )
        self.path = path
        self._tokenizer: Any = None

    def _resolve(self) -> Path:
        p = Path(self.path).expanduser()
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise DataError(f"analyzer 'hf': no tokenizer file at {p} (option path={self.path!r})")
        return p

    def warm_up(self) -> None:
        if self._tokenizer is not None:
            return
        file = self._resolve()
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise UsageError("analyzer 'hf' needs the 'tokenizers' package: pip install 'odqa-sparse[hf]'") from None
        try:
            self._tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:  # tokenizers raises plain Exception subclasses for bad files
            raise DataError(f"analyzer 'hf': cannot read tokenizer {file}: {exc}") from None

    def tokenize(self, text: str) -> list[str]:
        self.warm_up()
        return [t for t in self._tokenizer.encode(text, add_special_tokens=False).tokens if t]

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        self.warm_up()
        texts = texts if isinstance(texts, list) else list(texts)
        if not texts:
            return []
        # A tokenizer may emit empty-string tokens (e.g. a normalizer that deletes a whole piece); never index them.
        return [[t for t in enc.tokens if t] for enc in self._tokenizer.encode_batch(texts, add_special_tokens=False)]


#: Content morphemes kept by the ``kiwi`` analyzer (``VV`` also matches kiwi's irregular ``VV-I``/``VV-R`` tags).
KIWI_DEFAULT_TAGS = ("NNG", "NNP", "NNB", "VV", "VA", "SL", "SN", "XR", "SH")


class KiwiAnalyzer(Analyzer):
    """Korean morphological analysis with kiwipiepy, keeping content morphemes.

    Keeps nouns (``NNG``, ``NNP``, ``NNB``), verb and adjective stems (``VV``, ``VA``), foreign words (``SL``),
    numbers (``SN``), roots (``XR``) and hanja (``SH``); particles, endings and punctuation are dropped. ``tags``
    replaces the kept tag list (each entry matches a tag exactly or as the part before ``-``). Foreign words are
    lowercased when ``lowercase`` is true. ``num_workers`` is kiwipiepy's (default: its own, all cores; 1: one
    thread): :meth:`tokenize_many` hands the whole list to kiwipiepy, which spreads it over that many threads. The
    model is loaded once per process for each (``model_type``, ``num_workers``) and shared by every analyzer with
    those options (see :func:`shared_kiwi`). Needs ``pip install 'odqa-sparse[kiwi]'``.
    """

    name = "kiwi"

    def __init__(
        self,
        *,
        tags: Sequence[str] = KIWI_DEFAULT_TAGS,
        lowercase: bool = True,
        num_workers: int | None = None,
        model_type: str | None = None,
    ) -> None:
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)) or not tags:
            raise UsageError(f"analyzer 'kiwi': option 'tags' must be a non-empty list of POS tags, got {tags!r}")
        if not all(isinstance(t, str) and t for t in tags):
            raise UsageError(f"analyzer 'kiwi': option 'tags' must hold tag names, got {tags!r}")
        if num_workers is not None:
            options.integer("analyzer 'kiwi'", "num_workers", num_workers, minimum=-1)
        if model_type is not None and not isinstance(model_type, str):
            raise UsageError(f"analyzer 'kiwi': option 'model_type' must be a string, got {model_type!r}")
        self.tags = list(tags)
        self.lowercase = options.boolean("analyzer 'kiwi'", "lowercase", lowercase)
        self.num_workers = num_workers
        self.model_type = model_type
        self._keep = frozenset(self.tags)
        self._kiwi: Any = None

    def warm_up(self) -> None:
        if self._kiwi is None:
            self._kiwi = shared_kiwi(num_workers=self.num_workers, model_type=self.model_type)

    def _keep_forms(self, tokens: Iterable[Any]) -> list[str]:
        keep = self._keep
        out = []
        for tok in tokens:
            tag = tok.tag
            if (tag in keep or tag.split("-", 1)[0] in keep) and tok.form:
                out.append(tok.form.lower() if self.lowercase and tag == "SL" else tok.form)
        return out

    def tokenize(self, text: str) -> list[str]:
        self.warm_up()
        return self._keep_forms(self._kiwi.tokenize(text))

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        self.warm_up()
        texts = texts if isinstance(texts, list) else list(texts)
        if not texts:
            return []
        # The list form is kiwipiepy's batch API: one call, the texts spread over the model's worker threads, the
        # results in input order (the same tokens as one tokenize(text) call per text).
        return [self._keep_forms(tokens) for tokens in self._kiwi.tokenize(texts)]


#: The kiwipiepy models loaded in this process, by (model_type, num_workers): loading one takes most of a second and
#: hundreds of MB (benchmarks/RESULTS.md §14), and every analyzer with the same options can use the same one
#: (analysis never changes it; kiwipiepy serves concurrent calls from several threads).
_KIWIS: dict[tuple[str | None, int | None], Any] = {}
_KIWIS_LOCK = threading.Lock()


def shared_kiwi(*, num_workers: int | None = None, model_type: str | None = None) -> Any:
    """This process's ``kiwipiepy.Kiwi`` for these options, loaded on first use (by one thread; the others wait
    for it). Callers must not change it (user words, ``space_tolerance``, ...): other analyzers share it."""
    key = (model_type, num_workers)
    kiwi = _KIWIS.get(key)
    if kiwi is not None:
        return kiwi
    with _KIWIS_LOCK:
        kiwi = _KIWIS.get(key)
        if kiwi is None:
            kiwi = _KIWIS[key] = _load_kiwi(num_workers, model_type)
    return kiwi


def _load_kiwi(num_workers: int | None, model_type: str | None) -> Any:
    try:
        from kiwipiepy import Kiwi
    except ImportError:
        raise UsageError("analyzer 'kiwi' needs the kiwipiepy package: pip install 'odqa-sparse[kiwi]'") from None
    kwargs: dict[str, Any] = {}
    if num_workers is not None:
        kwargs["num_workers"] = num_workers
    if model_type is not None:
        kwargs["model_type"] = model_type
    try:
        return Kiwi(**kwargs)
    except Exception as exc:  # kiwipiepy raises ValueError/RuntimeError/OSError for bad models and options
        raise DataError(f"analyzer 'kiwi': cannot start kiwipiepy ({exc})") from None
