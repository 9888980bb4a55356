"""A capacity plan for 21M passages (DPR's English Wikipedia), computed from what this machine measures.

Question answered: "how many shards and machines does a 21M-passage index need, and how long does encoding take?"
(issue 18 §5). Nothing is extrapolated from a guess: every size and rate below is measured by this script (or read
from a measured table of RESULTS.md, named by its option), then multiplied out.

Protocol
- BM25 (odqa's sparse store, format 2): indexes built with odqa on (a) ``synthetic.generate(--synthetic, seed=0)``
  (regex analyzer) and (b) KorQuAD 1.0 dev contexts cut into 100-word windows, DPR's passage length (regex words,
  and character bigrams), saved to ``--out``; their files are summed by role: the arrays a search reads (postings
  ``t_docs`` + ``t_imp``, per-term arrays, presence bitmaps: what must stay in memory), the term-major counts and
  document lengths (disk only: read to re-save or to rebuild counts), the document table (disk; a result reads
  its row). Bytes per posting and per passage follow; a 21M-passage corpus is costed at the postings per passage
  of each measured corpus.
- Dense, 768-d (BERT-base), through FAISS: bytes per vector of each index type, as the slope of the serialized
  size between ``--vectors`` and 2 × ``--vectors`` random unit vectors (fixed parts such as IVF centroids and PQ
  codebooks cancel out): flat fp32 (``IndexFlatIP``, odqa's ``flat``), flat fp16 (``IndexScalarQuantizer``
  QT_fp16), HNSW M=32 over fp32 (odqa's ``hnsw``) and over fp16 (``IndexHNSWSQ``), IVF-flat (odqa's ``ivf``) and
  IVF-PQ with 96 sub-quantizers of 8 bits (96-byte codes). odqa writes the fp32 kinds; fp16 and IVF-PQ are what
  FAISS offers beyond them, costed for the plan.
- Flat search rate: ``--search-vectors`` random 768-d vectors, 256 queries in one call, k = 100, at 1 and 2
  threads: vectors scored per second, which sets the per-query time of a flat shard of any size.
- Encoding: passages/s of BERT-base measured in RESULTS.md §4 on this CPU (``--cpu-rate``, bf16 ``--cpu-bf16-rate``)
  and the DPR paper's GPU rate (21M passages in 8.8 h on 8 GPUs, ``--gpu-rate``): hours for 21M on N workers.
- Nodes of ``--node-gb`` GB with ``--reserve-gb`` kept for the OS, Ray's object store share and the worker: the
  number of shards (one per node, or several per node for the same memory) a 21M index needs.

Results are printed as Markdown tables and written to ``--out`` as JSON.
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
    markdown_table,
    require_korquad,
    run_header,
    write_json,
)

TARGET = 21_000_000
DIM = 768
#: Store files of the sparse index by role (any other file counts as "other").
POSTING_FILES = ("t_docs", "t_imp", "b_words", "b_rank")  # grow with the postings
TERM_FILES = ("t_ptr", "t_max", "t_min", "idf", "b_slot", "vocabulary")  # grow with the vocabulary
DISK_FILES = ("t_counts", "doc_lengths")
TABLE_FILES = ("documents", "document_offsets")


def _role(name: str) -> str:
    stem = name.split(".")[0]
    roles = (
        ("postings_part", POSTING_FILES),
        ("terms_part", TERM_FILES),
        ("disk", DISK_FILES),
        ("table", TABLE_FILES),
    )
    for role, names in roles:
        if stem in names:
            return role
    return "other"


def sparse_sizes(label: str, documents, options: dict, out: Path) -> dict:
    """Build and save an odqa BM25 index; its bytes by role, per posting and per passage."""
    import numpy as np

    from odqa_core import plugins

    path = out / f"bm25-{label}"
    shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()
    retriever = plugins.create("retriever", "bm25", options)
    retriever.index(documents)
    retriever.save(path)
    seconds = time.perf_counter() - t0
    sizes = {"postings_part": 0, "terms_part": 0, "disk": 0, "table": 0, "other": 0}
    for f in path.rglob("*"):
        if f.is_file():
            sizes[_role(f.name)] += f.stat().st_size
    postings = int(np.load(next(path.rglob("t_docs.npy")), mmap_mode="r").shape[0])
    terms = int(np.load(next(path.rglob("t_ptr.npy")), mmap_mode="r").shape[0]) - 1
    n = len(documents)
    shutil.rmtree(path, ignore_errors=True)
    return {
        "corpus": label,
        "passages": n,
        "postings": postings,
        "postings_per_passage": postings / n,
        "index_s": seconds,
        **{f"{role}_bytes": b for role, b in sizes.items()},
        **{f"{role}_per_passage": b / n for role, b in sizes.items()},
        "terms": terms,
        "postings_per_posting": sizes["postings_part"] / postings,
        "terms_per_term": sizes["terms_part"] / terms,
    }


def korquad_windows(path: Path, words: int = 100) -> list:
    from odqa_core.types import Document

    contexts, _, _, _ = korquad_split(path)
    out = []
    for c in contexts:
        tokens = c.text.split()
        for i in range(0, len(tokens), words):
            out.append(Document(f"{c.id}-{i // words}", " ".join(tokens[i : i + words]), title=c.title))
    return out


def _faiss_indexes(faiss, train):
    d = DIM
    ip = faiss.METRIC_INNER_PRODUCT
    sq = faiss.ScalarQuantizer.QT_fp16

    def hnsw_fp32():
        index = faiss.IndexHNSWFlat(d, 32, ip)
        index.hnsw.efConstruction = 40
        return index

    def hnsw_fp16():
        index = faiss.IndexHNSWSQ(d, sq, 32, ip)
        index.hnsw.efConstruction = 40
        return index

    def ivf_flat():
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, 256, ip)
        index.train(train)
        return index

    def ivf_pq():
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, 256, 96, 8, ip)
        index.train(train)
        return index

    def flat_fp16():
        index = faiss.IndexScalarQuantizer(d, sq, ip)
        index.train(train)
        return index

    return {
        "flat fp32 (odqa flat)": lambda: faiss.IndexFlatIP(d),
        "flat fp16": flat_fp16,
        "HNSW32 fp32 (odqa hnsw)": hnsw_fp32,
        "HNSW32 fp16": hnsw_fp16,
        "IVF256 flat fp32 (odqa ivf)": ivf_flat,
        "IVF256 PQ96x8": ivf_pq,
    }


def _unit(rng, n):
    import numpy as np

    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def dense_sizes(n: int, seed: int = 0) -> list[dict]:
    import faiss
    import numpy as np

    rng = np.random.default_rng(seed)
    vectors = _unit(rng, 2 * n)
    rows = []
    for name, make in _faiss_indexes(faiss, vectors[:n]).items():
        sizes = []
        for count in (n, 2 * n):
            index = make()
            t0 = time.perf_counter()
            index.add(vectors[:count])
            add_s = time.perf_counter() - t0
            sizes.append(int(faiss.serialize_index(index).nbytes))
        rows.append(
            {
                "index": name,
                "bytes_per_vector": (sizes[1] - sizes[0]) / n,
                "fixed_bytes": sizes[0] - (sizes[1] - sizes[0]),
                "add_s_per_1k": add_s / (2 * n) * 1000,
            }
        )
    return rows


def flat_rate(n: int, threads: int, queries: int = 256, k: int = 100, seed: int = 1) -> dict:
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(seed)
    index = faiss.IndexFlatIP(DIM)
    index.add(_unit(rng, n))
    q = _unit(rng, queries)
    index.search(q[:8], k)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        index.search(q, k)
        times.append(time.perf_counter() - t0)
    best = sorted(times)[1]
    return {"threads": threads, "vectors": n, "queries": queries, "s": best, "scored_per_s": n * queries / best}


def plan(args, sparse_rows, dense_rows, rates) -> dict:
    usable = (args.node_gb - args.reserve_gb) * 1e9
    sparse_plan = []
    for row in sparse_rows:
        # the vocabulary's part is left out: it grows with the vocabulary, not the passages (bytes per term are
        # reported: 0.04-0.05 GB per million terms)
        memory = TARGET * row["postings_per_passage"] * row["postings_per_posting"]
        disk = memory + TARGET * (row["disk_per_passage"] + row["table_per_passage"])
        sparse_plan.append(
            {
                "as": row["corpus"],
                "postings_per_passage": row["postings_per_passage"],
                "memory_gb": memory / 1e9,
                "disk_gb": disk / 1e9,
                "nodes": max(1, math.ceil(memory / usable)),
            }
        )
    dense_plan = []
    for row in dense_rows:
        memory = TARGET * row["bytes_per_vector"] + max(row["fixed_bytes"], 0)
        dense_plan.append(
            {
                "index": row["index"],
                "bytes_per_vector": row["bytes_per_vector"],
                "memory_gb": memory / 1e9,
                "nodes": max(1, math.ceil(memory / usable)),
            }
        )
    flat2 = max(r["scored_per_s"] for r in rates)
    encode = []
    for workers in (1, 8, 32, 64):
        encode.append(
            {
                "workers": workers,
                "gpu_h": TARGET / (args.gpu_rate * workers) / 3600,
                "cpu2_fp32_h": TARGET / (args.cpu_rate * workers) / 3600,
                "cpu2_bf16_h": TARGET / (args.cpu_bf16_rate * workers) / 3600,
            }
        )
    return {
        "usable_bytes_per_node": usable,
        "sparse": sparse_plan,
        "dense": dense_plan,
        "flat_query_s_21m_one_node": TARGET / flat2,
        "encode": encode,
    }


def render(result: dict) -> str:
    out = []
    out.append(
        "BM25 store, measured (what a search reads: the postings part and the per-term part, kept in memory; "
        "counts, lengths and the document table stay on disk):\n"
    )
    rows = [
        [
            r["corpus"],
            f"{r['passages']:,}",
            f"{r['terms']:,}",
            f"{r['postings_per_passage']:.1f}",
            f"{r['postings_per_posting']:.2f}",
            f"{r['terms_per_term']:.1f}",
            f"{r['disk_per_passage']:.0f}",
            f"{r['table_per_passage']:.0f}",
            f"{r['index_s']:.1f}",
        ]
        for r in result["sparse"]
    ]
    header = ["corpus", "passages", "terms", "postings/passage", "postings part B/posting", "per-term part B/term"]
    header += ["counts+lengths B/passage", "document table B/passage", "index s"]
    out.append(markdown_table(header, rows))
    out.append("\nFAISS, 768-d, measured (slope of the serialized size; fixed part = centroids, codebooks):\n")
    rows = [
        [r["index"], f"{r['bytes_per_vector']:.0f}", f"{r['fixed_bytes'] / 1e6:.1f}", f"{r['add_s_per_1k']:.3f}"]
        for r in result["dense"]
    ]
    out.append(markdown_table(["index", "bytes/vector", "fixed MB", "add s per 1k vectors"], rows))
    out.append("\nFlat inner-product search, measured:\n")
    rows = [
        [str(r["threads"]), f"{r['vectors']:,}", str(r["queries"]), f"{r['s']:.3f}", f"{r['scored_per_s'] / 1e9:.2f}"]
        for r in result["flat_rate"]
    ]
    out.append(markdown_table(["threads", "vectors", "queries", "s", "G vectors scored/s"], rows))
    p = result["plan"]
    out.append(f"\nPlan for {TARGET:,} passages, {p['usable_bytes_per_node'] / 1e9:.0f} GB usable per node:\n")
    rows = [
        [f"BM25 at {r['as']}", f"{r['postings_per_passage']:.1f} postings/passage", f"{r['memory_gb']:.1f}"]
        + [f"{r['disk_gb']:.1f}", str(r["nodes"])]
        for r in p["sparse"]
    ]
    rows += [
        [f"dense {r['index']}", f"{r['bytes_per_vector']:.0f} B/vector", f"{r['memory_gb']:.1f}", "-"]
        + [str(r["nodes"])]
        for r in p["dense"]
    ]
    out.append(markdown_table(["index", "size driver", "memory GB", "disk GB", "nodes (shards)"], rows))
    out.append(
        f"\nFlat fp32 over 21M on one node's cores as measured here: {p['flat_query_s_21m_one_node']:.2f} s per "
        "question in a batch of 256 (sharding over N nodes divides it by N).\n"
    )
    rows = [
        [str(r["workers"]), f"{r['gpu_h']:.1f}", f"{r['cpu2_fp32_h']:,.0f}", f"{r['cpu2_bf16_h']:,.0f}"]
        for r in p["encode"]
    ]
    out.append("Encoding 21M passages with BERT-base, hours:\n")
    out.append(markdown_table(["workers", "GPUs (DPR paper's rate)", "2-core CPUs fp32", "2-core CPUs bf16"], rows))
    return "\n".join(out)


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="capacity")
    parser.add_argument("--synthetic", type=int, default=200_000, help="synthetic passages for the BM25 sizes")
    parser.add_argument("--vectors", type=int, default=20_000, help="vectors per FAISS size point (and 2x)")
    parser.add_argument("--search-vectors", type=int, default=200_000, help="vectors for the flat search rate")
    parser.add_argument("--node-gb", type=float, default=64.0)
    parser.add_argument("--reserve-gb", type=float, default=8.0)
    parser.add_argument("--gpu-rate", type=float, default=TARGET / (8.8 * 3600 * 8), help="passages/s per GPU")
    parser.add_argument("--cpu-rate", type=float, default=15.6, help="BERT-base fp32, 2 threads (RESULTS.md §4)")
    parser.add_argument("--cpu-bf16-rate", type=float, default=41.6, help="BERT-base bf16, 2 threads (§4)")
    args = parser.parse_args()
    header = run_header("benchmarks/capacity_plan.py", "numpy", "faiss-cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import synthetic

    from odqa_core.types import Document

    corpus = synthetic.generate(args.synthetic, seed=0)
    docs = [Document(str(i), t) for i, t in enumerate(corpus.texts())]
    sparse_rows = [sparse_sizes(f"synthetic {args.synthetic:,}", docs, {"analyzer": "regex"}, out)]
    del docs, corpus
    korquad = require_korquad(args.korquad)
    if korquad is not None:
        windows = korquad_windows(korquad)
        sparse_rows.append(sparse_sizes("KorQuAD 100-word windows, regex", windows, {"analyzer": "regex"}, out))
        bigrams = {"analyzer": "char-ngram", "analyzer_options": {"n": 2}}
        sparse_rows.append(sparse_sizes("KorQuAD 100-word windows, char bigrams", windows, bigrams, out))
    dense_rows = dense_sizes(args.vectors)
    rates = [flat_rate(args.search_vectors, threads) for threads in (1, 2)]
    result = {
        **header,
        "sparse": sparse_rows,
        "dense": dense_rows,
        "flat_rate": rates,
        "plan": plan(args, sparse_rows, dense_rows, rates),
        "inputs": {k: v for k, v in vars(args).items()},
    }
    write_json(out, "capacity_plan.json", result)
    print(render(result))


if __name__ == "__main__":
    main()
