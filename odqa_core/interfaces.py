"""The component interfaces: Analyzer, Retriever, Fuser, Reader, Postprocessor.

Conventions shared by all of them (Haystack's, roughly):

- ``__init__`` only stores and validates keyword options; it never loads a model or reads a file. Heavy state is
  loaded in :meth:`Component.warm_up`, which every stage calls before first use (and which must be idempotent).
- Options are plain JSON values so that a component can be rebuilt from a manifest or a TOML pipeline;
  :meth:`Component.config` returns them.
- Everything is batch-first: a retriever searches many questions at once and returns arrays of shape
  ``(n_questions, k)``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from odqa_core.errors import UsageError
from odqa_core.storage import StoreReader, StoreWriter, open_store, write_store
from odqa_core.types import Document, Prediction, Question, RankedResults


class Component:
    """Base of every pluggable component (the kinds below are the abstract classes plugins subclass)."""

    #: The name the component is registered under unless ``register(cls, name=...)`` overrides it.
    name: ClassVar[str] = ""
    #: Which registry the component belongs to ("retriever", "fuser", ...).
    kind: ClassVar[str] = ""

    @classmethod
    def option_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind == p.KEYWORD_ONLY]

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> Component:
        """Build from user options, rejecting unknown ones with a message that lists the valid ones."""
        options = dict(options or {})
        valid = cls.option_names()
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UsageError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
                f"{cls.kind} {cls.name!r}; valid options: {', '.join(valid) or '(none)'}"
            )
        return cls(**options)

    def config(self) -> dict[str, Any]:
        """The options this component was built with (JSON values), enough to rebuild it."""
        return {name: getattr(self, name) for name in self.option_names() if hasattr(self, name)}

    def warm_up(self) -> None:  # noqa: B027 - optional hook, a no-op unless there is heavy state
        """Load heavy state (models, large tables). Called before first use; must be idempotent."""


class Analyzer(Component, ABC):
    """Turns text into tokens for sparse retrieval."""

    kind = "analyzer"

    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """Tokens of one text."""

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokens of many texts. Override when the analyzer has a faster batch path."""
        self.warm_up()
        return [self.tokenize(t) for t in texts]


class Retriever(Component, ABC):
    """Indexes a corpus and searches it with many questions at once.

    Subclasses implement :meth:`index`, :meth:`search`, :meth:`save_state` and :meth:`load_state`; the base
    class handles the store directory (atomic write, manifest, checksums, document table).
    """

    kind = "retriever"
    #: Bump when the stored layout of this retriever changes; older stores are then refused with a clear error.
    format_version: ClassVar[int] = 1
    #: Options that may differ between indexing and searching (devices, batch sizes, search effort); any other
    #: option is fixed by the index and can only change by rebuilding it.
    runtime_options: ClassVar[frozenset[str]] = frozenset()

    @property
    @abstractmethod
    def documents(self) -> Sequence[Document]:
        """The indexed document table; ``RankedResults.indices`` point into it."""

    @abstractmethod
    def index(self, documents: Sequence[Document]) -> None:
        """Build the index from a corpus (replacing any previous one)."""

    @abstractmethod
    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        """Top-``k`` documents of each query, best first; ``k`` is clamped to the corpus size."""

    @abstractmethod
    def save_state(self, writer: StoreWriter) -> None:
        """Write the index arrays (the document table is written by :meth:`save`)."""

    @classmethod
    @abstractmethod
    def load_state(cls, reader: StoreReader, documents: list[Document]) -> Retriever:
        """Rebuild a retriever from a verified store."""

    def save(self, path: str | Path) -> None:
        with write_store(
            path, kind=self.kind, name=self.name, format_version=self.format_version, config=self.config()
        ) as writer:
            writer.save_documents(self.documents)
            self.save_state(writer)

    @classmethod
    def load(cls, path: str | Path, options: Mapping[str, Any] | None = None) -> Retriever:
        """Open a stored index; ``options`` override its :attr:`runtime_options` (e.g. ``{"device": "cuda"}``)."""
        reader = open_store(path, kind=cls.kind, name=cls.name, format_version=cls.format_version)
        if options:
            fixed = sorted(set(options) - cls.runtime_options)
            if fixed:
                can = ", ".join(sorted(cls.runtime_options)) or "none"
                raise UsageError(
                    f"option {', '.join(map(repr, fixed))} of retriever {cls.name!r} is fixed when the index is "
                    f"built; rebuild the index to change it (options that can change at search time: {can})"
                )
            reader.manifest["config"] = {**reader.config, **options}
        return cls.load_state(reader, reader.load_documents())


class Fuser(Component, ABC):
    """Combines the results of several retrievers built over the same document table."""

    kind = "fuser"

    @abstractmethod
    def fuse(self, retrievers: Sequence[Retriever], queries: Sequence[str], k: int) -> RankedResults:
        """Fused top-``k`` of each query."""


class Reader(Component, ABC):
    """Reads retrieved passages and proposes answers."""

    kind = "reader"

    @abstractmethod
    def read(self, questions: Sequence[Question], results: RankedResults, n_best: int = 5) -> list[list[Prediction]]:
        """Up to ``n_best`` predictions per question, best first, from that question's row of ``results``."""


class Postprocessor(Component, ABC):
    """Rewrites or re-ranks a question's predictions (e.g. cleans spans, votes across passages)."""

    kind = "postprocessor"

    @abstractmethod
    def process(self, question: Question, predictions: list[Prediction]) -> list[Prediction]:
        """The processed predictions, best first."""


COMPONENT_KINDS: dict[str, type[Component]] = {
    "retriever": Retriever,
    "fuser": Fuser,
    "reader": Reader,
    "postprocessor": Postprocessor,
    "analyzer": Analyzer,
}
