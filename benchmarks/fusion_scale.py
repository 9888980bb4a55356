"""Cross fusion over the whole corpus at scale: odqa's blocked ``cross whole`` against the naive full matrices.

Question answered: "the competition's cross reranking (1.1 · dense + BM25 over every passage) ran out of memory;
what does odqa's version cost?" Both compute exactly the same thing: for every question, 1.1 · DPR + BM25 of
every passage of the corpus, then the top 100.

- naive (the KLUE template's way): the full questions × passages matrix of each retriever (dense: question
  vectors @ passage vectors; BM25: every passage's score), their weighted sum, then ``np.argsort`` of each full
  row. Also shown: the same full matrices with an ``np.argpartition`` top-k instead of the full sort.
- odqa: ``CrossFuser(mode="whole")`` — blocks of questions sized to ``memory_mb`` (64) of scratch; one
  retriever's block of scores at a time; exact top-k with ties by index.

Setup: a seeded synthetic corpus (``synthetic.py``: Zipf vocabulary, 30-80 tokens per passage; default 60,000
passages) and 600 queries; BM25 okapi with the regex analyzer; a bootstrap DPR (WordPiece trained on the corpus +
a random BERT ``tiny``, mean pooling; untrained — time and memory do not depend on the weights), flat index. Both
indexes are built once and saved under ``--out``.

Measurement: each method runs in its own fresh subprocess, methods alternating, ``--reps`` times (median). In
the subprocess both indexes are loaded and warmed up (a throwaway fusion of 8 questions), then the peak RSS mark
is reset (``/proc/self/clear_refs``) and the method runs once over all queries: its time (question encoding
included, same for both) and its peak RSS above the RSS before it started. The top-100 rankings of the methods
are compared. Targets: odqa's peak ≤ 1/10 of the naive peak, at no more than the naive time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, markdown_table, median, run_header, write_json  # noqa: E402

METHODS = ("naive", "naive-argpartition", "odqa")
LAMBDA = 1.1


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Reset the peak-RSS mark (VmHWM) to the current RSS; Linux >= 4.0."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return status_kb("VmHWM") <= status_kb("VmRSS") + 1024


# --------------------------------------------------------------------------------------------------- building


def build(args: Any) -> dict[str, Any]:
    from odqa_dense.encoder import BiEncoder
    from odqa_transformers.bootstrap import bootstrap_encoder
    from synthetic import generate, generate_queries

    from odqa_core import Document, plugins

    out = Path(args.out)
    started = time.perf_counter()
    corpus = generate(args.passages, vocab=args.vocab, seed=0)
    texts = corpus.texts()
    documents = [Document(str(i), t) for i, t in enumerate(texts)]
    queries = generate_queries(corpus, args.queries, seed=1).texts()
    (out / "queries.json").write_text(json.dumps(queries))
    info: dict[str, Any] = {"passages": len(documents), "queries": len(queries)}

    t0 = time.perf_counter()
    bm25 = plugins.create("retriever", "bm25", {})
    bm25.index(documents)
    bm25.save(out / "bm25")
    info["bm25_index_s"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    tokenizer, model = bootstrap_encoder(texts[:20000], args.size, 8000, 512, 0)
    BiEncoder.from_models(tokenizer, model, encoders="shared", pooling="mean").save(out / "dpr-model")
    dpr = plugins.create(
        "retriever",
        "dpr",
        {"model": str(out / "dpr-model"), "passage_max_length": 96, "query_max_length": 32, "device": "cpu"},
    )
    dpr.index(documents)
    dpr.save(out / "dpr")
    info["dpr_index_s"] = round(time.perf_counter() - t0, 1)
    info["build_s"] = round(time.perf_counter() - started, 1)
    return info


# ------------------------------------------------------------------------------------------------- measuring


def measure(args: Any) -> None:
    """One method, in this (fresh) process; prints one JSON line."""
    import numpy as np
    from odqa_fusion.fusers import CrossFuser

    from odqa_core.pipeline import load_retriever

    out = Path(args.out)
    queries = json.loads((out / "queries.json").read_text())
    bm25 = load_retriever(out / "bm25")
    dpr = load_retriever(out / "dpr", {"device": "cpu"})
    for r in (bm25, dpr):
        r.warm_up()
    fuser = CrossFuser(lam=LAMBDA, lam_on="dpr", memory_mb=args.memory_mb)
    k = args.k

    def naive(partition: bool):
        dense = dpr.encode_queries(queries) @ dpr.passage_vectors.T
        sparse = bm25.score_all(queries)
        fused = LAMBDA * dense + sparse
        if partition:
            top = np.argpartition(-fused, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(fused, top, 1), axis=1, kind="stable")
            return np.take_along_axis(top, order, 1)
        return np.argsort(fused, axis=1)[:, ::-1][:, :k]  # the template's full sort

    run = {
        "naive": lambda: naive(False),
        "naive-argpartition": lambda: naive(True),
        "odqa": lambda: fuser.fuse([bm25, dpr], queries, k).indices,
    }[args.measure]
    fuser.fuse([bm25, dpr], queries[:8], k)  # warm-up: kernels, allocator, thread pools
    np.argsort(np.zeros((8, 10)))
    exact = reset_peak()
    before = status_kb("VmRSS")
    t0 = time.perf_counter()
    indices = run()
    seconds = time.perf_counter() - t0
    peak = status_kb("VmHWM")
    np.save(out / f"top-{args.measure}.npy", indices)
    print(
        json.dumps(
            {
                "method": args.measure,
                "seconds": seconds,
                "rss_before_mb": before / 1024,
                "peak_mb": peak / 1024,
                "peak_over_before_mb": (peak - before) / 1024,
                "peak_reset_exact": exact,
                "block": fuser.block_size(len(bm25.documents)),
            }
        ),
        flush=True,
    )


def agreement(out: Path) -> dict[str, Any]:
    """How many questions get the same top-100 set (and the same order) as the naive full sort."""
    import numpy as np

    ref = np.load(out / "top-naive.npy")
    result = {}
    for method in METHODS[1:]:
        other = np.load(out / f"top-{method}.npy")
        same_set = sum(set(a.tolist()) == set(b.tolist()) for a, b in zip(ref, other))
        result[method] = {"same_set": int(same_set), "same_order": int((ref == other).all(axis=1).sum())}
    return result


def main() -> None:
    parser = benchmark_parser(__doc__, out="fusion-scale")
    parser.add_argument("--passages", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--size", default="tiny", help="Bootstrap BERT size of the DPR.")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--memory-mb", type=float, default=64, help="odqa's cross whole scratch budget.")
    parser.add_argument("--rebuild", action="store_true", help="Rebuild the indexes even if --out has them.")
    parser.add_argument("--measure", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        **run_header("plugins/odqa-fusion/odqa_fusion", "numpy", "torch", "faiss-cpu", "numba"),
        "args": vars(args),
    }
    stamp = out / "built.json"
    if (
        args.rebuild
        or not stamp.is_file()
        or json.loads(stamp.read_text()).get("args") != [args.passages, args.queries, args.vocab, args.size]
    ):
        info = build(args)
        stamp.write_text(json.dumps({"args": [args.passages, args.queries, args.vocab, args.size], "info": info}))
    results["data"] = json.loads(stamp.read_text())["info"]
    print(json.dumps(results["data"]), flush=True)

    env = {**os.environ, "ODQA_PROGRESS": "0", "TOKENIZERS_PARALLELISM": "false"}
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for rep in range(args.reps):
        for method in METHODS:
            cmd = [sys.executable, __file__, "--measure", method, "--out", str(out), "--k", str(args.k)]
            cmd += ["--memory-mb", str(args.memory_mb)]
            line = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.strip()
            row = json.loads(line.splitlines()[-1])
            runs[method].append(row)
            print(
                f"rep {rep + 1} {method}: {row['seconds']:.2f} s, peak +{row['peak_over_before_mb']:.0f} MB",
                flush=True,
            )
    results["runs"] = runs
    results["agreement"] = agreement(out)
    summary = {
        m: {
            "seconds": median([r["seconds"] for r in runs[m]]),
            "peak_over_before_mb": median([r["peak_over_before_mb"] for r in runs[m]]),
            "peak_mb": median([r["peak_mb"] for r in runs[m]]),
            "rss_before_mb": median([r["rss_before_mb"] for r in runs[m]]),
        }
        for m in METHODS
    }
    results["summary"] = summary
    write_json(args.out, "fusion_scale.json", results)
    print(render(results))


def render(results: dict[str, Any]) -> str:
    s, agree = results["summary"], results["agreement"]
    n_q = results["data"]["queries"]
    rows = []
    labels = {
        "naive": "naive: full matrices + full argsort (the template)",
        "naive-argpartition": "full matrices + argpartition top-k",
        "odqa": "**odqa** `cross` whole (blocks)",
    }
    for m in METHODS:
        same = (
            "(reference)" if m == "naive" else f"{agree[m]['same_set']}/{n_q} ({agree[m]['same_order']} same order)"
        )
        rows.append(
            [
                labels[m],
                f"{s[m]['seconds']:.2f}",
                f"{s[m]['seconds'] / s['naive']['seconds']:.2f}",
                f"{s[m]['peak_over_before_mb']:.0f}",
                f"{s[m]['peak_over_before_mb'] / s['naive']['peak_over_before_mb']:.3f}",
                f"{s[m]['rss_before_mb']:.0f}",
                f"{s[m]['peak_mb']:.0f}",
                same,
            ]
        )
    header = [
        "method",
        "s (median)",
        "× naive time",
        "peak RSS over start MB",
        "× naive peak",
        "RSS at start MB",
        "process peak MB",
        "top-100 = naive's",
    ]
    ratio_mem = s["odqa"]["peak_over_before_mb"] / s["naive"]["peak_over_before_mb"]
    ratio_time = s["odqa"]["seconds"] / s["naive"]["seconds"]
    lines = [markdown_table(header, rows), ""]
    lines.append(
        f"- odqa peak / naive peak = {ratio_mem:.3f} (target <= 0.1: {'met' if ratio_mem <= 0.1 else 'missed'})"
    )
    lines.append(
        f"- odqa time / naive time = {ratio_time:.2f} (target <= 1: {'met' if ratio_time <= 1 else 'missed'})"
    )
    block = results["runs"]["odqa"][0]["block"]
    lines.append(f"- odqa block: {block} questions per block (memory_mb {results['args']['memory_mb']:g})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
