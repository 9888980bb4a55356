"""Query throughput of odqa-sparse BM25 against bm25s (numba backend) and rank-bm25, single-threaded.

Synthetic Zipf corpus (seeded): ``--docs`` passages of ``--min-len``..``--max-len`` tokens drawn from a Zipf(``--s``)
distribution over ``--vocab`` terms; queries of 5-10 tokens from the same distribution. Every system gets the same
token lists. odqa and bm25s are timed in one process, alternating, best of ``--reps`` (so that background load hits
both alike); rank-bm25 on ``--rank-queries`` queries. The top-10 of odqa is compared with rank-bm25's (ties by index).

    python plugins/odqa-sparse/benchmarks/speed.py --docs 100000
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

BM25S_METHOD = {"okapi": "robertson", "lucene": "lucene", "bm25+": "bm25+", "bm25l": "bm25l"}


def zipf_corpus(args: argparse.Namespace) -> tuple[list[list[str]], list[list[str]]]:
    rng = np.random.default_rng(args.seed)
    p = 1.0 / np.arange(1, args.vocab + 1) ** args.s
    cdf = np.cumsum(p / p.sum())
    names = np.array([f"w{i}" for i in rng.permutation(args.vocab)], dtype=object)

    def lists(n: int, lo: int, hi: int) -> list[list[str]]:
        lens = rng.integers(lo, hi + 1, n)
        ids = np.minimum(np.searchsorted(cdf, rng.random(int(lens.sum()))), args.vocab - 1)
        words = names[ids].tolist()
        ends = np.cumsum(lens)
        return [words[e - n_ : e] for e, n_ in zip(ends.tolist(), lens.tolist())]

    return lists(args.docs, args.min_len, args.max_len), lists(args.queries, 5, 10)


def best_time(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--s", type=float, default=1.0, help="Zipf exponent")
    ap.add_argument("--min-len", type=int, default=40)
    ap.add_argument("--max-len", type=int, default=80)
    ap.add_argument("--queries", type=int, default=5_000)
    ap.add_argument("--variant", default="okapi", choices=sorted(BM25S_METHOD))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--rank-queries", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-bm25s", action="store_true")
    ap.add_argument(
        "--project-synthetic",
        action="store_true",
        help="use the repository's benchmarks/synthetic.py corpus and queries (Zipf 1.1 over 200k terms, 30-80 "
        "tokens; queries: 2-5 tokens of one passage plus Zipf noise, 3-10 tokens)",
    )
    args = ap.parse_args()

    from odqa_core import plugins

    if args.project_synthetic:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
        import synthetic

        corpus = synthetic.generate(args.docs, seed=args.seed)
        docs = corpus.token_lists()
        queries = synthetic.generate_queries(corpus, args.queries, seed=args.seed + 1).token_lists()
    else:
        docs, queries = zipf_corpus(args)
    print(f"corpus: {len(docs):,} passages, {sum(map(len, docs)):,} tokens; {len(queries):,} queries", flush=True)
    k1, b = (0.9, 0.4) if args.variant == "lucene" else (1.5, 0.75)
    retriever = plugins.create("retriever", "bm25", {"variant": args.variant, "k1": k1, "b": b})
    retriever.warm_up()
    t = time.perf_counter()
    retriever.index_tokens(docs)
    print(f"odqa index_tokens: {time.perf_counter() - t:.2f} s", flush=True)
    retriever.search_tokens(queries[:100], args.k)

    systems = {"odqa": lambda: retriever.search_tokens(queries, args.k)}
    if not args.no_bm25s:
        import bm25s

        model = bm25s.BM25(k1=k1, b=b, method=BM25S_METHOD[args.variant], backend="numba")
        t = time.perf_counter()
        model.index(docs, show_progress=False)
        print(f"bm25s index: {time.perf_counter() - t:.2f} s", flush=True)
        bq = [q if any(x in model.vocab_dict for x in q) else [""] for q in queries]
        model.retrieve(bq[:100], k=args.k, n_threads=1, show_progress=False)
        systems["bm25s-numba"] = lambda: model.retrieve(bq, k=args.k, n_threads=1, show_progress=False)

    best = dict.fromkeys(systems, float("inf"))
    for _ in range(args.reps):
        for name, fn in systems.items():
            best[name] = min(best[name], best_time(fn, 1))
    qps = {name: len(queries) / s for name, s in best.items()}
    for name, v in qps.items():
        print(f"{name:12s} {v:10,.0f} queries/s")
    if "bm25s-numba" in qps:
        print(f"odqa / bm25s-numba = {qps['odqa'] / qps['bm25s-numba']:.2f}x")

    if args.variant == "okapi" and args.rank_queries:
        from rank_bm25 import BM25Okapi

        ref = BM25Okapi(docs, k1=k1, b=b)
        sub = queries[: args.rank_queries]
        t = time.perf_counter()
        ref_scores = [np.asarray(ref.get_scores(q)) for q in sub]
        rank_qps = len(sub) / (time.perf_counter() - t)
        ours = retriever.search_tokens(sub, args.k).indices
        same = sum(
            np.array_equal(np.lexsort((np.arange(len(s)), -s))[: args.k], row) for s, row in zip(ref_scores, ours)
        )
        print(f"rank-bm25    {rank_qps:10,.1f} queries/s; odqa / rank-bm25 = {qps['odqa'] / rank_qps:,.0f}x")
        print(f"top-{args.k} identical to rank-bm25 (ties by index): {same}/{len(sub)}")


if __name__ == "__main__":
    main()
