"""Fusion on KorQuAD 1.0 dev: BM25, DPR, sequential reranking, cross (whole / union, each normalization), RRF.

Question answered: "does fusing BM25 with a DPR model help on Korean, which fusion, and with which λ?" Conventions
of ../shared/data/korquad/README.md and the DPR benchmark (``korquad_dense.py``):

- the DPR is trained on the questions of the first 100 articles and everything is evaluated on the questions of
  the last 40 (1,719), always against the full corpus;
- document level: the 961 distinct contexts (DPR encodes each whole, up to ``--doc-max-length`` 384 tokens),
  a hit is the question's own context; passage level: 4,286 30-word windows, a hit is an answer string;
- DPR: the offline bootstrap of ``korquad_dense.py`` (WordPiece on the contexts + BERT ``tiny``, ICT 3 epochs,
  then ``--epochs`` 1 supervised epoch — that benchmark's best tiny epoch), or ``--model PATH``;
- BM25: okapi with ``\\w+`` words (the competition template's) and lucene with character bigrams (the best
  sparse setting of ``korquad_retrieval.py``); every fused row is computed for each.

Rows: each retriever alone; ``sequential`` (BM25 top 100 → DPR); ``cross`` ``whole`` and ``union`` (depth 2000,
missing = list minimum) with λ = 1.1 on DPR and each normalization (and, z-scored, the other two missing-score
policies); ``rrf`` (k = 60, depth 1000); and
``cross`` ``whole`` with λ and normalization **tuned on the training questions** with ``odqa_experiments.tuning``
(the evaluation questions never choose a setting). A second table shows λ's effect on the evaluation questions.
Metrics: top-1/5/20/100 accuracy and MRR@10.

Everything goes to ``--out`` (scratch): the DPR checkpoint and indexes, ``korquad_fusion.json``, the Markdown.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BM25_LUCENE_BIGRAMS,
    benchmark_parser,
    import_now,
    korquad_split,
    markdown_table,
    print_rendered,
    require_korquad,
    run_header,
    show_markdown,
    train_korquad_dpr,
    write_json,
)

KS = (1, 5, 10, 20, 100)
SHOWN = ("acc@1", "acc@5", "acc@20", "acc@100", "mrr@10")
SPARSE = {"okapi words": {}, "lucene bigrams": BM25_LUCENE_BIGRAMS}
NORMALIZATIONS = ("none", "min-max", "z-score")
LAMBDAS = (0.0, 0.01, 0.03, 0.1, 0.3, 0.5, 1.0, 1.1, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)


def fused_rows(level: str, corpus: list, test: list, train: list, model: str, args: Any, out: dict) -> None:
    from odqa_experiments.tuning import CachedRetriever, tune_fuser

    from odqa_core import plugins
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results
    from odqa_core.pipeline import retrieve

    hit = "doc" if level == "document" else "answer"
    max_length = args.doc_max_length if level == "document" else 128
    t0 = time.perf_counter()
    dpr = plugins.create(
        "retriever", "dpr", {"model": model, "passage_max_length": max_length, "device": args.device}
    )
    dpr.index(corpus)
    dense = CachedRetriever(dpr)
    print(f"[{level}] DPR index: {time.perf_counter() - t0:.0f} s", flush=True)

    def evaluate(label: str, sparse_label: str, fuser: str | None, options: dict, retrievers: list) -> dict:
        started = time.perf_counter()
        component = plugins.create("fuser", fuser, options) if fuser else None
        results = retrieve(retrievers, component, test, 100, bar=False)
        metrics = evaluate_retrieval(test, hits_from_results(results), KS).metrics[hit]
        row = {
            "level": level,
            "sparse": sparse_label,
            "method": label,
            "fuser": fuser,
            "options": options,
            **{m: metrics[m] for m in SHOWN},
            "seconds": round(time.perf_counter() - started, 2),
        }
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
        return row

    evaluate("dpr", "-", None, {}, [dense])
    for sparse_label, options in SPARSE.items():
        bm25 = plugins.create("retriever", "bm25", options)
        bm25.index(corpus)
        sparse = CachedRetriever(bm25)
        pair = [sparse, dense]
        evaluate("bm25", sparse_label, None, {}, [sparse])
        evaluate("sequential (bm25 top-100 → dpr)", sparse_label, "sequential", {"candidates": 100}, pair)
        for mode in ("whole", "union"):
            for norm in NORMALIZATIONS:
                opts = {"mode": mode, "normalization": norm, "lam": 1.1, "lam_on": "dpr"}
                if mode == "union":
                    opts.update(depth=2000, missing="min")
                evaluate(f"cross {mode}, λ 1.1, {norm}", sparse_label, "cross", opts, pair)
        for missing in ("zero", "exact"):  # the other missing-score policies, with z-scores
            opts = {"mode": "union", "normalization": "z-score", "lam": 1.1, "lam_on": "dpr", "depth": 2000}
            evaluate(
                f"cross union, λ 1.1, z-score, missing {missing}",
                sparse_label,
                "cross",
                {**opts, "missing": missing},
                pair,
            )
        evaluate("rrf (k 60)", sparse_label, "rrf", {"rrf_k": 60, "depth": 1000}, pair)

        # λ and normalization tuned on the training questions, then evaluated on the test questions.
        started = time.perf_counter()
        grid = {"lam": list(LAMBDAS), "normalization": list(NORMALIZATIONS)}
        tuned = tune_fuser(
            "cross", {"mode": "whole", "lam_on": "dpr"}, grid, pair, train, metric="acc@20", hit=hit, ks=KS
        )
        best = tuned.best["options"]
        out["tuning"].append(
            {
                "level": level,
                "sparse": sparse_label,
                "best": best,
                "train_metric": tuned.best["metrics"]["acc@20"],
                "seconds": round(time.perf_counter() - started, 1),
                "cells": tuned.cells,
            }
        )
        print(f"[{level} / {sparse_label}] tuned on train: {best} ({tuned.best['metrics']['acc@20']:.4f})")
        label = f"cross whole, tuned on train: λ {best['lam']:g}, {best['normalization']}"
        evaluate(label, sparse_label, "cross", best, pair)

        # λ sensitivity on the evaluation questions (for reading, not for choosing)
        sweep = tune_fuser(
            "cross", {"mode": "whole", "lam_on": "dpr"}, grid, pair, test, metric="acc@20", hit=hit, ks=KS
        )
        out["sensitivity"].append(
            {
                "level": level,
                "sparse": sparse_label,
                "cells": [{"options": c["options"], **c["metrics"]} for c in sweep.cells],
            }
        )


def render(results: dict[str, Any]) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = []
    for level in ("document", "passage"):
        rows = [r for r in results["rows"] if r["level"] == level]
        table = [[r["method"], r["sparse"], *(pct(r[m]) for m in SHOWN)] for r in rows]
        lines.append(f"**{level} level** (evaluation questions of the last 40 articles, full corpus)\n")
        lines.append(markdown_table(["method", "BM25", "top-1", "top-5", "top-20", "top-100", "MRR@10"], table))
        lines.append("")
    lines.append("**λ on the evaluation questions** (cross whole, λ on DPR; top-20 accuracy)\n")
    header = ["level", "BM25", "normalization", *(f"λ {lam:g}" for lam in LAMBDAS)]
    table = []
    for sens in results["sensitivity"]:
        for norm in NORMALIZATIONS:
            by_lam = {
                c["options"]["lam"]: c["acc@20"] for c in sens["cells"] if c["options"]["normalization"] == norm
            }
            table.append([sens["level"], sens["sparse"], norm, *(pct(by_lam[lam]) for lam in LAMBDAS)])
    lines.append(markdown_table(header, table))
    lines.append("")
    for t in results["tuning"]:
        lines.append(
            f"- tuned on the {results['data']['train_q']} training questions ({t['level']}, {t['sparse']}): "
            f"λ {t['best']['lam']:g}, {t['best']['normalization']} (train top-20 {pct(t['train_metric'])}; "
            f"{len(t['cells'])} cells in {t['seconds']:.0f} s)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="fusion", render="korquad_fusion.json")
    parser.add_argument("--model", default=None, help="A DPR checkpoint to use instead of training the bootstrap.")
    parser.add_argument("--size", default="tiny", help="Bootstrap size when training.")
    parser.add_argument("--epochs", type=int, default=1, help="Supervised epochs after ICT when training.")
    parser.add_argument("--doc-max-length", type=int, default=384)
    parser.add_argument("--levels", default="document,passage")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if print_rendered(args, render):
        return
    path = require_korquad(args.korquad)
    if path is None:
        return
    import_now(
        "odqa_dense.retriever",
        "odqa_dense.training",
        "odqa_experiments.tuning",
        "odqa_fusion.fusers",
        "odqa_sparse.retrievers",
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs, passages, train, test = korquad_split(path)
    results: dict[str, Any] = {
        **run_header("plugins/odqa-fusion/odqa_fusion", "torch", "transformers", "faiss-cpu", "numba"),
        "data": {"documents": len(docs), "passages": len(passages), "train_q": len(train), "test_q": len(test)},
        "args": vars(args),
        "rows": [],
        "tuning": [],
        "sensitivity": [],
    }
    started = time.perf_counter()
    model = args.model or train_korquad_dpr(
        passages, train, test, out, size=args.size, epochs=args.epochs, device=args.device
    )
    results["model"] = model
    results["train_s"] = round(time.perf_counter() - started, 1)
    for level in args.levels.split(","):
        corpus = docs if level == "document" else passages
        fused_rows(level, corpus, test, train, model, args, results)
        write_json(args.out, "korquad_fusion.json", results)
    show_markdown(out, "korquad_fusion.md", render(results))


if __name__ == "__main__":
    main()
