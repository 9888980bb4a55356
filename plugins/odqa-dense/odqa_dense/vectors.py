"""Inner-product search over passage vectors with FAISS: exact (``IndexFlatIP``), HNSW or IVF.

The passage vectors themselves are always stored (``vectors.npy``) so that fusers can rescore any passage without
re-encoding. A flat index is exactly those vectors, so it is rebuilt from them at load time instead of being
stored twice; HNSW and IVF indexes are stored as FAISS files (``index.faiss``) because building them costs time.

Results are returned best first with ties broken by passage index, like every odqa retriever, also at the k-th
place (duplicate passages tie there; a sharded index merges its shards' top k by the same rule). Approximate
indexes can come back with fewer than ``k`` hits for a query (IVF probing too few lists); those rows are filled by
an exact search, so a ranking never contains ``-1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from odqa_core.errors import IndexFormatError, UsageError
from odqa_core.storage import StoreReader, StoreWriter

INDEX_TYPES = ("flat", "hnsw", "ivf")
#: Hits asked of FAISS beyond k, so that passages tied at the k-th score are all seen (see VectorIndex.search).
TIE_MARGIN = 16


def default_nlist(n: int) -> int:
    """About 4·√n lists, but at least 39 training points per list (FAISS's own rule of thumb)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


class VectorIndex:
    """A FAISS inner-product index over ``vectors`` (float32, ``(n, dim)``)."""

    def __init__(
        self,
        vectors: np.ndarray,
        index_type: str = "flat",
        *,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        nlist: int | None = None,
        faiss_index: Any = None,
    ) -> None:
        if index_type not in INDEX_TYPES:
            raise UsageError(f"index_type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index_type = index_type
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.nlist = nlist
        self._index = faiss_index if faiss_index is not None else self._build()

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def _build(self) -> Any:
        import faiss

        n, dim = self.vectors.shape
        if self.index_type == "flat":
            index = faiss.IndexFlatIP(dim)
        elif self.index_type == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        else:
            self.nlist = min(self.nlist or default_nlist(n), n)
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(self.vectors)
        index.add(self.vectors)
        return index

    def search(
        self, queries: np.ndarray, k: int, *, ef_search: int = 128, nprobe: int = 16
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(indices int64, scores float32)`` of shape ``(len(queries), min(k, n))``, best first."""
        k = min(k, len(self))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise UsageError(f"query vectors have shape {queries.shape}, the index holds {self.dim}-dim vectors")
        if len(queries) == 0 or k == 0:
            return np.zeros((len(queries), k), np.int64), np.zeros((len(queries), k), np.float32)
        if self.index_type == "hnsw":
            self._index.hnsw.efSearch = max(ef_search, k)
        elif self.index_type == "ivf":
            self._index.nprobe = min(max(1, nprobe), self.nlist or 1)
        # FAISS keeps any of several passages tied at the k-th score (its heap evicts them in no set order), so it
        # is asked for a few more: the ones tied at the cut are then all there to be ordered by index. A row whose
        # deepest hit still ties its k-th is asked again, deeper, until the tie ends or every passage is in.
        depth = min(len(self), k + TIE_MARGIN)
        while True:
            scores, indices = self._index.search(queries, depth)
            short = (indices[:, :k] < 0).any(axis=1)
            if short.any():
                exact = queries[short] @ self.vectors.T
                top = np.argsort(-exact, axis=1, kind="stable")[:, :depth]
                indices[short] = top
                scores[short] = np.take_along_axis(exact, top, axis=1)
            order = np.lexsort((indices, -scores), axis=-1)
            indices, scores = np.take_along_axis(indices, order, 1), np.take_along_axis(scores, order, 1)
            cut = (scores[:, k - 1] == scores[:, -1]) & (indices[:, -1] >= 0)
            if depth >= len(self) or not cut.any():
                break
            depth = min(len(self), 2 * depth)
        return indices[:, :k].astype(np.int64), np.ascontiguousarray(scores[:, :k])

    def save(self, writer: StoreWriter) -> None:
        import faiss

        writer.save_array("vectors", self.vectors)
        if self.index_type != "flat":
            faiss.write_index(self._index, str(writer.path("index.faiss")))
        writer.params.update(
            {"index_type": self.index_type, "dim": self.dim, "count": len(self), "nlist": self.nlist}
        )

    @classmethod
    def load(cls, reader: StoreReader, *, hnsw_m: int = 32, ef_construction: int = 200) -> VectorIndex:
        import faiss

        params = reader.params
        vectors = reader.load_array("vectors")
        if vectors.ndim != 2 or vectors.dtype != np.float32:
            raise IndexFormatError(
                f"{reader.root}: vectors.npy is {vectors.dtype} {vectors.shape}, expected float32 2-D"
            )
        if vectors.shape != (params.get("count"), params.get("dim")):
            raise IndexFormatError(
                f"{reader.root}: vectors.npy is {vectors.shape}, the manifest says "
                f"({params.get('count')}, {params.get('dim')})"
            )
        index_type = params.get("index_type", "flat")
        faiss_index = None
        if index_type != "flat":
            try:
                faiss_index = faiss.read_index(str(reader.path("index.faiss")))
            except RuntimeError as exc:
                raise IndexFormatError(
                    f"{reader.root}: unreadable FAISS index ({str(exc).splitlines()[0]})"
                ) from None
            if faiss_index.ntotal != len(vectors) or faiss_index.d != vectors.shape[1]:
                raise IndexFormatError(f"{reader.root}: the FAISS index does not match vectors.npy")
        return cls(
            vectors,
            index_type,
            hnsw_m=hnsw_m,
            ef_construction=ef_construction,
            nlist=params.get("nlist"),
            faiss_index=faiss_index,
        )
