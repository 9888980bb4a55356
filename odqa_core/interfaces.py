"""The component interfaces: Analyzer, Retriever, Fuser, Reader, Postprocessor, Trainer.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from odqa_core.errors import UsageError
from odqa_core.options import check_finite_options
from odqa_core.types import Document, Prediction, Question, RankedResults

if TYPE_CHECKING:
    # numpy and the stores are imported by the methods that use them: `import odqa_core`, plugin registration and
    # `odqa --help` never load numpy.
    import numpy as np

    from odqa_core.storage import StoreReader, StoreWriter


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
        check_finite_options(options, f"{cls.kind} {cls.name!r}")
        return cls(**options)

    @classmethod
    def sample_defaults(cls) -> dict[str, Any]:
        """Options used when a pipeline runs on the bundled sample and the user did not set them.

        A component that needs a trained model returns e.g. ``{"model": "sample"}``: a demo model it trains on
        first use, so ``odqa run`` on the sample works on a fresh machine. Never applied to the user's own data.
        """
        return {}

    def config(self) -> dict[str, Any]:
        """The options this component was built with (JSON values), enough to rebuild it."""
        return {name: getattr(self, name) for name in self.option_names() if hasattr(self, name)}

    def resolved_config(self) -> dict[str, Any]:
        """The options in use, defaults filled in (what a run's ``summary.json`` records): :meth:`config`, with
        the value actually used for any option left unset (None) that the component resolves itself (e.g. BM25's
        ``k1`` from its variant, a reader's ``max_length`` from its checkpoint). Called after the component has
        worked; override it when :meth:`config` keeps None for an option that took a default."""
        return self.config()

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

    # --- scoring given documents (fusers use these; override the defaults with faster paths) ---------------------

    #: Whether :meth:`score_documents` can score passages this retriever has not indexed (bi-encoders and
    #: cross-encoders can; an inverted index needs its corpus statistics and cannot).
    scores_unindexed: ClassVar[bool] = False

    @property
    def is_indexed(self) -> bool:
        return len(self.documents) > 0

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        """The score of every document for each query: float32 ``(len(queries), len(documents))``.

        The values are the scores :meth:`search` gives. The default ranks the whole corpus and scatters the
        ranking back; retrievers that can score everything directly (a matrix product, an accumulator) override
        it. Callers bound memory by passing a few queries at a time. The array is the caller's (a new one per
        call), so fusers may normalise it in place.
        """
        import numpy as np

        n = len(self.documents)
        results = self.search(queries, n)
        out = np.empty((len(queries), n), np.float32)
        np.put_along_axis(out, results.indices, results.scores, axis=1)
        return out

    def score(self, queries: Sequence[str], candidates: np.ndarray) -> np.ndarray:
        """Scores of the document rows ``candidates[i]`` for query ``i``: float32 of ``candidates``' shape.

        ``candidates`` is ``(len(queries), C)`` int64, rows of :attr:`documents`; the values are the scores
        :meth:`search` gives those rows. The default goes through :meth:`score_all`, a few queries at a time.
        The array is the caller's, as with :meth:`score_all`.
        """
        import numpy as np

        candidates = check_candidates(candidates, len(queries), len(self.documents), self.name)
        out = np.empty(candidates.shape, np.float32)
        step = max(1, SCORE_CHUNK_CELLS // max(1, len(self.documents)))
        for start in range(0, len(queries), step):
            block = self.score_all(queries[start : start + step])
            out[start : start + step] = np.take_along_axis(block, candidates[start : start + step], 1)
        return out

    def score_documents(
        self, queries: Sequence[str], documents: Sequence[Document], candidates: np.ndarray
    ) -> np.ndarray:
        """Scores of rows ``candidates`` of another document table ``documents``, without indexing it.

        Only retrievers with :attr:`scores_unindexed` implement it (a bi-encoder encodes the candidates).
        """
        raise UsageError(
            f"retriever {self.name!r} cannot score passages it has not indexed; build its index over the corpus "
            "first (odqa index, or --index-dir)"
        )

    @abstractmethod
    def save_state(self, writer: StoreWriter) -> None:
        """Write the index arrays (the document table is written by :meth:`save`)."""

    @classmethod
    @abstractmethod
    def load_state(cls, reader: StoreReader, documents: list[Document]) -> Retriever:
        """Rebuild a retriever from a verified store."""

    def save(self, path: str | Path) -> None:
        from odqa_core.storage import write_store

        with write_store(
            path, kind=self.kind, name=self.name, format_version=self.format_version, config=self.config()
        ) as writer:
            writer.save_documents(self.documents)
            self.save_state(writer)

    @classmethod
    def load(cls, path: str | Path, options: Mapping[str, Any] | None = None) -> Retriever:
        """Open a stored index; ``options`` override its :attr:`runtime_options` (e.g. ``{"device": "cuda"}``)."""
        from odqa_core.storage import open_store

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
    """Combines the results of several retrievers built over the same document table.

    A fuser names the retrievers it combines (:meth:`slots`: e.g. ``bm25`` and ``dpr``); the pipeline fills the
    slots with the retrievers the user named and creates the others through the registry by name, so a fuser
    works with any retriever plugin. :meth:`fuse` receives the retrievers in slot order.
    """

    kind = "fuser"
    #: How many retrievers :meth:`fuse` accepts.
    min_retrievers: ClassVar[int] = 2
    max_retrievers: ClassVar[int | None] = None

    def slots(self) -> list[str]:
        """The retriever names this fuser combines when the user names none (in :meth:`fuse` order)."""
        return []

    def fixed_slots(self) -> set[int]:
        """The slots the user's options fixed (e.g. ``second=tfidf``): only a retriever of that name fills them."""
        return set()

    def select_retrievers(self, given: Sequence[str]) -> list[str]:
        """The retrievers to fuse, in order, given the names the user chose (``--retriever``).

        A given name equal to a slot's name takes that slot; the other given names take the free slots that the
        options did not fix, in order, then come after the slots (unless every slot is fixed: an error); slots
        still free keep their default. So with slots ``bm25, dpr``: ``[bm25] → [bm25, dpr]``,
        ``[dpr] → [bm25, dpr]``, ``[tfidf] → [tfidf, dpr]``, ``[bm25, tfidf, dpr] → [bm25, dpr, tfidf]``.
        The pipeline then checks the names against the registry and the options (:meth:`check_names`), before
        anything is indexed.
        """
        defaults = self.slots()
        fixed = self.fixed_slots()
        chosen: list[str | None] = [None] * len(defaults)
        rest = []
        for name in dict.fromkeys(given):  # a name given twice is one retriever
            if name in defaults and chosen[defaults.index(name)] is None:
                chosen[defaults.index(name)] = name
            else:
                rest.append(name)
        free = [i for i, name in enumerate(chosen) if name is None and i not in fixed]
        for i, name in zip(free, list(rest)):
            chosen[i] = name
            rest.remove(name)
        if rest and defaults and len(fixed) == len(defaults):
            raise UsageError(
                f"fuser {self.name!r} combines {', '.join(defaults)} (set by its options); retriever {rest[0]!r} "
                "is not one of them"
            )
        names = list(dict.fromkeys([c if c is not None else d for c, d in zip(chosen, defaults)] + rest))
        self.check_count(names)
        return names

    def check_names(self, names: Sequence[str]) -> None:
        """Check the fused retrievers' names against the options (counts, weights by name, ...)."""
        self.check_count(names)

    def check_count(self, names: Sequence[str]) -> None:
        most = self.max_retrievers
        if len(names) < self.min_retrievers or (most is not None and len(names) > most):
            wanted = (
                f"exactly {most}"
                if most == self.min_retrievers
                else f"at least {self.min_retrievers}" + (f" and at most {most}" if most is not None else "")
            )
            raise UsageError(
                f"fuser {self.name!r} combines {wanted} retrievers, got {len(names)}"
                + (f" ({', '.join(names)})" if names else "")
            )

    def index(self, retrievers: Sequence[Retriever], documents: Sequence[Document]) -> None:
        """Index the corpus with the retrievers that need an index for this fuser (by default all of them)."""
        for retriever in retrievers:
            retriever.warm_up()
            retriever.index(documents)

    def check_ready(self, retrievers: Sequence[Retriever]) -> Sequence[Document]:
        """Check that the retrievers can be fused; returns their shared document table.

        Every retriever must be indexed over the same documents (same ids, same order), except those a fuser lets
        score passages unindexed (:attr:`Retriever.scores_unindexed`), which :meth:`unindexed_ok` names.
        """
        self.check_names([r.name for r in retrievers])
        indexed = [r for r in retrievers if r.is_indexed]
        missing = [r.name for r in retrievers if not r.is_indexed and not self.unindexed_ok(r, retrievers)]
        if missing or not indexed:
            raise UsageError(
                f"fuser {self.name!r}: retriever {(missing or [retrievers[0].name])[0]!r} has no index; index the "
                "corpus with it (odqa index) and pass its --index-dir"
            )
        table = indexed[0].documents
        for other in indexed[1:]:
            if other.documents is not table and not same_documents(table, other.documents):
                raise UsageError(
                    f"fuser {self.name!r}: retrievers {indexed[0].name!r} and {other.name!r} were indexed over "
                    f"different corpora ({len(table)} and {len(other.documents)} documents, or other ids); index "
                    "the same corpus (same --split-words) with both"
                )
        return table

    def unindexed_ok(self, retriever: Retriever, retrievers: Sequence[Retriever]) -> bool:
        """Whether ``retriever`` may be fused without an index of its own (sequential's second stage may)."""
        return False

    @abstractmethod
    def fuse(self, retrievers: Sequence[Retriever], queries: Sequence[str], k: int) -> RankedResults:
        """Fused top-``k`` of each query."""


#: Cells (queries × documents) of float32 scores a default scoring path holds at once (32 MiB).
SCORE_CHUNK_CELLS = 1 << 23


def check_candidates(candidates: Any, n_queries: int, n_documents: int, owner: str) -> np.ndarray:
    """``candidates`` as an int64 ``(n_queries, C)`` array of valid document rows, or a UsageError."""
    import numpy as np

    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or candidates.shape[0] != n_queries:
        raise UsageError(f"{owner}: candidates must have shape ({n_queries}, C), got {candidates.shape}")
    if candidates.size and not np.issubdtype(candidates.dtype, np.integer):
        raise UsageError(f"{owner}: candidates must be integer document rows, got {candidates.dtype}")
    candidates = candidates.astype(np.int64, copy=False)
    if candidates.size and (candidates.min() < 0 or candidates.max() >= n_documents):
        raise UsageError(
            f"{owner}: candidate rows must lie in [0, {n_documents}), got {candidates.min()}..{candidates.max()}"
        )
    return candidates


def same_documents(a: Sequence[Document], b: Sequence[Document]) -> bool:
    """Whether two document tables hold the same ids in the same order."""
    return len(a) == len(b) and all(x.id == y.id for x, y in zip(a, b))


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


@dataclass(frozen=True)
class EpochCheckpoint:
    """A checkpoint a :class:`Trainer` saved after one epoch, with the dev metric that epoch reached."""

    epoch: int
    path: Path
    #: The trainer's epoch-selection metric on its dev questions (higher is better).
    dev_metric: float
    loss: float


class Trainer(Component, ABC):
    """Trains the model of one pipeline component; registered under that component's name (``dpr``, ...).

    The options are the training settings (those of the plugin's ``odqa train`` command, by field name). ``odqa
    sweep`` creates a trainer per grid cell, calls :meth:`train`, and passes the chosen checkpoint to the
    component as its :attr:`model_option`.
    """

    kind = "trainer"
    #: The kind of the component whose model this trains ("retriever", "reader").
    stage: ClassVar[str] = ""
    #: The option of that component that takes the trained checkpoint.
    model_option: ClassVar[str] = "model"
    #: The training setting that counts epochs (``None``: the trainer has no epochs).
    epochs_option: ClassVar[str | None] = "epochs"

    @abstractmethod
    def train(
        self,
        documents: Sequence[Document],
        questions: Sequence[Question],
        output: Path,
        *,
        dev_questions: Sequence[Question] | None = None,
    ) -> list[EpochCheckpoint]:
        """Train on ``questions`` over ``documents`` into the empty directory ``output``; keep a checkpoint after
        every epoch and return them in epoch order. ``dev_questions`` select epochs (else the trainer holds some
        training questions out, as its command does)."""


COMPONENT_KINDS: dict[str, type[Component]] = {
    "retriever": Retriever,
    "fuser": Fuser,
    "reader": Reader,
    "postprocessor": Postprocessor,
    "analyzer": Analyzer,
    "trainer": Trainer,
}
