"""Where a small-corpus BM25 query's time goes: token -> id mapping versus the search kernel.

Question answered: "why is odqa's ratio to bm25s smaller on KorQuAD (4k passages) than at 100k?" On a small corpus
a query costs a few microseconds, so fixed per-query costs matter. This times, on the KorQuAD tokens of
``bm25_speed.py`` (30-word passages, ``\\w+`` lowercased, all 5,774 questions), single-threaded, median of
``--reps``:

- odqa ``search_tokens`` end to end, and the part of it that maps query tokens to term ids
  (``SparseEmbedding.query_arrays``), the rest being the kernel and the result arrays;
- bm25s (numba backend) ``retrieve`` end to end, and its own token -> id mapping (``get_tokens_ids``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, command_line, require_korquad, single_thread_env, source_state, utc_now  # noqa: E402


def median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True)
    parser.add_argument("--reps", type=int, default=21)
    args = parser.parse_args()
    single_thread_env()
    path = require_korquad(args.korquad)
    if path is None:
        return
    import bm25_speed as bench

    corpus, queries, desc = bench.load_tokens({"corpus": "korquad", "path": str(path)})
    print(f"{command_line()}\n{utc_now()}; {source_state()}")
    print(f"{desc['passages']:,} passages, {len(queries):,} queries, k = 10, median of {args.reps}\n")
    n = len(queries)

    odqa = bench.odqa_retriever()
    odqa.index_tokens(corpus)
    odqa.search_tokens(queries, 10)
    emb = odqa.sparse_embedding
    total = median_time(lambda: odqa.search_tokens(queries, 10), args.reps)
    mapping = median_time(lambda: emb.query_arrays(queries), args.reps)

    bm = bench.Bm25s("numba")
    bm.index(corpus)
    bm.search(queries, 10)
    b_total = median_time(lambda: bm.search(queries, 10), args.reps)
    b_mapping = median_time(lambda: [bm.state.get_tokens_ids(q) for q in queries], args.reps)

    us = 1e6 / n
    print("| system | per query, end to end | token -> id mapping | rest (search) |")
    print("|---|---|---|---|")
    print(f"| odqa okapi | {total * us:.2f} µs | {mapping * us:.2f} µs | {(total - mapping) * us:.2f} µs |")
    print(f"| bm25s-numba | {b_total * us:.2f} µs | {b_mapping * us:.2f} µs | {(b_total - b_mapping) * us:.2f} µs |")
    search_ratio = (b_total - b_mapping) / (total - mapping)
    print(f"\nend-to-end ratio {b_total / total:.2f}x; search-only ratio {search_ratio:.2f}x")


if __name__ == "__main__":
    main()
