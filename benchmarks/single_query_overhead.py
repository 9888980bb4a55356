"""What the one-question fast path of odqa's BM25 search buys: one query per call, before and after, same process.

Question answered: "how much of a one-question search was fixed cost, and how much did issue 17's fast path
remove?" The path before is re-created in the same process on the same index: the batch's vectorized token -> id
mapping (``SparseEmbedding.query_arrays`` given a sequence that is not a list, which takes the general path) and
the search kernel allocating its n_docs-sized scratch arrays on every call (``SparseRetriever._kernel`` without
the retriever's scratch pool). Both return the same results (checked). Single-threaded, k = 10, odqa okapi
(k1 1.5, b 0.75) on ``bm25_speed.py``'s synthetic corpus and its ``zipf`` and ``natural`` query sets; each query
is searched by "before" then "after" (the order alternating), one query per call; p50/p99 latency and queries/s.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, header_lines, run_header, single_thread_env, write_json  # noqa: E402


class _NotAList(Sequence):
    """A one-query sequence that is not a list: ``query_arrays`` takes its general (batch) path for it."""

    def __init__(self, items: list) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        return self._items[i]


def measure(size: int, n_queries: int) -> dict:
    """Before/after latencies of one query per call on a synthetic corpus of ``size`` passages, per query set."""
    import bm25_speed
    import numpy as np
    import synthetic

    corpus = synthetic.generate(size, seed=0)
    sets = {
        "zipf": synthetic.generate_queries(corpus, n_queries, seed=1).token_lists(),
        "natural": synthetic.generate_natural_queries(corpus, n_queries, seed=2).token_lists(),
    }
    retriever = bm25_speed.odqa_retriever()
    retriever.index_tokens(corpus.token_lists())
    del corpus
    imp = retriever._impacts
    embedding = retriever.sparse_embedding

    def before(tokens, k=10):
        ptr, terms, counts = embedding.query_arrays(_NotAList([tokens]))
        weights, const = retriever._query_weights(ptr, terms, counts)
        out_i, out_s = np.zeros((1, k), np.int64), np.zeros((1, k), np.float32)
        retriever._kernel(imp, ptr, terms, weights, const, k, True, out_i, out_s)  # fresh scratch each call
        return out_i, out_s

    def after(tokens, k=10):
        r = retriever.search_tokens([tokens], k)
        return r.indices, r.scores

    gc.collect()
    gc.freeze()
    result = {}
    for name, queries in sets.items():
        for q in queries[:20]:  # warm-up, and the two paths agree
            (a_i, a_s), (b_i, b_s) = before(q), after(q)
            assert np.array_equal(a_i, b_i) and np.array_equal(a_s, b_s)
        lat = {"before": np.empty(len(queries)), "after": np.empty(len(queries))}
        fns = {"before": before, "after": after}
        for j, q in enumerate(queries):
            for which in ("before", "after") if j % 2 == 0 else ("after", "before"):
                fn = fns[which]
                t = time.perf_counter()
                fn(q)
                lat[which][j] = time.perf_counter() - t
        row = {
            w: {
                "p50_us": float(np.percentile(v, 50) * 1e6),
                "p99_us": float(np.percentile(v, 99) * 1e6),
                "qps": len(v) / float(v.sum()),
            }
            for w, v in lat.items()
        }
        result[name] = row
        b, a = row["before"], row["after"]
        print(
            f"| {size:,} | {name} | {b['p50_us']:.1f} | {a['p50_us']:.1f} | {b['p99_us']:.0f} | "
            f"{a['p99_us']:.0f} | {b['qps']:,.0f} | {a['qps']:,.0f} |",
            flush=True,
        )
    gc.unfreeze()
    return result


def main() -> None:
    parser = benchmark_parser(__doc__, out="single_query_overhead")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    single_thread_env()

    info = run_header("plugins/odqa-sparse/odqa_sparse", "odqa-sparse", "numba", "numpy")
    print(header_lines(info), flush=True)
    out: dict = {"info": info, "sizes": {}}
    print(
        "| passages | query set | before p50 µs | after p50 µs | before p99 µs | after p99 µs "
        "| before q/s | after q/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in [int(x) for x in args.sizes.split(",") if x]:
        out["sizes"][size] = measure(size, args.queries)
        gc.collect()
    print(f"wrote {write_json(args.out, 'single_query_overhead.json', out)}")


if __name__ == "__main__":
    main()
