"""Dense (dpr) indexes as shards: approximate recall against the flat index, per-shard encode rate, bytes per passage.

Questions answered (issue 18 §1 and the capacity plan of §5): "does an approximate index built per shard (HNSW,
IVF) find what one approximate index over the whole corpus finds, measured against the exact flat index?", "how
many passages per second does one shard worker encode?" and "how many bytes does each index type store per
passage?".

Protocol
- KorQuAD 1.0 dev (conventions of ../shared/data/korquad/README.md): its distinct contexts (document level) and
  their 30-word passages (passage level) as corpora, every question (5,774) as the queries.
- Model: ``--model`` (an odqa DPR checkpoint), else the KorQuAD benchmarks' DPR (``_common.train_korquad_dpr``:
  bootstrap ``tiny``, 1 epoch, trained into ``--out/dpr`` once). Encoding on the CPU in fp32, torch with one
  thread (one shard worker per core, as Ray's ``num_cpus=1`` tasks run).
- Encode rate: each of the ``--shards`` contiguous shards encoded on its own (``DPRRetriever.encode_passages``),
  timed; passages/s per shard, and the whole corpus in one call for comparison.
- Indexes: flat, HNSW (M 32, efConstruction 200) and IVF (nlist ``4·sqrt(n)`` capped at n/39, per shard of its own
  size) built single (``index`` + ``save``) and sharded (``build_sharded_index``, local engine), from the
  vectors encoded above (the encoder runs once per corpus: every later ``encode_passages`` / ``encode_queries``
  call of this script is served from those vectors, so builds time the index structures, not the encoder).
  All opened from disk (``load_retriever``).
- Recall: for every question, the share of the flat single index's top 10 / top 100 that an index returns in its
  own top 10 / top 100, averaged; HNSW at efSearch 16 and 128 (efSearch is at least k), IVF at nprobe 4 and 16.
  Also checked: the sharded flat index returns the single flat index's ids (exact merge).
- Bytes per passage, from the files written: ``vectors.npy`` (every dpr index stores its vectors, which fusers
  rescore with) and ``index.faiss`` (HNSW / IVF only; a flat index is rebuilt from the vectors at load), summed
  over the shards. Then FAISS files written directly (not odqa index types) from ``--dim``-dim random unit vectors
  (``--vectors`` of them): flat fp32, flat fp16 (scalar quantizer), HNSW32 fp32, IVF flat, IVF-PQ (``dim/8``
  sub-quantizers of 8 bits): the capacity plan's 768-d figures.

Results are printed as Markdown and written to ``--out`` as JSON.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    benchmark_parser,
    korquad_split,
    markdown_header,
    markdown_table,
    require_korquad,
    run_header,
    single_thread_env,
    train_korquad_dpr,
    write_json,
)

INDEX_OPTIONS = {"flat": {}, "hnsw": {"hnsw_m": 32, "ef_construction": 200}, "ivf": {}}
SEARCH_EFFORT = {"hnsw": [("ef_search", 16), ("ef_search", 128)], "ivf": [("nprobe", 4), ("nprobe", 16)]}


def _store_bytes(path: Path) -> dict[str, int]:
    """Bytes of ``vectors.npy`` and ``index.faiss`` in a store, or summed over a sharded index's shards."""
    totals = {"vectors.npy": 0, "index.faiss": 0}
    for name in totals:
        totals[name] = sum(f.stat().st_size for f in path.rglob(name))
    return totals


def _recall(found, truth, k: int) -> float:
    import numpy as np

    hits = [len(set(a[:k].tolist()) & set(b[:k].tolist())) for a, b in zip(found, truth)]
    return float(np.mean(hits)) / k


def _measure(model: str, label: str, documents: list, questions: list[str], out: Path, n_shards: int) -> dict:
    import numpy as np
    from odqa_dense.retriever import DPRRetriever

    from odqa_core.shards import shard_ranges

    encoder = DPRRetriever(model=model, device="cpu", precision="fp32")
    encoder.warm_up()
    encoder.encode_passages(documents[:64])  # first call's one-off costs out of the timings
    rates = []
    shard_vectors = []
    for a, b in shard_ranges(len(documents), n_shards):
        t0 = time.perf_counter()
        shard_vectors.append(encoder.encode_passages(documents[a:b]))
        rates.append((b - a) / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    vectors = encoder.encode_passages(documents)
    whole_rate = len(documents) / (time.perf_counter() - t0)
    shard_delta = float(np.abs(np.concatenate(shard_vectors) - vectors).max())
    t0 = time.perf_counter()
    question_vectors = encoder.encode_queries(questions)
    question_rate = len(questions) / (time.perf_counter() - t0)
    row_of = {d.id: i for i, d in enumerate(documents)}
    vector_of_question = {q: i for i, q in enumerate(questions)}
    if len(row_of) != len(documents):
        raise SystemExit(f"{label}: document ids are not unique")

    results: dict = {
        "documents": len(documents),
        "questions": len(questions),
        "dim": int(vectors.shape[1]),
        "shard_encode_passages_per_s": rates,
        "whole_encode_passages_per_s": whole_rate,
        "question_encode_per_s": question_rate,
        "shard_vs_whole_max_abs_delta": shard_delta,
        "indexes": {},
    }

    # Every retriever below reads the vectors encoded above instead of running the encoder again.
    def encode_passages(self, docs):
        return vectors[[row_of[d.id] for d in docs]]

    def encode_queries(self, texts):
        return question_vectors[[vector_of_question[t] for t in texts]]

    real = DPRRetriever.encode_passages, DPRRetriever.encode_queries
    DPRRetriever.encode_passages, DPRRetriever.encode_queries = encode_passages, encode_queries  # type: ignore[method-assign]
    try:
        return _measure_indexes(model, vectors, documents, questions, out, n_shards, results)
    finally:
        DPRRetriever.encode_passages, DPRRetriever.encode_queries = real  # type: ignore[method-assign]


def _measure_indexes(model, vectors, documents, questions, out: Path, n_shards: int, results: dict) -> dict:
    """Build, open and search flat, HNSW and IVF indexes, single and sharded (the encoder already patched out)."""
    import numpy as np
    from odqa_dense.retriever import DPRRetriever

    from odqa_core.pipeline import load_retriever
    from odqa_core.shards import build_sharded_index

    truth = None
    for index_type, options in INDEX_OPTIONS.items():
        entry: dict = {}
        for layout in ("single", "sharded"):
            path = out / f"{index_type}-{layout}"
            shutil.rmtree(path, ignore_errors=True)
            retriever = DPRRetriever(model=model, device="cpu", precision="fp32", index_type=index_type, **options)
            t0 = time.perf_counter()
            if layout == "single":
                retriever.index(documents)
                retriever.save(path)
            else:
                build_sharded_index(retriever, documents, path, n_shards)
            entry[f"{layout}_build_s"] = time.perf_counter() - t0
            entry[f"{layout}_bytes"] = _store_bytes(path)
        if index_type == "flat":
            single = load_retriever(out / "flat-single").search(questions, 100)
            sharded = load_retriever(out / "flat-sharded").search(questions, 100)
            truth = single.indices
            entry["sharded_equals_single"] = bool(np.array_equal(single.indices, sharded.indices))
        else:
            entry["recall"] = {}
            for option, value in SEARCH_EFFORT[index_type]:
                for layout in ("single", "sharded"):
                    index = load_retriever(out / f"{index_type}-{layout}", {option: value})
                    entry["recall"][f"{layout} {option}={value}"] = {
                        f"recall@{k}": _recall(index.search(questions, k).indices, truth, k) for k in (10, 100)
                    }
        results["indexes"][index_type] = entry
    return results


def _faiss_file_sizes(n: int, dim: int, out: Path) -> dict[str, float]:
    """Bytes per vector of FAISS indexes written to disk, from ``n`` random unit vectors of ``dim`` dimensions."""
    import faiss
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    ip, fp16 = faiss.METRIC_INNER_PRODUCT, faiss.ScalarQuantizer.QT_fp16
    # IVF indexes keep a reference to their coarse quantizer: these must outlive them.
    coarse_flat, coarse_pq = faiss.IndexFlatIP(dim), faiss.IndexFlatIP(dim)
    indexes = {
        "flat fp32 (IndexFlatIP)": faiss.IndexFlatIP(dim),
        "flat fp16 (IndexScalarQuantizer QT_fp16)": faiss.IndexScalarQuantizer(dim, fp16, ip),
        "HNSW32 fp32 (IndexHNSWFlat)": faiss.IndexHNSWFlat(dim, 32, ip),
        f"IVF{nlist} flat (IndexIVFFlat)": faiss.IndexIVFFlat(coarse_flat, dim, nlist, ip),
        f"IVF{nlist} PQ{dim // 8}x8 (IndexIVFPQ)": faiss.IndexIVFPQ(coarse_pq, dim, nlist, dim // 8, 8, ip),
    }
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    np.save(out / "vectors.npy", vectors)
    sizes["odqa vectors.npy (fp32)"] = (out / "vectors.npy").stat().st_size / n
    for i, (name, index) in enumerate(indexes.items()):
        if isinstance(index, faiss.IndexHNSWFlat):
            index.hnsw.efConstruction = 40  # build effort does not change the file size
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
        path = out / f"index-{i}.faiss"
        faiss.write_index(index, str(path))
        sizes[name] = path.stat().st_size / n
    return sizes


def main() -> None:
    single_thread_env()
    parser = benchmark_parser(__doc__, korquad=True, out="sharded-dense")
    parser.add_argument("--model", default=None, help="An odqa DPR checkpoint (default: train the KorQuAD DPR).")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--corpora", default="contexts,passages", help="contexts, passages or both.")
    parser.add_argument("--vectors", type=int, default=20_000, help="Random vectors for the FAISS file sizes.")
    parser.add_argument("--dim", type=int, default=768, help="Their dimension.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    header = run_header("plugins/odqa-dense/odqa_dense", "torch", "transformers", "faiss-cpu", "numpy")
    out = Path(args.out)
    korquad = require_korquad(args.korquad)
    results: dict = {"header": header, "corpora": {}}
    if korquad is not None:
        contexts, passages, train, test = korquad_split(korquad)
        model = args.model or train_korquad_dpr(passages, train, test, out, size="tiny", epochs=1, device="cpu")
        results["model"] = model
        questions = list(dict.fromkeys(q.text for q in [*train, *test]))
        chosen = {"contexts": contexts, "passages": passages}
        for name in args.corpora.split(","):
            results["corpora"][name] = _measure(model, name, chosen[name], questions, out / name, args.shards)
    results["faiss_bytes_per_vector"] = _faiss_file_sizes(args.vectors, args.dim, out / "faiss-files")
    write_json(out, "sharded_dense.json", results)

    print(markdown_header(header))
    for name, r in results["corpora"].items():
        print(f"\n{name}: {r['documents']:,} passages, {r['questions']:,} questions, {r['dim']}-d\n")
        rates = ", ".join(f"{x:.1f}" for x in r["shard_encode_passages_per_s"])
        print(
            f"encode passages/s per shard: {rates}; whole corpus in one call {r['whole_encode_passages_per_s']:.1f}; "
            f"questions/s {r['question_encode_per_s']:.1f}; shards vs whole max |Δ| "
            f"{r['shard_vs_whole_max_abs_delta']:.2e}; sharded flat = single flat: "
            f"{r['indexes']['flat']['sharded_equals_single']}\n"
        )
        rows = []
        for index_type, e in r["indexes"].items():
            for layout in ("single", "sharded"):
                b = e[f"{layout}_bytes"]
                recall = {k: v for k, v in e.get("recall", {}).items() if k.startswith(layout)}
                rows.append(
                    [
                        index_type,
                        layout,
                        f"{e[f'{layout}_build_s']:.2f}",
                        f"{b['vectors.npy'] / r['documents']:.0f}",
                        f"{b['index.faiss'] / r['documents']:.0f}",
                        "; ".join(
                            f"{k.split(' ', 1)[1]}: {v['recall@10']:.4f} / {v['recall@100']:.4f}"
                            for k, v in recall.items()
                        )
                        or "exact (reference)",
                    ]
                )
        print(
            markdown_table(
                [
                    "index",
                    "layout",
                    "build s (no encode)",
                    "vectors.npy B/passage",
                    "index.faiss B/passage",
                    "recall@10 / @100 vs flat",
                ],
                rows,
            )
        )
    print(f"\nFAISS files from {args.vectors:,} random {args.dim}-d vectors, bytes per vector:\n")
    print(
        markdown_table(
            ["index", "bytes/vector"], [[k, f"{v:.1f}"] for k, v in results["faiss_bytes_per_vector"].items()]
        )
    )


if __name__ == "__main__":
    main()
