"""Readers on KorQuAD 1.0 dev: EM/F1 given the gold passage, BM25 top-k and cross-fusion top-k; retrieved-passage
training; extractive against generative (Fusion-in-Decoder); each postprocessor on and off; questions per second.

Conventions of ../shared/data/korquad/README.md:

- readers train on the questions of the first 100 articles and are evaluated on those of the last 40 (1,719);
  retrieval searches the full corpus;
- the corpus is the passage level: every context cut into 30-word windows (4,286); "gold passage" = the passage of
  the question's own context that holds the answer;
- EM / F1 exactly as the official KorQuAD 1.0 script (character F1), through ``odqa_core.qa_metrics``;
- BM25 = lucene with character bigrams (the best sparse setting of korquad_retrieval.py); cross = that BM25 +
  1.1 × the bootstrap tiny DPR of korquad_fusion.py (``--dpr-model``, else trained here the same way).

Readers, all offline bootstraps (WordPiece on the corpus + a randomly initialised model; no pretrained Korean model
exists on this machine): extractive BERT ``--size`` trained on gold passages only; the same trained with
``--retrieved`` BM25 passages per question added (no-answer when they lack the answer); generative T5 in
Fusion-in-Decoder mode trained on gold + retrieved passages. Each reader's epoch is chosen by F1 on 300 training
questions held out by article (never on the evaluation questions). Every reading row reports questions per second
(reading only; retrieval excluded) on this CPU.

Everything goes to ``--out`` (scratch): indexes, checkpoints, ``korquad_reader.json`` and the Markdown.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BM25_LUCENE_BIGRAMS,
    FUSION_DPR,
    benchmark_parser,
    best_answer_report,
    epoch_selection_split,
    import_now,
    korquad_split,
    markdown_table,
    print_rendered,
    require_korquad,
    run_header,
    show_markdown,
    top_k,
    train_korquad_dpr,
    write_json,
)

POSTS = ("clean", "strip-particles", "vote")


def retrieval(passages: list, train: list, test: list, dpr_model: str, args: Any) -> dict[str, Any]:
    """BM25 and cross top-k of the evaluation questions, BM25 top-N of the training questions."""
    from odqa_core import plugins
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results
    from odqa_core.pipeline import retrieve

    k = max(args.ks)
    bm25 = plugins.create("retriever", "bm25", BM25_LUCENE_BIGRAMS)
    bm25.index(passages)
    dpr = plugins.create("retriever", "dpr", {"model": dpr_model, "passage_max_length": 128, "device": args.device})
    dpr.index(passages)
    cross = plugins.create("fuser", "cross", {"lam": 1.1})
    out = {
        "bm25": retrieve([bm25], None, test, k, bar=False),
        "cross": retrieve([bm25, dpr], cross, test, k, bar=False),
        "train_bm25": retrieve([bm25], None, train, args.retrieved, bar=False) if args.retrieved else None,
    }
    out["accuracy"] = {
        name: {
            m: round(100 * v, 2)
            for m, v in evaluate_retrieval(test, hits_from_results(out[name]), args.ks).metrics["answer"].items()
            if m.startswith("acc@")
        }
        for name in ("bm25", "cross")
    }
    return out


def read_row(reader: Any, questions: list, results: Any, n_best: int = 10) -> tuple[dict[str, Any], list]:
    started = time.perf_counter()
    nbest = reader.read(questions, results, n_best=n_best)
    seconds = time.perf_counter() - started
    report = best_answer_report(questions, nbest)
    row = {"em": round(report.exact_match, 2), "f1": round(report.f1, 2), "qps": round(len(questions) / seconds, 1)}
    return row, nbest


def post_rows(questions: list, nbest: list) -> dict[str, dict[str, float]]:
    """EM/F1 after each postprocessor alone and after all of them chained, from the same n-best lists."""
    from odqa_core import plugins

    rows = {}
    for chain in [*([p] for p in POSTS), list(POSTS)]:
        posts = [plugins.create("postprocessor", name) for name in chain]
        processed = []
        for q, preds in zip(questions, nbest):
            for post in posts:
                preds = post.process(q, preds)
            processed.append(preds)
        report = best_answer_report(questions, processed)
        rows["+".join(chain)] = {"em": round(report.exact_match, 2), "f1": round(report.f1, 2)}
    return rows


def train(name: str, passages: list, train_qs: list, dev_qs: list, out: Path, args: Any, **settings: Any) -> str:
    from odqa_readers.training import parse_reader_config, train_reader

    run = out / name
    if (run / "report.json").is_file() and json.loads((run / "report.json").read_text()).get("done"):
        return str(run / "best")  # trained by an earlier run of this script
    if run.exists():
        shutil.rmtree(run)  # an interrupted training: start it again
    retrieved = settings.pop("retrieved_results", None)
    base = {
        "bootstrap_size": args.size,
        "vocab_size": 16000,
        "batch_size": 32,
        "device": args.device,
        "seed": 42,
    }
    config = parse_reader_config({**base, **settings})
    started = time.perf_counter()
    train_reader(passages, train_qs, config, run, dev_questions=dev_qs, retrieved=retrieved)
    report = json.loads((run / "report.json").read_text())
    report["wall_s"] = round(time.perf_counter() - started, 1)
    (run / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return str(run / "best")


def pct(x: Any) -> str:
    return "—" if x is None else f"{x:.1f}"


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, no GPU; "
        f"{results['machine']['date_utc']}. Command: `{results['command']}`. Code: {results['source']}.",
        "",
        f"Data: {results['data']['passages']} passages; {results['data']['train_q']} training questions (first "
        f"100 articles, {results['data']['dev_q']} of them held out for epoch selection), "
        f"{results['data']['test_q']} evaluation questions (last 40 articles).",
        "",
        "Retrieval, answer-containing passage in the top k: "
        + "; ".join(
            f"{name} " + ", ".join(f"{m} {v:.1f}" for m, v in acc.items())
            for name, acc in results["retrieval"].items()
        ),
        "",
    ]
    header = ["reader", "trained on", "epochs (best)", "train s", "gold EM/F1"]
    ks = results["args"]["ks"]
    for source in ("bm25", "cross"):
        header += [f"{source} top-{k}" for k in ks]
    rows = []
    for r in results["readers"]:
        row = [r["reader"], r["trained_on"], f"{r['epochs']} ({r['best_epoch']})", r["train_s"]]
        row.append(f"{pct(r['gold']['em'])} / {pct(r['gold']['f1'])}")
        for source in ("bm25", "cross"):
            for k in ks:
                cell = r[source].get(str(k))
                row.append(f"{pct(cell['em'])} / {pct(cell['f1'])}" if cell else "—")
        rows.append(row)
    lines += ["EM / F1 (%) on the evaluation questions:", "", markdown_table(header, rows), ""]
    header = ["reader", "gold q/s"] + [f"{s} top-{k} q/s" for s in ("bm25", "cross") for k in ks]
    rows = [
        [r["reader"] + f" ({r['trained_on']})", r["gold"]["qps"]]
        + [r[s].get(str(k), {}).get("qps", "—") for s in ("bm25", "cross") for k in ks]
        for r in results["readers"]
    ]
    lines += [
        "Reading speed (questions per second, reading only, 2 CPU cores):",
        "",
        markdown_table(header, rows),
        "",
    ]
    header = ["reader", "input", "none"] + ["+".join([p]) for p in POSTS] + ["+".join(POSTS)]
    rows = []
    for r in results["readers"]:
        for label, post in r["post"].items():
            base = post["none"]
            cells = [f"{base['em']:.1f} / {base['f1']:.1f}"]
            for chain in [*POSTS, "+".join(POSTS)]:
                v = post[chain]
                cells.append(
                    f"{v['em']:.1f} / {v['f1']:.1f} ({v['em'] - base['em']:+.1f} / {v['f1'] - base['f1']:+.1f})"
                )
            rows.append([r["reader"] + f" ({r['trained_on']})", label, *cells])
    lines += ["Postprocessors (EM / F1, change against none):", "", markdown_table(header, rows)]
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="reader", render="korquad_reader.json")
    parser.add_argument("--dpr-model", default=None, help="DPR checkpoint for cross (default: korquad_fusion's).")
    parser.add_argument("--size", default="tiny", help="Bootstrap size of every reader.")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--gen-epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--retrieved", type=int, default=2, help="BM25 passages per question in retrieved training.")
    parser.add_argument("--cloze", type=int, default=1, help="Cloze questions per passage for generative-cloze.")
    parser.add_argument("--ks", default="1,5,10,20")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument(
        "--readers",
        default="extractive,extractive-retrieved,generative",
        help="Also: extractive-dpr, extractive-retrieved-null, extractive-dpr-null, generative-cloze.",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=None, help="Smoke test: only this many questions per split.")
    args = parser.parse_args()
    args.ks = [int(k) for k in args.ks.split(",")]
    if print_rendered(args, render):
        return
    path = require_korquad(args.korquad)
    if path is None:
        return
    import_now(
        "odqa_dense.retriever",
        "odqa_dense.training",
        "odqa_fusion.fusers",
        "odqa_postprocess.postprocessors",
        "odqa_readers.extractive",
        "odqa_readers.generative",
        "odqa_readers.training",
        "odqa_sparse.retrievers",
    )
    from odqa_core import plugins
    from odqa_core.data import gold_results

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, passages, train_qs, test = korquad_split(path)
    fit, dev = epoch_selection_split(train_qs)
    if args.limit:
        dev, fit, test = dev[: args.limit], fit[: args.limit], test[: args.limit]
    results: dict[str, Any] = {
        **run_header("plugins/odqa-readers/odqa_readers", "torch", "transformers", "tokenizers"),
        "data": {"passages": len(passages), "train_q": len(train_qs), "dev_q": len(dev), "test_q": len(test)},
        "args": vars(args),
        "readers": [],
    }
    fusion_dpr = Path(FUSION_DPR)
    dpr_model = args.dpr_model or (
        str(fusion_dpr)
        if (fusion_dpr / "manifest.json").is_file()
        else train_korquad_dpr(passages, train_qs, test, out, device=args.device)
    )
    results["dpr_model"] = dpr_model
    t0 = time.perf_counter()
    ret = retrieval(passages, fit, test, dpr_model, args)
    results["retrieval"] = ret["accuracy"]
    results["retrieval_s"] = round(time.perf_counter() - t0, 1)
    print("retrieval:", ret["accuracy"], flush=True)
    gold = gold_results(test, passages)
    windows = {"max_length": args.max_length, "doc_stride": args.max_length // 2}
    plans = {
        "extractive": (
            "extractive",
            "gold passages",
            {"reader": "extractive", "epochs": args.epochs, "reader_options": windows, "lr": args.lr},
        ),
        "extractive-retrieved": (
            "extractive",
            f"gold + BM25 top-{args.retrieved}",
            {
                "reader": "extractive",
                "epochs": args.epochs,
                "reader_options": windows,
                "lr": args.lr,
                "retrieved_results": ret["train_bm25"],
            },
        ),
        "extractive-dpr": (
            "extractive, from the DPR encoder",
            f"gold + BM25 top-{args.retrieved}",
            {
                "reader": "extractive",
                "epochs": args.epochs,
                "reader_options": windows,
                "lr": args.lr,
                "model": dpr_model,
                "retrieved_results": ret["train_bm25"],
            },
        ),
        # The same trained models read with spans scored relative to the window's no-answer score.
        "extractive-retrieved-null": (
            "extractive, score minus-null",
            f"gold + BM25 top-{args.retrieved}",
            {"reuse": "extractive-retrieved", "read": {"score": "minus-null"}},
        ),
        "extractive-dpr-null": (
            "extractive, from the DPR encoder, score minus-null",
            f"gold + BM25 top-{args.retrieved}",
            {"reuse": "extractive-dpr", "read": {"score": "minus-null"}},
        ),
        "generative": (
            "generative (FiD)",
            f"gold + BM25 top-{args.retrieved}",
            {
                "reader": "generative",
                "epochs": args.gen_epochs,
                "lr": args.lr,
                "reader_options": {"mode": "fid", "max_length": args.max_length},
                "retrieved_results": ret["train_bm25"],
            },
        ),
        "generative-cloze": (
            "generative (FiD)",
            f"gold + BM25 top-{args.retrieved} + {args.cloze} cloze / passage",
            {
                "reader": "generative",
                "epochs": args.gen_epochs,
                "lr": args.lr,
                "reader_options": {"mode": "fid", "max_length": args.max_length},
                "retrieved_results": ret["train_bm25"],
                "cloze": args.cloze,
            },
        ),
    }
    previous = out / "korquad_reader.json"
    if previous.is_file():  # rows of readers this run does not redo are kept (a later --readers adds to them)
        kept = json.loads(previous.read_text())["readers"]
        wanted = {plans[name][:2] for name in args.readers.split(",")}
        results["readers"] = [r for r in kept if (r["reader"], r["trained_on"]) not in wanted]
    for name in args.readers.split(","):
        label, trained_on, settings = plans[name]
        read_options = settings.get("read", {})
        if "reuse" in settings:
            settings = plans[settings["reuse"]][2]
            name = next(k for k, v in plans.items() if v[2] is settings)
        started = time.perf_counter()
        model = train(name, passages, fit, dev, out, args, **dict(settings))
        report = json.loads((Path(model).parent / "report.json").read_text())
        print(f"{name}: trained in {time.perf_counter() - started:.0f} s", flush=True)
        reader = plugins.create("reader", settings["reader"], {"model": model, "device": args.device, **read_options})
        reader.warm_up()
        row: dict[str, Any] = {
            "reader": label,
            "trained_on": trained_on,
            "model": model,
            "epochs": len(report["epochs"]),
            "best_epoch": report["best"]["epoch"],
            "train_s": report.get("wall_s", sum(e["train_s"] for e in report["epochs"])),
            "history": report["epochs"],
            "post": {},
        }
        row["gold"], gold_nbest = read_row(reader, test, gold)
        row["post"]["gold passage"] = {
            "none": {k: row["gold"][k] for k in ("em", "f1")},
            **post_rows(test, gold_nbest),
        }
        for source in ("bm25", "cross"):
            row[source] = {}
            for k in args.ks:
                row[source][str(k)], nbest = read_row(reader, test, top_k(ret[source], k))
                if source == "bm25" and k == 5:
                    none = {m: row[source][str(k)][m] for m in ("em", "f1")}
                    row["post"]["BM25 top-5"] = {"none": none, **post_rows(test, nbest)}
                print(f"{name} {source} top-{k}: {row[source][str(k)]}", flush=True)
        results["readers"].append(row)
        write_json(args.out, "korquad_reader.json", results)
    show_markdown(out, "korquad_reader.md", render(results))


if __name__ == "__main__":
    main()
