"""DPR on KorQuAD 1.0 dev: per-epoch and per-fold retrieval accuracy of bootstrap bi-encoders, BM25 beside them.

Question answered: "how good is a DPR model I can train here, with no pretrained model, and how does it compare
with BM25 — by model size, by epoch, by fold?" Conventions of ../shared/data/korquad/README.md:

- train on the questions of the first 100 articles (file order), evaluate on the questions of the last 40;
  retrieval always searches the full corpus;
- document level: the distinct paragraph contexts, a hit is the question's own context;
- passage level: consecutive 30-word windows, a hit is a passage containing an answer string.

Models are trained on the passage-level corpus (positive: the window of the gold context that contains the
answer; one BM25 hard negative per question, in-batch negatives) with the odqa offline bootstrap (a WordPiece
tokenizer trained on the corpus and a randomly initialised BERT), then evaluated after every epoch on both levels
(document level encodes each whole context, up to ``--doc-max-length`` tokens).

K-fold (the competition's "folds 1-5 × epochs 1-2"): 5 folds over the training questions (grouped by context),
each fold's held-out questions select its epoch, and every fold is also evaluated on the 40-article split.

Everything is written to ``--out`` (scratch; nothing to the repository): checkpoints, ``report.json`` per run
and ``korquad_dense.json`` with every number printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    DEFAULT_OUT,
    command_line,
    machine,
    markdown_table,
    require_korquad,
    source_state,
    versions,
    write_json,
)

KS = (1, 5, 20, 100)


def load_split(path: Path) -> tuple[list, list, list, list]:
    from odqa_core import data

    docs = data.load_corpus(path)
    passages = data.split_passages(docs, 30)
    questions = data.load_questions(path)
    train = [q for q in questions if q.metadata["article"] < 100]
    test = [q for q in questions if q.metadata["article"] >= 100]
    return docs, passages, train, test


def metrics_row(report_metrics: dict[str, dict[str, float]], hit: str) -> dict[str, float]:
    m = report_metrics[hit]
    return {**{f"acc@{k}": m[f"acc@{k}"] for k in KS}, "mrr@10": m.get("mrr@10", float("nan"))}


def bm25_rows(docs: list, passages: list, test: list) -> list[dict[str, Any]]:
    from odqa_core import plugins
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results

    rows = []
    for label, options in (
        ("bm25 okapi, regex words", {}),
        ("bm25 lucene, char bigrams", {"variant": "lucene", "analyzer": "char-ngram", "analyzer_options": {"n": 2}}),
    ):
        for level, corpus, hit in (("document", docs, "doc"), ("passage", passages, "answer")):
            retriever = plugins.create("retriever", "bm25", options)
            retriever.index(corpus)
            results = retriever.search([q.text for q in test], 100)
            report = evaluate_retrieval(test, hits_from_results(results), (*KS, 10)).to_json()
            rows.append({"model": label, "level": level, **metrics_row(report["metrics"], hit)})
    return rows


def eval_levels(encoder: Any, config: Any, docs: list, passages: list, test: list, doc_max_length: int) -> dict:
    from odqa_dense.training import evaluate_encoder

    cfg = dataclasses.replace(config, eval_ks=(*KS, 10))
    doc_cfg = dataclasses.replace(cfg, passage_max_length=doc_max_length)
    return {
        "document": metrics_row(evaluate_encoder(encoder, docs, test, doc_cfg)["metrics"], "doc"),
        "passage": metrics_row(evaluate_encoder(encoder, passages, test, cfg)["metrics"], "answer"),
    }


def add_ict_rows(
    results: dict, out: Path, docs: list, passages: list, test: list, args: Any, config_for: Any
) -> None:
    """Both levels after the Inverse Cloze Task alone (before any supervised epoch), per size."""
    from odqa_dense.encoder import BiEncoder

    for size in results.get("epochs", {}):
        last = out / f"epochs-{size}" / "ict" / "last"
        if last.is_dir():
            encoder = BiEncoder.load(str(last))
            levels = eval_levels(encoder, config_for(size, 1), docs, passages, test, args.doc_max_length)
            results.setdefault("ict", {})[size] = levels
            print(f"[{size}] after ICT: " + json.dumps(levels), flush=True)


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def render_markdown(results: dict[str, Any]) -> str:
    """The tables of RESULTS.md from the JSON this script writes."""
    cols = ["top-1", "top-5", "top-20", "top-100", "MRR@10"]
    keys = ["acc@1", "acc@5", "acc@20", "acc@100", "mrr@10"]
    out = []
    for level in ("document", "passage"):
        rows = [[r["model"], "-", *(pct(r[k]) for k in keys)] for r in results.get("bm25", []) if r["level"] == level]
        for size, run in results.get("epochs", {}).items():
            if size in results.get("ict", {}):
                rows.append(
                    [f"DPR bootstrap {size}, ICT only", 0, *(pct(results["ict"][size][level][k]) for k in keys)]
                )
            for row in run["per_epoch"]:
                rows.append([f"DPR bootstrap {size}", row["epoch"], *(pct(row[level][k]) for k in keys)])
        out.append(f"**{level} level** (evaluation questions of the last 40 articles, full corpus)\n")
        out.append(markdown_table(["model", "epoch", *cols], rows) + "\n")
    folds = results.get("folds")
    if folds:
        rows = [
            [
                r["fold"],
                r["epoch"],
                pct(r["held_out"]),
                *(pct(r["document"][k]) for k in keys[:4]),
                *(pct(r["passage"][k]) for k in keys[:4]),
            ]
            for r in folds["per_fold_epoch"]
        ]
        header = ["fold", "epoch", "held-out passage top-20"]
        header += [f"doc {c}" for c in cols[:4]] + [f"passage {c}" for c in cols[:4]]
        out.append(
            f"**{len({r['fold'] for r in folds['per_fold_epoch']})} folds × epochs, bootstrap {folds['size']}**\n"
        )
        out.append(markdown_table(header, rows) + "\n")
        out.append(
            f"held-out top-20 of each fold's best epoch: mean {pct(folds['held_out_mean'])}, "
            f"std {pct(folds['held_out_std'])}; best fold {folds['best_fold']}\n"
        )
    times = [
        f"{size}: {run['n_train']} training examples, {', '.join(f'{t:.0f}' for t in run['train_s'])} s per epoch "
        f"(training only), losses {', '.join(f'{x:.3f}' for x in run['loss'])}"
        for size, run in results.get("epochs", {}).items()
    ]
    if times:
        out.append("\n".join(f"- {t}" for t in times) + "\n")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--korquad", default=None)
    parser.add_argument("--out", default=f"{DEFAULT_OUT}/dense")
    parser.add_argument("--sizes", default="tiny,mini", help="Bootstrap sizes for the per-epoch runs.")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5, help="0 skips the k-fold part.")
    parser.add_argument("--fold-epochs", type=int, default=2)
    parser.add_argument("--fold-size", default="tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--ict-epochs", type=int, default=None, help="Default: the trainer's (3 for bootstrap).")
    parser.add_argument("--pooling", default=None, help="Default: the trainer's (mean for a bootstrap model).")
    parser.add_argument("--passage-max-length", type=int, default=128)
    parser.add_argument("--doc-max-length", type=int, default=384)
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-bm25", action="store_true")
    parser.add_argument("--render", default=None, help="Only print the Markdown tables of a korquad_dense.json.")
    parser.add_argument(
        "--ict-rows-only",
        action="store_true",
        help="Only evaluate the ICT-pretrained checkpoints (OUT/epochs-SIZE/ict/last) of a finished run and add "
        "them to OUT/korquad_dense.json as epoch 0.",
    )
    args = parser.parse_args()
    if args.render:
        print(render_markdown(json.loads(Path(args.render).read_text())))
        return

    path = require_korquad(args.korquad)
    if path is None:
        return
    from odqa_dense.training import TrainConfig, train_dpr

    out = Path(args.out)
    docs, passages, train, test = load_split(path)
    results: dict[str, Any] = {
        "command": command_line(),
        "machine": machine(),
        "versions": versions("torch", "transformers", "faiss-cpu", "tokenizers"),
        "source": source_state("plugins/odqa-dense/odqa_dense"),
        "data": {"documents": len(docs), "passages": len(passages), "train_q": len(train), "test_q": len(test)},
        "args": vars(args),
    }
    print(json.dumps(results["data"]), flush=True)

    if not args.skip_bm25 and not args.ict_rows_only:
        results["bm25"] = bm25_rows(docs, passages, test)
        print(markdown_table(list(results["bm25"][0]), [list(r.values()) for r in results["bm25"]]), flush=True)

    def config_for(size: str, epochs: int, folds: int = 1) -> TrainConfig:
        return TrainConfig(
            bootstrap_size=size,
            vocab_size=args.vocab_size,
            epochs=epochs,
            lr=args.lr,
            pooling=args.pooling,
            ict_epochs=args.ict_epochs,
            batch_size=args.batch_size,
            hard_negatives=1,
            passage_max_length=args.passage_max_length,
            query_max_length=64,
            folds=folds,
            keep_folds="all",
            device=args.device,
            eval_ks=KS,
            seed=42,
        )

    if args.ict_rows_only:
        results = json.loads((out / "korquad_dense.json").read_text())
        add_ict_rows(results, out, docs, passages, test, args, config_for)
        write_json(args.out, "korquad_dense.json", results)
        print(render_markdown(results))
        return

    results["epochs"] = {}
    for size in [s for s in args.sizes.split(",") if s]:
        config = config_for(size, args.epochs)
        per_epoch: list[dict[str, Any]] = []

        def on_epoch(fold: int, epoch: int, encoder: Any, config=config, per_epoch=per_epoch, size=size) -> dict:
            levels = eval_levels(encoder, config, docs, passages, test, args.doc_max_length)
            per_epoch.append({"epoch": epoch, **levels})
            print(f"[{size}] epoch {epoch}: " + json.dumps(levels), flush=True)
            return levels

        started = time.perf_counter()
        report = train_dpr(passages, train, config, out / f"epochs-{size}", dev_questions=test, on_epoch=on_epoch)
        results["epochs"][size] = {
            "per_epoch": per_epoch,
            "train_s": [e["train_s"] for e in report["epochs"]],
            "loss": [e["loss"] for e in report["epochs"]],
            "n_train": report["n_train"],
            "wall_s": round(time.perf_counter() - started, 1),
        }
        add_ict_rows(results, out, docs, passages, test, args, config_for)
        write_json(args.out, "korquad_dense.json", results)

    if args.folds > 1:
        config = config_for(args.fold_size, args.fold_epochs, args.folds)
        per_fold: list[dict[str, Any]] = []

        def on_fold_epoch(fold: int, epoch: int, encoder: Any) -> dict:
            levels = eval_levels(encoder, config, docs, passages, test, args.doc_max_length)
            per_fold.append({"fold": fold, "epoch": epoch, **levels})
            print(f"[fold {fold}] epoch {epoch}: " + json.dumps(levels), flush=True)
            return levels

        started = time.perf_counter()
        report = train_dpr(passages, train, config, out / "folds", dev_questions=test, on_epoch=on_fold_epoch)
        for row in per_fold:
            fold_report = report["folds"][row["fold"] - 1]
            row["held_out"] = fold_report["epochs"][row["epoch"] - 1]["metric"]
        results["folds"] = {
            "size": args.fold_size,
            "per_fold_epoch": per_fold,
            "best_fold": report["best_fold"],
            "held_out_mean": report["metric_mean"],
            "held_out_std": report["metric_std"],
            "wall_s": round(time.perf_counter() - started, 1),
        }
    write_json(args.out, "korquad_dense.json", results)
    markdown = render_markdown(results)
    (out / "korquad_dense.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
