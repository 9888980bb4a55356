"""The sparse retrievers: ``tfidf`` and ``bm25``.

Both index through the same pipeline — analyzer (from the registry) → :class:`~odqa_sparse.embedding.SparseEmbedding`
(built once) → a weighting's impact postings — and search with the fused, exactly pruned top-k kernel of
:mod:`odqa_sparse.kernels`. This module imports only numpy and odqa_core at import time; scipy and numba are imported
when a retriever indexes, loads or warms up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from odqa_core import Analyzer, DataError, Document, RankedResults, Retriever, UsageError, options, plugins
from odqa_core.storage import StoreReader, StoreWriter

if TYPE_CHECKING:
    from odqa_sparse.embedding import SparseEmbedding
    from odqa_sparse.weighting import CorpusStatistics, Impacts

__all__ = ["BM25Retriever", "SparseRetriever", "TfidfRetriever"]

#: Queries handed to one kernel call; bounds the scratch memory of a search whatever the number of questions.
QUERY_CHUNK = 4096
#: Documents tokenized per analyzer call while indexing.
DOC_CHUNK = 2048
#: The kernels' "no floor" (see :func:`odqa_sparse.kernels.search_batch_scratch`).
_NO_FLOOR = np.zeros(0, np.float64)


class PreparedQueries(NamedTuple):
    """Questions as the search kernels take them (:meth:`SparseRetriever.prepare_queries`): CSR rows ``ptr``
    (int64) over term ids ``terms`` (int32) and their weights (float32), and each question's constant."""

    ptr: np.ndarray
    terms: np.ndarray
    weights: np.ndarray
    constants: np.ndarray


def _progress(total: int | None, desc: str, unit: str) -> Any:
    from odqa_core.progress import progress

    return progress(total=total, desc=desc, unit=unit, leave=False)


def _warn(message: str) -> None:
    from odqa_core.progress import stderr_echo

    stderr_echo(f"warning: {message}")


class _TokenDocuments(Sequence[Document]):
    """Placeholder document table for :meth:`SparseRetriever.index_tokens` without documents: ids "0", "1", ..."""

    def __init__(self, n: int) -> None:
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return Document(id=str(i), text="")


class _StoredDocuments(Sequence[Document]):
    """The document table of a stored index, read on demand: ``documents.jsonl`` memory-mapped, with the offset of
    each line (``document_offsets.npy``, written with the index), so that opening an index of millions of passages
    neither parses them nor holds them (a search's results parse only the rows they name)."""

    def __init__(self, file: Any, offsets: np.ndarray) -> None:
        import mmap

        self._file = file
        self._offsets = offsets
        with open(file, "rb") as fh:
            size = fh.seek(0, 2)
            self._data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        import json

        from odqa_core import IndexFormatError

        line = self._data[int(self._offsets[i]) : int(self._offsets[i + 1])]
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise TypeError("not a JSON object with a 'text' string")
            if not isinstance(row.get("metadata") or {}, dict):
                raise TypeError("'metadata' is not an object")
            return Document.from_dict(row)
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexFormatError(
                f"{self._file} line {i + 1}: not a stored document ({exc.__class__.__name__}: {exc})"
            ) from None

    def __iter__(self) -> Iterator[Document]:
        return (self[i] for i in range(len(self)))


def _line_offsets(file: Any, chunk: int = 1 << 26) -> np.ndarray:
    """The byte offset of every line start of a file, and its size last (int64), read in chunks."""
    ends = [np.zeros(1, np.int64)]
    with open(file, "rb") as fh:
        start = 0
        while block := fh.read(chunk):
            ends.append(np.flatnonzero(np.frombuffer(block, np.uint8) == 10).astype(np.int64) + start + 1)
            start += len(block)
    offsets = np.concatenate(ends)
    if offsets[-1] != start:  # a last line without its newline
        offsets = np.append(offsets, start)
    return offsets


class ShardStatistics:
    """Corpus statistics of a sharded build: one shard's (the map) or the whole corpus's (the reduce)."""

    def __init__(
        self,
        vocabulary: list[Any],
        doc_freqs: np.ndarray,
        n_docs: int,
        total_length: int,
        term_ids: dict[Any, int] | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.doc_freqs = doc_freqs
        self.n_docs = n_docs
        self.total_length = total_length
        self.term_ids = term_ids


class SparseRetriever(Retriever):
    """Shared machinery of the sparse retrievers (not registered itself)."""

    name: ClassVar[str] = ""
    runtime_options: ClassVar[frozenset[str]] = frozenset({"threads"})
    #: 2: the arrays the kernels read (impact postings, bounds, bitmaps), memory-mapped at load, and the term-major
    #: counts, mapped only when the sparse embedding is asked for. 1: the document-major counts, from which
    #: every load recomputed the impacts.
    format_version: ClassVar[int] = 2
    #: Store versions :meth:`load` reads (version 1 by recomputing its impacts, as the versions that wrote it did).
    readable_format_versions: ClassVar[tuple[int, ...]] = (1, 2)

    @classmethod
    def sample_defaults(cls) -> dict[str, Any]:
        # Korean particles attach to the word they follow ("훈민정음이" never matches "훈민정음이라는"): on the
        # bundled sample, character bigrams rank the gold document first for 0.991 of the questions against 0.879 with
        # whole words (benchmarks/RESULTS.md §8), as on KorQuAD (§2). The user's own corpora keep ``regex``.
        return {"analyzer": "char-ngram"}

    def __init__(
        self,
        *,
        analyzer: str = "regex",
        analyzer_options: dict[str, Any] | None = None,
        include_title: bool = True,
        threads: int = 1,
    ) -> None:
        if not isinstance(analyzer, str) or not analyzer:
            raise UsageError(f"retriever {self.name!r}: option 'analyzer' must be an analyzer name, got {analyzer!r}")
        if analyzer_options is None:
            analyzer_options = {}
        if not isinstance(analyzer_options, dict):
            raise UsageError(
                f"retriever {self.name!r}: option 'analyzer_options' must be a table of options, "
                f"got {analyzer_options!r}"
            )
        options.boolean(f"retriever {self.name!r}", "include_title", include_title)
        options.positive_int(f"retriever {self.name!r}", "threads", threads)
        self.analyzer = analyzer
        self.analyzer_options = dict(analyzer_options)
        self.include_title = include_title
        self.threads = threads
        # Through the registry, so that any installed analyzer plugin works and names are checked now.
        self._analyzer: Analyzer = plugins.create("analyzer", analyzer, self.analyzer_options)
        # The analyzer's full config (defaults filled in), so that config() and the manifest pin it exactly.
        self.analyzer_options = self._analyzer.config()
        self._documents: Sequence[Document] = []
        self._embedding: SparseEmbedding | None = None
        self._impacts: Impacts | None = None
        self._warm = False
        #: (n_docs, free scratch array sets) reused by the search kernel; see ``_kernel``.
        self._scratch_pool: tuple[int, list[tuple[np.ndarray, ...]]] | None = None
        #: Questions searched or scored so far whose analysis gave no token (they score 0 everywhere); the first
        #: search that meets some warns once.
        self.empty_queries = 0

    # ------------------------------------------------------------------------------------------ subclass hooks

    def _weigh(self, embedding: SparseEmbedding, statistics: CorpusStatistics | None = None) -> Impacts:
        raise NotImplementedError

    def _query_weights(self, ptr: np.ndarray, terms: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Scoring parameters as resolved (defaults filled in); stored in the manifest."""
        return {}

    def resolved_config(self) -> dict[str, Any]:
        """The options with the scoring parameters as used (``k1``, ``b``, ... from the variant when unset)."""
        return {**self.config(), **self.params()}

    # ---------------------------------------------------------------------------------------------- accessors

    @property
    def documents(self) -> Sequence[Document]:
        return self._documents

    @property
    def text_analyzer(self) -> Analyzer:
        """The analyzer instance (``analyzer`` is its registered name)."""
        return self._analyzer

    def get_sparse_embedding(self) -> SparseEmbedding:
        """The corpus's sparse embedding (vocabulary, counts) that the scores are computed from."""
        if self._embedding is None:
            raise UsageError(f"retriever {self.name!r} has no index yet; call index() first")
        return self._embedding

    @property
    def sparse_embedding(self) -> SparseEmbedding:
        return self.get_sparse_embedding()

    def warm_up(self) -> None:
        """Load the analyzer and compile (or load from numba's cache) the kernels."""
        self._analyzer.warm_up()
        self._warm_kernels()

    def _warm_kernels(self) -> None:
        if self._warm:
            return
        # A tiny search with the production dtypes compiles the kernels once (or loads them from numba's cache).
        from odqa_sparse.weighting import Impacts

        imp = Impacts(
            np.array([0, 2, 3], np.int64),
            np.array([0, 1, 1], np.int32),
            np.array([1.0, 2.0, 1.0], np.float32),
            np.array([2.0, 1.0], np.float32),
            np.array([1.0, 1.0], np.float32),
            np.zeros(2),
            2,
            # No bitmap, given rather than built: building them would load one more kernel for nothing.
            np.full(2, -1, np.int32),
            np.zeros(0, np.uint64),
            np.zeros(0, np.int32),
        )
        query = (np.array([0, 2], np.int64), np.array([0, 1], np.int32), np.ones(2, np.float32))
        const = np.ones(1, np.float32)
        self._kernel(imp, *query, const, 1, True, np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32))
        self._score_kernel(imp, *query, const, None, np.zeros((1, 2), np.float32))
        self._score_kernel(imp, *query, const, np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32))
        self._warm = True

    # ------------------------------------------------------------------------------------------------ indexing

    def _text(self, doc: Document) -> str:
        return f"{doc.title}\n{doc.text}" if self.include_title and doc.title else doc.text

    def index(self, documents: Sequence[Document]) -> None:
        documents = list(documents)
        embedding = self._embed(documents)
        self._report_empty_documents(embedding, documents)
        self._set_index(embedding, documents)

    def _embed(self, documents: Sequence[Document]) -> SparseEmbedding:
        """Tokenize and count ``documents`` (not empty)."""
        if not documents:
            raise DataError("cannot index an empty corpus")
        self.warm_up()
        analyzer = self._analyzer
        bar = _progress(len(documents), f"{self.name}: tokenizing + counting", "doc")

        def token_lists() -> Iterator[list[str]]:
            for start in range(0, len(documents), DOC_CHUNK):
                batch = documents[start : start + DOC_CHUNK]
                yield from analyzer.tokenize_many([self._text(d) for d in batch])

        from odqa_sparse.embedding import SparseEmbedding

        with bar:
            return SparseEmbedding.build(token_lists(), progress=bar.update)

    # ------------------------------------------------------------------- sharded indexes (odqa_core.shards)

    def shard_statistics(self, documents: Sequence[Document]) -> ShardStatistics:
        """The map step of a sharded build: this shard's vocabulary (first-occurrence order), document
        frequencies, documents and tokens."""
        embedding = self._embed(list(documents))
        # kept for index_shard of the same documents on this instance (a sharded build in one process): the shard
        # is analysed once
        self._shard_embedding = (documents, embedding)
        return ShardStatistics(
            list(embedding.vocabulary),
            np.asarray(embedding.doc_freqs, np.int64),
            embedding.n_docs,
            int(embedding.doc_lengths.sum()),
        )

    def merge_shard_statistics(self, parts: Sequence[ShardStatistics]) -> ShardStatistics:
        """The reduce step: the corpus's vocabulary (terms in order of first occurrence over the shards in order,
        which is the single index's term order) and its document frequencies, documents and tokens."""
        term_ids: dict[Any, int] = {}
        for part in parts:
            for term in part.vocabulary:
                term_ids.setdefault(term, len(term_ids))
        doc_freqs = np.zeros(len(term_ids), np.int64)
        for part in parts:
            rows = np.fromiter(map(term_ids.__getitem__, part.vocabulary), np.int64, len(part.vocabulary))
            doc_freqs[rows] += part.doc_freqs
        return ShardStatistics(
            list(term_ids), doc_freqs, sum(p.n_docs for p in parts), sum(p.total_length for p in parts), term_ids
        )

    @staticmethod
    def statistics_summary(statistics: ShardStatistics) -> dict[str, Any]:
        return {
            "n_docs": statistics.n_docs,
            "n_terms": len(statistics.vocabulary),
            "total_length": statistics.total_length,
        }

    def index_shard(self, documents: Sequence[Document], statistics: ShardStatistics) -> None:
        """Index one shard over the corpus's vocabulary (term ids and per-term arrays of the whole corpus, so that
        every shard analyses a question into the same query as the single index) and weigh it with the corpus's
        statistics: its impacts, idfs and query weights are the single index's, bit for bit."""
        from odqa_sparse.embedding import SparseEmbedding
        from odqa_sparse.weighting import CorpusStatistics

        kept = getattr(self, "_shard_embedding", None)
        self._shard_embedding = None
        same = kept is not None and kept[0] is documents
        documents = list(documents)
        local = kept[1] if same else self._embed(documents)
        term_ids = statistics.term_ids or {t: i for i, t in enumerate(statistics.vocabulary)}
        to_global = np.fromiter(map(term_ids.__getitem__, local.vocabulary), np.int32, local.n_terms)
        import scipy.sparse as sp

        counts = local.counts
        remapped = sp.csr_array(
            (counts.data, to_global[counts.indices], counts.indptr), shape=(local.n_docs, len(statistics.vocabulary))
        )
        remapped.sort_indices()  # the single index's term order within each document (TF-IDF norms sum in it)
        embedding = SparseEmbedding(statistics.vocabulary, remapped, local.doc_lengths, term_ids)
        self._report_empty_documents(embedding, documents)
        corpus = CorpusStatistics(statistics.n_docs, statistics.total_length, statistics.doc_freqs)
        self._impacts = self._weigh(embedding, corpus)
        embedding.drop_counts()
        self._embedding = embedding
        self._documents = documents

    def prepare_queries(self, queries: Sequence[str]) -> PreparedQueries:
        """The questions as weighted query arrays, made once for every shard of a sharded index: the shards share
        the corpus's vocabulary (term ids) and idfs, so every shard would analyse and weigh them the same."""
        self._check_list(queries, "search")
        self._check_indexed()
        assert self._embedding is not None
        parts = []
        for token_lists in self._analyzed(queries):
            ptr, terms, counts = self._embedding.query_arrays(token_lists)
            weights, const = self._query_weights(ptr, terms, counts)
            parts.append((ptr, terms, weights, const))
        if len(parts) == 1:
            return PreparedQueries(*parts[0])
        if not parts:
            return PreparedQueries(
                np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.float32)
            )
        starts = np.cumsum([0] + [len(p[1]) for p in parts[:-1]])
        ptr = np.concatenate([parts[0][0][:1]] + [p[0][1:] + start for p, start in zip(parts, starts)])
        return PreparedQueries(
            ptr,
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
        )

    def search_prepared(
        self, prepared: PreparedQueries, k: int, floor: np.ndarray | None = None
    ) -> tuple[RankedResults, np.ndarray]:
        """Top k of questions from :meth:`prepare_queries` before their per-question constant (BM25+'s delta
        part), and the constants: a sharded index merges the shards' rankings first and adds them after, as a
        single index does.

        ``floor`` (one score per question), when given, is the k-th best score of the shards searched before this
        one: question q's row then holds only the documents scoring above ``floor[q]``, the rest index -1 and score
        -inf (see :func:`odqa_sparse.kernels.search_batch_scratch`; a floor <= 0 is none). Pruning against it
        makes a later shard search about as little as the single index does.
        """
        k = self._check_k(k)
        ptr, terms, weights, constants = prepared
        n_queries = len(ptr) - 1
        if floor is not None:
            floor = np.require(floor, np.float64, ["C", "W"])
            if floor.shape != (n_queries,):
                raise UsageError(f"floor must hold one score per question ({n_queries}), got shape {floor.shape}")
        out_i = np.zeros((n_queries, k), np.int64)
        out_s = np.zeros((n_queries, k), np.float32)
        if n_queries and k:
            self._warm_kernels()
            no_const = np.zeros(n_queries, np.float32)
            bar = _progress(n_queries, f"{self.name}: searching", "query") if n_queries > QUERY_CHUNK else None
            for a in range(0, n_queries, QUERY_CHUNK):
                b = min(a + QUERY_CHUNK, n_queries)
                rows = slice(a, b)
                self._run(
                    ptr[a : b + 1],
                    terms,
                    weights,
                    no_const[rows],
                    k,
                    True,
                    out_i[rows],
                    out_s[rows],
                    None if floor is None else floor[rows],
                )
                if bar is not None:
                    bar.update(b - a)
            if bar is not None:
                bar.close()
        return RankedResults(out_i, out_s, self._documents), constants

    def index_tokens(self, token_lists: Iterable[Sequence[str]], documents: Sequence[Document] | None = None) -> None:
        """Index pre-tokenized documents (one token list per document), bypassing the analyzer.

        ``documents`` is the document table results point into; without it, placeholders with ids "0", "1", ...
        """
        from odqa_sparse.embedding import SparseEmbedding

        def checked() -> Iterator[Sequence[str]]:
            for tokens in token_lists:
                if isinstance(tokens, str):
                    raise UsageError("index_tokens() takes one list of tokens per document, got a string")
                yield tokens

        self._warm_kernels()
        total = len(token_lists) if hasattr(token_lists, "__len__") else None
        with _progress(total, f"{self.name}: counting", "doc") as bar:
            embedding = SparseEmbedding.build(checked(), progress=bar.update)
        if embedding.n_docs == 0:
            raise DataError("cannot index an empty corpus")
        if documents is not None:
            documents = list(documents)
            if len(documents) != embedding.n_docs:
                raise UsageError(f"{embedding.n_docs} token lists but {len(documents)} documents")
        table = documents if documents is not None else _TokenDocuments(embedding.n_docs)
        self._report_empty_documents(embedding, table)
        self._set_index(embedding, table)

    def _report_empty_documents(self, embedding: SparseEmbedding, documents: Sequence[Document]) -> None:
        """One warning line when documents have no token (an analyzer that drops everything they hold, or a
        text of punctuation only): they stay in the table but no query can ever find them."""
        empty = np.flatnonzero(embedding.doc_lengths == 0)
        if len(empty):
            _warn(
                f"{self.name}: {len(empty)} of {embedding.n_docs} documents have no token after analysis "
                f"(first: {documents[int(empty[0])].id!r}); no question can find them"
            )

    def _set_index(self, embedding: SparseEmbedding, documents: Sequence[Document]) -> None:
        self._impacts = self._weigh(embedding)
        # The term-major counts share their offsets and doc ids with the impacts (4 more bytes a posting, kept to
        # save the index); the document-major matrix (8 bytes a posting) is rebuilt only if someone asks for it.
        embedding.drop_counts()
        self._embedding = embedding
        self._documents = documents

    # ----------------------------------------------------------------------------------------------- searching

    def _check_indexed(self) -> None:
        if self._embedding is None:
            raise UsageError(f"retriever {self.name!r} has no index yet; call index() or load() first")

    def _check_k(self, k: int) -> int:
        self._check_indexed()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise UsageError(f"k must be an integer >= 0, got {k!r}")
        return min(int(k), len(self._documents))

    @staticmethod
    def _check_list(queries: Sequence[Any], method: str) -> None:
        if isinstance(queries, str):
            raise UsageError(f"{method}() takes a list of queries, got a single string")

    @staticmethod
    def _chunks(token_lists: Sequence[Sequence[str]]) -> Iterator[Sequence[Sequence[str]]]:
        return (token_lists[s : s + QUERY_CHUNK] for s in range(0, len(token_lists), QUERY_CHUNK))

    def _analyzed(self, queries: Sequence[str]) -> Iterator[list[list[str]]]:
        """The queries' token lists, ``QUERY_CHUNK`` queries per analyzer call; counts the queries left without a
        token (:attr:`empty_queries`) and warns the first time there are some."""
        analyzer = self._analyzer
        if len(queries):
            analyzer.warm_up()
        empty, first = 0, None
        for start in range(0, len(queries), QUERY_CHUNK):
            token_lists = analyzer.tokenize_many(list(queries[start : start + QUERY_CHUNK]))
            missing = sum(1 for tokens in token_lists if not tokens)
            if missing:
                empty += missing
                if first is None:
                    first = queries[start + next(i for i, tokens in enumerate(token_lists) if not tokens)][:80]
            yield token_lists
        if empty:
            if not self.empty_queries:  # once per retriever: a fuser scores the same questions block by block
                _warn(
                    f"{self.name}: {empty} of {len(queries)} questions have no token after analysis (first: "
                    f"{first!r}); they score 0 against every document (not reported again by this retriever)"
                )
            self.empty_queries += empty

    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        self._check_list(queries, "search")
        k = self._check_k(k)
        return self._search(self._analyzed(queries), len(queries), k)

    def search_tokens(self, token_lists: Sequence[Sequence[str]], k: int) -> RankedResults:
        """Search with pre-tokenized queries (one token list per query)."""
        k = self._check_k(k)
        return self._search(self._chunks(token_lists), len(token_lists), k)

    def _search(
        self,
        chunks: Iterable[Sequence[Sequence[str]]],
        n_queries: int,
        k: int,
        prune: bool = True,
    ):
        """Top k of the queries of ``chunks``."""
        out_i = np.zeros((n_queries, k), np.int64)
        out_s = np.zeros((n_queries, k), np.float32)
        if n_queries == 0 or k == 0 or self._embedding is None:
            return RankedResults(out_i, out_s, self._documents)
        self._warm_kernels()
        bar = _progress(n_queries, f"{self.name}: searching", "query") if n_queries > QUERY_CHUNK else None
        start = 0
        for token_lists in chunks:
            stop = start + len(token_lists)
            ptr, terms, counts = self._embedding.query_arrays(token_lists)
            weights, const = self._query_weights(ptr, terms, counts)
            if start == 0 and stop == n_queries:  # one chunk (the common case): no views to make
                self._run(ptr, terms, weights, const, k, prune, out_i, out_s)
            else:
                self._run(ptr, terms, weights, const, k, prune, out_i[start:stop], out_s[start:stop])
            if bar is not None:
                bar.update(stop - start)
            start = stop
        if bar is not None:
            bar.close()
        return RankedResults(out_i, out_s, self._documents)

    def _pooled_kernel(self, imp: Impacts, ptr, terms, weights, const, k, prune, out_i, out_s, floor=None) -> None:
        """:meth:`_kernel` with reused scratch arrays: a one-question search on a large corpus would otherwise
        mostly pay for allocating and faulting in its n_docs-sized accumulator. One set per concurrent call, taken
        from and given back to a pool (list pop/append are atomic), 17 bytes per document each."""
        from odqa_sparse import kernels

        pool = self._scratch_pool
        if pool is None or pool[0] != imp.n_docs:
            pool = self._scratch_pool = (imp.n_docs, [])
        free = pool[1]
        scratch = free.pop() if free else kernels.new_scratch(imp.n_docs)
        self._kernel(imp, ptr, terms, weights, const, k, prune, out_i, out_s, scratch, floor)
        # Only a call that returned leaves the scratch clean; one that raised drops its set.
        free.append(scratch)

    @staticmethod
    def _kernel(imp: Impacts, ptr, terms, weights, const, k, prune, out_i, out_s, scratch=None, floor=None) -> None:
        from odqa_sparse import kernels

        if scratch is None:
            scratch = kernels.new_scratch(imp.n_docs)
        if floor is None:
            floor = _NO_FLOOR
        kernels.search_batch_scratch(
            imp.t_ptr,
            imp.t_docs,
            imp.t_imp,
            imp.t_max,
            imp.t_min,
            imp.b_slot,
            imp.b_words,
            imp.b_rank,
            imp.t_order,
            imp.n_docs,
            ptr,
            terms,
            weights,
            const,
            k,
            prune,
            floor,
            out_i,
            out_s,
            *scratch,
        )

    def _run(self, ptr, terms, weights, const, k, prune, out_i, out_s, floor=None) -> None:
        imp = self._impacts
        n_q = len(ptr) - 1
        threads = min(self.threads, n_q)
        if threads <= 1:
            self._pooled_kernel(imp, ptr, terms, weights, const, k, prune, out_i, out_s, floor)
            return
        from concurrent.futures import ThreadPoolExecutor

        bounds = np.linspace(0, n_q, threads + 1).astype(int)
        with ThreadPoolExecutor(threads) as pool:
            futures = [
                pool.submit(
                    self._pooled_kernel,
                    imp,
                    ptr[a : b + 1],
                    terms,
                    weights,
                    const[a:b],
                    k,
                    prune,
                    out_i[a:b],
                    out_s[a:b],
                    None if floor is None else floor[a:b],
                )
                for a, b in zip(bounds[:-1], bounds[1:])
            ]
            for f in futures:
                f.result()

    def search_exhaustive(self, token_lists: Sequence[Sequence[str]], k: int) -> RankedResults:
        """Like :meth:`search_tokens` but scoring every matching document (no pruning); for tests and audits."""
        k = self._check_k(k)
        return self._search(self._chunks(token_lists), len(token_lists), k, prune=False)

    # ------------------------------------------------------------------------------- scoring given documents

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        """Every document's score of each query (float32 ``(len(queries), len(documents))``), as search gives it."""
        self._check_list(queries, "score_all")
        self._check_indexed()
        return self._score(self._analyzed(queries), len(queries), None)

    def score(self, queries: Sequence[str], candidates: np.ndarray) -> np.ndarray:
        """Scores of document rows ``candidates[i]`` (``(len(queries), C)``) of query i, as search gives them."""
        self._check_list(queries, "score")
        candidates = self._checked_candidates(candidates, len(queries))
        return self._score(self._analyzed(queries), len(queries), candidates)

    def score_tokens_all(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """:meth:`score_all` of pre-tokenized queries (one token list per query)."""
        self._check_list(token_lists, "score_tokens_all")
        self._check_indexed()
        return self._score(self._chunks(token_lists), len(token_lists), None)

    def score_tokens(self, token_lists: Sequence[Sequence[str]], candidates: np.ndarray) -> np.ndarray:
        """:meth:`score` of pre-tokenized queries (one token list per query)."""
        self._check_list(token_lists, "score_tokens")
        candidates = self._checked_candidates(candidates, len(token_lists))
        return self._score(self._chunks(token_lists), len(token_lists), candidates)

    def _checked_candidates(self, candidates: Any, n_queries: int) -> np.ndarray:
        from odqa_core.interfaces import check_candidates

        self._check_indexed()
        checked = check_candidates(candidates, n_queries, len(self._documents), f"retriever {self.name!r}")
        return np.ascontiguousarray(checked)

    def _score(
        self, chunks: Iterable[Sequence[Sequence[str]]], n_queries: int, candidates: np.ndarray | None
    ) -> np.ndarray:
        """Scores of every document (``candidates`` None) or of the candidate rows, ``QUERY_CHUNK`` queries a call."""
        out = np.empty((n_queries, len(self._documents)) if candidates is None else candidates.shape, np.float32)
        if out.size == 0:
            return out
        self._warm_kernels()
        start = 0
        for token_lists in chunks:
            stop = start + len(token_lists)
            ptr, terms, counts = self._embedding.query_arrays(token_lists)
            weights, const = self._query_weights(ptr, terms, counts)
            block = None if candidates is None else candidates[start:stop]
            self._score_kernel(self._impacts, ptr, terms, weights, const, block, out[start:stop])
            start = stop
        return out

    @staticmethod
    def _score_kernel(imp: Impacts, ptr, terms, weights, const, candidates, out) -> None:
        from odqa_sparse import kernels

        args = (imp.t_ptr, imp.t_docs, imp.t_imp, imp.t_order, imp.n_docs, ptr, terms, weights, const)
        if candidates is None:
            kernels.score_all_batch(*args, out)
        else:
            kernels.score_candidates_batch(*args, candidates, out)

    # --------------------------------------------------------------------------------------------- persistence

    def save_state(self, writer: StoreWriter) -> None:
        embedding = self.get_sparse_embedding()
        from odqa_core.storage import DOCUMENTS

        table = writer.root / DOCUMENTS
        if table.is_file():  # save() writes the document table first: where each line starts, to read it lazily
            writer.save_array("document_offsets", _line_offsets(table))
        writer.save_json("vocabulary", embedding.vocabulary)
        writer.save_array("doc_lengths", embedding.doc_lengths)
        writer.save_array("t_counts", embedding.postings()[2])
        self._impacts.save(writer)  # type: ignore[union-attr]
        writer.params.update(
            {
                "analyzer": {"name": self.analyzer, "options": self._analyzer.config()},
                "n_docs": embedding.n_docs,
                # documents without a token after analysis: in the table, but never found
                "n_empty_docs": int(np.count_nonzero(embedding.doc_lengths == 0)),
                "n_terms": embedding.n_terms,
                "scoring": self.params(),
            }
        )

    @classmethod
    def load(cls, path: Any, options: Any = None) -> SparseRetriever:
        """Open a stored index (any of :attr:`readable_format_versions`); ``options`` override its
        :attr:`runtime_options`."""
        from odqa_core import IndexFormatError
        from odqa_core.storage import open_store

        reader = open_store(path, kind=cls.kind, name=cls.name)
        version = reader.manifest.get("format_version")
        if version not in cls.readable_format_versions:
            raise IndexFormatError(
                f"{reader.root}: {cls.name} index format version {version!r}, this version reads "
                f"{' or '.join(map(str, cls.readable_format_versions))}; rebuild it with 'odqa index'"
            )
        if options:
            fixed = sorted(set(options) - cls.runtime_options)
            if fixed:
                can = ", ".join(sorted(cls.runtime_options))
                raise UsageError(
                    f"option {', '.join(map(repr, fixed))} of retriever {cls.name!r} is fixed when the index is "
                    f"built; rebuild the index to change it (options that can change at search time: {can})"
                )
            reader.manifest["config"] = {**reader.config, **options}
        return cls.load_state(reader, cls._stored_documents(reader))

    @staticmethod
    def _stored_documents(reader: StoreReader) -> Sequence[Document]:
        """The store's document table: read on demand when the store has its line offsets, else read now."""
        from odqa_core import IndexFormatError
        from odqa_core.storage import DOCUMENTS

        if "document_offsets.npy" not in reader.manifest.get("files", {}):
            return reader.load_documents()
        offsets = np.asarray(reader.load_array("document_offsets", mmap=True))
        file = reader.path(DOCUMENTS)
        if (
            offsets.ndim != 1
            or offsets.dtype != np.int64
            or len(offsets) < 1
            or offsets[0] != 0
            or offsets[-1] != file.stat().st_size
            or np.any(np.diff(offsets) <= 0)
        ):
            raise IndexFormatError(
                f"{reader.root}: document_offsets.npy does not match {DOCUMENTS}; rebuild the index"
            )
        return _StoredDocuments(file, offsets)

    @classmethod
    def load_state(cls, reader: StoreReader, documents: Sequence[Document]) -> SparseRetriever:
        from odqa_core import IndexFormatError
        from odqa_sparse.embedding import SparseEmbedding, load_vocabulary
        from odqa_sparse.weighting import Impacts

        config = reader.config
        analyzer = reader.params.get("analyzer")
        if isinstance(analyzer, dict) and isinstance(analyzer.get("options"), dict):
            # The analyzer's full config (defaults included) rebuilds exactly the analyzer the index was made with.
            config["analyzer"] = analyzer.get("name", config.get("analyzer", "regex"))
            config["analyzer_options"] = analyzer["options"]
        retriever = cls.from_options(config)
        if reader.manifest.get("format_version") == 1:  # counts only: weigh them now, as version 1 did
            embedding = SparseEmbedding.load(reader)
            if embedding.n_docs != len(documents):
                raise IndexFormatError(
                    f"{reader.root}: {embedding.n_docs} indexed documents but {len(documents)} in the document table"
                )
            retriever._set_index(embedding, documents)
            return retriever  # type: ignore[return-value]
        stored = reader.params.get("scoring")
        if stored is not None and stored != retriever.params():
            raise IndexFormatError(
                f"{reader.root}: the manifest's scoring parameters {stored} differ from its options' "
                f"{retriever.params()}; rebuild the index"
            )
        vocabulary, term_ids = load_vocabulary(reader, "vocabulary")
        doc_lengths = np.asarray(reader.load_array("doc_lengths", mmap=True))
        if doc_lengths.ndim != 1 or doc_lengths.dtype != np.int64 or len(doc_lengths) != len(documents):
            raise IndexFormatError(
                f"{reader.root}: doc_lengths.npy holds {doc_lengths.dtype}{list(doc_lengths.shape)}, expected "
                f"{len(documents)} int64 document lengths (one per document of the table); rebuild the index"
            )
        impacts = Impacts.load(reader, len(documents), len(vocabulary))
        t_counts = np.asarray(reader.load_array("t_counts", mmap=True))
        if t_counts.ndim != 1 or t_counts.dtype != np.int32 or len(t_counts) != len(impacts.t_docs):
            raise IndexFormatError(
                f"{reader.root}: t_counts.npy holds {t_counts.dtype}{list(t_counts.shape)}, expected "
                f"{len(impacts.t_docs)} int32 counts; rebuild the index"
            )
        postings = (impacts.t_ptr, impacts.t_docs, t_counts)
        retriever._impacts = impacts
        retriever._embedding = SparseEmbedding.from_postings(vocabulary, postings, doc_lengths, term_ids)
        retriever._documents = documents
        return retriever  # type: ignore[return-value]


class BM25Retriever(SparseRetriever):
    """BM25 over the sparse embedding: ``variant`` okapi (rank_bm25.BM25Okapi), lucene, bm25+ or bm25l.

    ``k1``, ``b``, ``delta`` default per variant (okapi/bm25+/bm25l: k1=1.5, b=0.75; lucene: k1=0.9, b=0.4;
    delta: bm25+ 1, bm25l 0.5). ``epsilon`` is okapi's floor for negative idfs, as a fraction of the mean idf.
    """

    name = "bm25"
    VARIANTS: ClassVar[tuple[str, ...]] = ("okapi", "lucene", "bm25+", "bm25l")

    def __init__(
        self,
        *,
        variant: str = "okapi",
        k1: float | None = None,
        b: float | None = None,
        delta: float | None = None,
        epsilon: float = 0.25,
        analyzer: str = "regex",
        analyzer_options: dict[str, Any] | None = None,
        include_title: bool = True,
        threads: int = 1,
    ) -> None:
        owner = f"retriever {self.name!r}"
        options.choice(owner, "variant", variant, self.VARIANTS)
        # k1, b and delta left unset (None) take the variant's defaults; finite, since an infinite k1 makes every
        # score NaN. The values are stored as given, so that config() and index manifests keep their spelling.
        for name, value in (("k1", k1), ("delta", delta)):
            if value is not None:
                options.number(owner, name, value, minimum=0)
        if b is not None:
            options.probability(owner, "b", b)
        options.number(owner, "epsilon", epsilon, minimum=0)
        self.variant = variant
        self.k1 = k1
        self.b = b
        self.delta = delta
        self.epsilon = epsilon
        super().__init__(
            analyzer=analyzer, analyzer_options=analyzer_options, include_title=include_title, threads=threads
        )

    def params(self) -> dict[str, Any]:
        from odqa_sparse.weighting import BM25_DEFAULTS

        k1, b, delta = BM25_DEFAULTS[self.variant]
        return {
            "variant": self.variant,
            "k1": float(k1 if self.k1 is None else self.k1),
            "b": float(b if self.b is None else self.b),
            "delta": float(delta if self.delta is None else self.delta),
            "epsilon": float(self.epsilon),
        }

    def _weigh(self, embedding: SparseEmbedding, statistics: CorpusStatistics | None = None) -> Impacts:
        from odqa_sparse.weighting import bm25_impacts

        p = self.params()
        return bm25_impacts(embedding, self.variant, p["k1"], p["b"], p["delta"], p["epsilon"], statistics)

    def _query_weights(self, ptr, terms, counts):
        from odqa_sparse.weighting import BM25_DEFAULTS, bm25_query_weights

        # delta as params() resolves it, without building params()'s dict on every (one-question) search.
        delta = float(BM25_DEFAULTS[self.variant][2] if self.delta is None else self.delta)
        return bm25_query_weights(self._impacts, self.variant, delta, ptr, terms, counts)


class TfidfRetriever(SparseRetriever):
    """TF-IDF cosine similarity, as scikit-learn's ``TfidfVectorizer`` defaults (smooth idf, l2 norm)."""

    name = "tfidf"

    def __init__(
        self,
        *,
        sublinear_tf: bool = False,
        analyzer: str = "regex",
        analyzer_options: dict[str, Any] | None = None,
        include_title: bool = True,
        threads: int = 1,
    ) -> None:
        options.boolean(f"retriever {self.name!r}", "sublinear_tf", sublinear_tf)
        self.sublinear_tf = sublinear_tf
        super().__init__(
            analyzer=analyzer, analyzer_options=analyzer_options, include_title=include_title, threads=threads
        )

    def params(self) -> dict[str, Any]:
        return {"sublinear_tf": self.sublinear_tf}

    def _weigh(self, embedding: SparseEmbedding, statistics: CorpusStatistics | None = None) -> Impacts:
        from odqa_sparse.weighting import tfidf_impacts

        return tfidf_impacts(embedding, self.sublinear_tf, statistics)

    def _query_weights(self, ptr, terms, counts):
        from odqa_sparse.weighting import tfidf_query_weights

        return tfidf_query_weights(self._impacts, self.sublinear_tf, ptr, terms, counts)
