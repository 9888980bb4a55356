"""The ``dpr`` retriever: a bi-encoder (odqa checkpoint or HuggingFace model) over a FAISS inner-product index.

This module imports numpy and odqa_core only; torch, transformers and faiss load in :meth:`DPRRetriever.warm_up`,
so registering the plugin (``odqa plugins``, ``odqa --help``) never imports them.

The index records the model it was built with (its source and a fingerprint of its files). Searching it with any
other model — retrained in place, or a different one passed as ``model`` — is refused, because query vectors from
one model are meaningless against passage vectors of another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from odqa_core import DataError, Document, RankedResults, Retriever, UsageError, options
from odqa_core.interfaces import check_candidates
from odqa_core.storage import StoreReader, StoreWriter

__all__ = ["DPRRetriever"]

#: Bytes of gathered passage vectors (``(block, C, dim)`` float32) that :meth:`DPRRetriever.score` and
#: :meth:`DPRRetriever.score_documents` hold at once.
GATHER_BYTES = 32 << 20


class DPRRetriever(Retriever):
    """Dense passage retrieval: ``score(q, p) = E_q(q) · E_p(p)``, searched with FAISS.

    ``model`` is a checkpoint from ``odqa train dpr`` or any HuggingFace encoder (local path or hub id; with
    ``HF_HUB_OFFLINE=1`` it must be in the local cache), or ``sample``: the bundled sample's demo model, trained on
    first use and cached (``odqa run`` uses it on the sample when no model is given). ``question_model`` adds a
    separate HuggingFace question encoder (DPR's two-tower checkpoints). ``index_type`` is ``flat`` (exact, the
    default), ``hnsw`` or ``ivf``.
    ``include_title``, ``query_max_length`` and ``passage_max_length`` default to what a checkpoint was trained
    with (else true, 64 and 256).

    ``precision`` is what the encoder computes in: ``auto`` (bf16 on a GPU that has it, else fp32), ``fp32``,
    ``bf16`` (autocast; on a CPU only one with bfloat16 instructions, AVX512-BF16 or AMX), ``fp16`` (CUDA) or
    ``int8`` (the encoder's Linear layers dynamically quantized to int8; CPU). The index records the precision
    its passages were encoded in, and a search with ``precision=auto`` encodes its questions in that same
    precision (falling back to fp32, with a warning, where this machine cannot run it); an explicit
    ``precision`` at search time overrides it. Vectors are float32 in every precision. ``compile`` (false by
    default; not with int8) runs the encoder through ``torch.compile``: its first batch compiles for tens of seconds,
    then on a CPU bf16 encodes 1.15-1.4× faster and fp32 no faster (benchmarks/RESULTS.md section 4), so it
    pays for a large corpus encoded in bf16, not for a few questions.

    As the shards of a sharded index (``odqa index --shards N``, :mod:`odqa_core.shards`) each shard encodes its
    passages and builds its own FAISS index; a search encodes the questions once (:meth:`prepare_queries`) and
    every shard searches those vectors (:meth:`search_prepared`), so the flat top k equals the single index's and
    an HNSW or IVF top k is the exact merge of the shards' approximate answers. Built with ``--engine ray``, each
    shard asks Ray for a whole GPU where the cluster has GPUs (:meth:`ray_resources`).
    """

    #: Used when neither the options nor the checkpoint say otherwise.
    DEFAULT_SETTINGS: ClassVar[dict[str, Any]] = {
        "include_title": True,
        "query_max_length": 64,
        "passage_max_length": 256,
    }

    name = "dpr"
    format_version = 1
    #: A bi-encoder scores any passage by encoding it: :meth:`score_documents` needs no index.
    scores_unindexed: ClassVar[bool] = True
    runtime_options: ClassVar[frozenset[str]] = frozenset(
        {"model", "question_model", "device", "precision", "compile", "batch_size", "ef_search", "nprobe"}
    )

    def __init__(
        self,
        *,
        model: str | None = None,
        question_model: str | None = None,
        pooling: str | None = None,
        include_title: bool | None = None,
        query_max_length: int | None = None,
        passage_max_length: int | None = None,
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "auto",
        compile: bool = False,
        index_type: str = "flat",
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
    ) -> None:
        from odqa_transformers.hf import DEVICES

        from odqa_dense.encoder import ENCODE_PRECISIONS, check_pooling
        from odqa_dense.vectors import INDEX_TYPES

        owner = f"retriever {self.name!r}"
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise UsageError(f"{owner}: option 'model' must be a model path or HuggingFace id, got {model!r}")
        if pooling is not None:
            check_pooling(pooling)
        if include_title is not None:
            options.boolean(owner, "include_title", include_title)
        for opt, value in (("query_max_length", query_max_length), ("passage_max_length", passage_max_length)):
            if value is not None:
                options.positive_int(owner, opt, value)
        for opt, value in (
            ("batch_size", batch_size),
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
            ("nprobe", nprobe),
        ):
            options.positive_int(owner, opt, value)
        if nlist is not None:
            options.positive_int(owner, "nlist", nlist)
        options.choice(owner, "device", device, DEVICES)
        options.choice(owner, "precision", precision, ENCODE_PRECISIONS)
        options.boolean(owner, "compile", compile)
        if compile and precision == "int8":
            raise UsageError(f"{owner}: option 'compile' applies to fp32 and bf16 encoding, not to precision int8")
        options.choice(owner, "index_type", index_type, INDEX_TYPES)
        self.model = model
        self.question_model = question_model
        self.pooling = pooling
        self.include_title = include_title
        self.query_max_length = query_max_length
        self.passage_max_length = passage_max_length
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.compile = compile
        self.index_type = index_type
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.nlist = nlist
        self.nprobe = nprobe
        self._documents: list[Document] = []
        self._index: Any = None
        self._encoder: Any = None
        self._shared_with: DPRRetriever | None = None  # another shard's retriever whose encoder this one may use
        self._precision = "fp32"
        #: Set when loaded from an index: the fingerprint and dimension of the model it was built with.
        self._built_with: dict[str, Any] | None = None

    @classmethod
    def sample_defaults(cls) -> dict[str, Any]:
        return {"model": "sample"}

    # --- model --------------------------------------------------------------------------------------------------

    @property
    def encoder(self) -> Any:
        """The loaded :class:`~odqa_dense.encoder.BiEncoder` (loads it on first use)."""
        self.warm_up()
        return self._encoder

    def share_resources(self, other: DPRRetriever) -> None:
        """Use ``other``'s encoder where it is the same model loaded the same way (another shard of a sharded index
        in this process): one copy of the model instead of one per shard. Each retriever still checks the model
        against its own index at warm-up."""
        self._shared_with = other

    def _load_encoder(self, model: str) -> Any:
        from odqa_dense.encoder import BiEncoder

        other = self._shared_with
        same = other is not None and (other.model, other.question_model, other.pooling, other.device) == (
            self.model,
            self.question_model,
            self.pooling,
            self.device,
        )
        if same:
            other.warm_up()
            return other.encoder
        return BiEncoder.load(model, question_model=self.question_model, pooling=self.pooling)

    def warm_up(self) -> None:
        if self._encoder is not None:
            return
        if not self.model:
            raise UsageError(
                "retriever 'dpr' needs a model: -o model=PATH, or -o dpr.model=PATH beside other stages (a "
                "checkpoint from 'odqa train dpr', or a HuggingFace encoder directory or id)"
            )
        from odqa_transformers import hf

        from odqa_dense.encoder import resolve_encode_precision

        model = self.model
        if model == "sample":  # the bundled sample's demo model, trained on first use (odqa_dense.sample)
            from odqa_dense.sample import sample_dpr

            model = str(sample_dpr())
        device = hf.resolve_device(self.device)
        encoder = self._load_encoder(model)
        if self._built_with is not None:
            self._check_same_model(encoder)
        for name, default in self.DEFAULT_SETTINGS.items():
            if getattr(self, name) is None:
                setattr(self, name, encoder.settings.get(name, default))
        encoder.check_max_length(self.query_max_length)
        encoder.check_max_length(self.passage_max_length)
        built_precision = (self._built_with or {}).get("encoder_precision")
        if self.precision == "auto" and built_precision:
            self._precision = self._index_precision(built_precision, device)
        else:
            self._precision = resolve_encode_precision(self.precision, device)
        self._encoder = encoder.to(device)  # after the checks above (a shared encoder is on the device already)

    @staticmethod
    def _index_precision(built: str, device: Any) -> str:
        """The precision the index's passages were encoded in, for ``precision=auto`` at search time; fp32 (with
        a warning) where this device cannot run it (an index encoded in bf16 on a GPU, searched on a CPU without
        bfloat16 instructions)."""
        import warnings

        from odqa_dense.encoder import resolve_encode_precision

        try:
            return resolve_encode_precision(built, device)
        except UsageError as exc:
            warnings.warn(
                f"retriever 'dpr': the index was encoded in {built} but {exc}; encoding questions in fp32 "
                "(scores may differ slightly from the index's precision)",
                stacklevel=3,
            )
            return "fp32"

    @property
    def encode_precision(self) -> str:
        """The precision questions and passages are encoded in (resolved; loads the model)."""
        self.warm_up()
        return self._precision

    def _check_same_model(self, encoder: Any) -> None:
        built = self._built_with or {}
        if encoder.dim != built.get("dim"):
            raise DataError(
                f"model {self.model!r} gives {encoder.dim}-dim vectors but the index holds {built.get('dim')}-dim "
                "vectors; search it with the model it was built with"
            )
        if encoder.fingerprint != built.get("model_fingerprint"):
            raise DataError(
                f"the index was built with another model ({built.get('model_source')}, fingerprint "
                f"{str(built.get('model_fingerprint'))[:12]}) than {self.model!r} (fingerprint "
                f"{encoder.fingerprint[:12]}); rebuild the index or search it with the model it was built with"
            )

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Question vectors ``(len(queries), dim)`` float32, as :meth:`search` uses them."""
        return self.encoder.encode(
            list(queries),
            "question",
            self.query_max_length,
            batch_size=self.batch_size,
            precision=self._precision,
            compile=self.compile,
            desc="" if len(queries) < 10 * self.batch_size else "encode questions",
        )

    def encode_passages(self, documents: Sequence[Document]) -> np.ndarray:
        """Passage vectors ``(len(documents), dim)`` float32, as :meth:`index` stores them."""
        from odqa_dense.encoder import passage_texts

        return self.encoder.encode(
            passage_texts(documents, self.include_title),
            "passage",
            self.passage_max_length,
            batch_size=self.batch_size,
            precision=self._precision,
            compile=self.compile,
            desc="" if len(documents) < 10 * self.batch_size else "encode passages",
        )

    # --- index and search ---------------------------------------------------------------------------------------

    @property
    def documents(self) -> list[Document]:
        return self._documents

    @property
    def passage_vectors(self) -> np.ndarray:
        """The stored passage vectors, row ``i`` for ``documents[i]`` (fusers rescore with these)."""
        if self._index is None:
            raise UsageError("retriever 'dpr' has no index yet: call index() or load() first")
        return self._index.vectors

    def index(self, documents: Sequence[Document]) -> None:
        from odqa_dense.vectors import VectorIndex

        if not documents:
            raise DataError("cannot index an empty corpus")
        if self.model and Path(self.model).expanduser().exists():
            self.model = str(Path(self.model).expanduser().resolve())
        if self.question_model and Path(self.question_model).expanduser().exists():
            self.question_model = str(Path(self.question_model).expanduser().resolve())
        self.warm_up()
        vectors = self.encode_passages(documents)
        self._index = VectorIndex(
            vectors, self.index_type, hnsw_m=self.hnsw_m, ef_construction=self.ef_construction, nlist=self.nlist
        )
        self.nlist = self._index.nlist
        self._documents = list(documents)
        self._built_with = None

    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        if self._index is None:
            raise UsageError("retriever 'dpr' has no index yet: call index() or load() first")
        k = min(k, len(self._documents))
        if not queries:
            return RankedResults(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32), self._documents)
        indices, scores = self._index.search(
            self.encode_queries(queries), k, ef_search=self.ef_search, nprobe=self.nprobe
        )
        return RankedResults(indices, scores, self._documents)

    def search_vectors(self, vectors: np.ndarray, k: int) -> RankedResults:
        """Search with question vectors already encoded (e.g. by a fuser)."""
        if self._index is None:
            raise UsageError("retriever 'dpr' has no index yet: call index() or load() first")
        indices, scores = self._index.search(vectors, k, ef_search=self.ef_search, nprobe=self.nprobe)
        return RankedResults(indices, scores, self._documents)

    # --- shards of a sharded index (odqa_core.shards) -----------------------------------------------------------

    def prepare_queries(self, queries: Sequence[str]) -> np.ndarray:
        """The question vectors, encoded once for every shard of a sharded index (the shards share the model)."""
        if isinstance(queries, str):
            raise UsageError("search() takes a list of queries, got a single string")
        return self.encode_queries(queries)

    def search_prepared(self, vectors: np.ndarray, k: int, **_: Any) -> tuple[RankedResults, np.ndarray]:
        """This shard's top k for question vectors from :meth:`prepare_queries`, and the per-question constants
        added after the merge (none for inner products: zeros). Keywords that other retrievers' ``search_prepared``
        take (a sparse index's score floor) do not apply to a vector index and are ignored."""
        results = self.search_vectors(vectors, k)
        return results, np.zeros(len(results.indices), np.float32)

    def ray_resources(self, cluster_resources: Mapping[str, float]) -> dict[str, float]:
        """What one Ray actor or task that encodes this retriever's passages asks for: a whole GPU when the cluster
        has GPUs and the device may be one (``auto`` or ``cuda``), else one CPU.

        Ray makes only the granted GPU visible to it (``CUDA_VISIBLE_DEVICES``), so ``device=auto`` resolves to
        that GPU in a GPU worker and to the CPU in a CPU worker; an explicit ``device`` is honoured.
        """
        gpus = float(cluster_resources.get("GPU", 0) or 0)
        if self.device == "cuda" and gpus <= 0:
            raise UsageError("retriever 'dpr': device 'cuda' requested but the Ray cluster has no GPU")
        if gpus > 0 and self.device in ("auto", "cuda"):
            return {"num_cpus": 1, "num_gpus": 1}
        return {"num_cpus": 1}

    # --- scoring given documents ------------------------------------------------------------------------------

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        """Every stored passage's score for each query, float32 ``(len(queries), len(documents))``.

        Computed from the stored passage vectors (not the FAISS index), so it is exact for HNSW and IVF too.
        """
        return self.score_all_prepared(self.encode_queries(queries) if len(queries) else np.empty((0, 0), np.float32))

    def score_all_prepared(self, question_vectors: np.ndarray) -> np.ndarray:
        """:meth:`score_all` for question vectors from :meth:`prepare_queries` (a sharded index encodes once)."""
        vectors = self.passage_vectors
        out = np.empty((len(question_vectors), len(vectors)), np.float32)
        if len(question_vectors):
            np.matmul(question_vectors, vectors.T, out=out)
        return out

    def score(self, queries: Sequence[str], candidates: np.ndarray) -> np.ndarray:
        """Scores of the indexed rows ``candidates[i]`` for query ``i`` (from the stored passage vectors)."""
        candidates = check_candidates(candidates, len(queries), len(self.passage_vectors), f"retriever {self.name!r}")
        if candidates.size == 0:
            return np.zeros(candidates.shape, np.float32)
        return self.score_prepared(self.encode_queries(queries), candidates)

    def score_prepared(self, question_vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """:meth:`score` for question vectors from :meth:`prepare_queries` (a sharded index encodes once)."""
        vectors = self.passage_vectors
        candidates = check_candidates(candidates, len(question_vectors), len(vectors), f"retriever {self.name!r}")
        if candidates.size == 0:
            return np.zeros(candidates.shape, np.float32)
        return self._gather_dot(question_vectors, vectors, candidates)

    def score_documents(
        self, queries: Sequence[str], documents: Sequence[Document], candidates: np.ndarray
    ) -> np.ndarray:
        """Scores of rows ``candidates`` of ``documents``, encoding each distinct candidate passage once.

        Works with or without an index; the index, if any, is not used.
        """
        candidates = check_candidates(candidates, len(queries), len(documents), f"retriever {self.name!r}")
        if candidates.size == 0:
            return np.zeros(candidates.shape, np.float32)
        rows, inverse = np.unique(candidates, return_inverse=True)
        vectors = self.encode_passages([documents[i] for i in rows.tolist()])
        return self._gather_dot(self.encode_queries(queries), vectors, inverse.reshape(candidates.shape))

    @staticmethod
    def _gather_dot(queries: np.ndarray, vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """``out[i, j] = queries[i] · vectors[candidates[i, j]]`` as float32.

        Gathers at most :data:`GATHER_BYTES` of vectors at a time: blocks of whole query rows, or blocks of one
        row's candidates when a single row is larger than that.
        """
        n, c = candidates.shape
        out = np.empty((n, c), np.float32)
        if out.size == 0:
            return out
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        cells = max(1, GATHER_BYTES // (vectors.shape[1] * vectors.itemsize))  # vectors gathered at a time
        rows_per_block = max(1, cells // c)
        cols_per_block = min(c, cells)
        for start in range(0, n, rows_per_block):
            stop = min(n, start + rows_per_block)
            q = queries[start:stop, :, None]  # (block, dim, 1)
            for col in range(0, c, cols_per_block):
                end = min(c, col + cols_per_block)
                gathered = vectors[candidates[start:stop, col:end]]  # (block, cols, dim)
                out[start:stop, col:end] = np.matmul(gathered, q)[..., 0]
        return out

    # --- persistence --------------------------------------------------------------------------------------------

    def save_state(self, writer: StoreWriter) -> None:
        if self._index is None:
            raise UsageError("retriever 'dpr' has no index to save: call index() first")
        self._index.save(writer)
        built = self._built_with or {
            "model_source": self._encoder.source,
            "model_fingerprint": self._encoder.fingerprint,
            "encoders": self._encoder.encoders,
            "pooling": self._encoder.pooling,
            "encoder_precision": self._precision,
        }
        writer.params.update({k: v for k, v in built.items() if k != "dim"})

    @classmethod
    def load_state(cls, reader: StoreReader, documents: list[Document]) -> DPRRetriever:
        from odqa_core import IndexFormatError
        from odqa_dense.vectors import VectorIndex

        retriever = cls.from_options(reader.config)
        assert isinstance(retriever, DPRRetriever)
        index = VectorIndex.load(reader, hnsw_m=retriever.hnsw_m, ef_construction=retriever.ef_construction)
        if len(index) != len(documents):
            raise IndexFormatError(
                f"{reader.root}: {len(index)} passage vectors but {len(documents)} documents in the table"
            )
        params = reader.params
        retriever._index = index
        retriever._documents = documents
        retriever._built_with = {
            "dim": index.dim,
            **{
                k: params.get(k)
                for k in ("model_source", "model_fingerprint", "encoders", "pooling", "encoder_precision")
            },
        }
        return retriever
