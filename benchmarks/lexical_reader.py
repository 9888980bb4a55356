"""The lexical reader (``odqa train reader --model lexical``): EM/F1 on KorQuAD 1.0 dev and on the bundled sample,
next to the bootstrap transformer readers of RESULTS.md §7-8, with an ablation of its feature groups.

Questions answered: "with no pretrained model, what does odqa's feature-based span scorer answer — given the gold
passage, and reading BM25's top k — how long does it take to train on 2 CPU cores, and which features matter?"

KorQuAD (conventions of ../shared/data/korquad/README.md, as korquad_reader.py): passage level (30-word windows,
4,286 passages); the reader trains on the questions of the first 92 articles and reports dev EM/F1 on 300 of
articles 92-99 (the protocol of §7's bootstrap rows; the lexical reader has no epochs, so nothing is selected on
them), or with ``--fit-articles 100`` on all the first 100 articles' questions (the README's split; the dev
questions are then among them); evaluation on the 1,719 questions of the last 40 articles, given the gold passage
and BM25's top 1/5/10/20 (lucene, character bigrams) of the full corpus. ``--retrieved`` trains one model per
value, with each training question's BM25 top N added (negatives, or positives where they hold the answer). The
``ablations`` part retrains on gold passages without each feature group (gold passage and BM25 top 5 only).

Sample: trained as ``odqa train reader --model lexical`` does by default (the sample's 180 training questions, 10 %
held out for the dev report), scored on the 107 evaluation questions given the gold passage, BM25's top 5, and
through the design card's command ``odqa run --retriever bm25 --fuser cross --reader extractive -o
extractive.model=...`` (its own defaults: the demo DPR, cross fusion, reader top-k).

Models and JSON go to ``--out`` (scratch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BM25_LUCENE_BIGRAMS,
    FIT_ARTICLES,
    benchmark_parser,
    best_answer_report,
    epoch_selection_split,
    headline,
    korquad_split,
    markdown_table,
    require_korquad,
    run_header,
    sample_reading_inputs,
    top_k,
    write_json,
)

KS = (1, 5, 10, 20)


def train(passages: list, train_qs: list, dev: list | None, out: Path, **settings: Any) -> tuple[str, float, dict]:
    """A lexical model trained by ``train_reader`` (as ``odqa train reader --model lexical``); reused if present."""
    from odqa_readers.training import parse_reader_config, train_reader

    best = out / "best"
    started = time.perf_counter()
    if not (best / "manifest.json").is_file():
        config = parse_reader_config({"reader": "extractive", "model": "lexical", "seed": 42, **settings})
        train_reader(passages, train_qs, config, out, dev_questions=dev)
    report = json.loads((out / "report.json").read_text())
    return str(best), time.perf_counter() - started, report


def scores(reader: Any, questions: list, results: Any) -> tuple[dict[str, float], float]:
    started = time.perf_counter()
    nbest = reader.read(questions, results, n_best=1)
    seconds = time.perf_counter() - started
    report = best_answer_report(questions, nbest)
    return {"exact_match": report.exact_match, "f1": report.f1}, seconds


def cell(m: dict[str, float]) -> str:
    return f"{m['exact_match']:.1f} / {m['f1']:.1f}"


def korquad_inputs(args: Any) -> tuple | None:
    """Passages, training (first 92 articles), dev (300 of articles 92-99), evaluation questions, BM25 results."""
    path = require_korquad(args.korquad)
    if path is None:
        return None
    from odqa_core import plugins
    from odqa_core.pipeline import retrieve

    _, passages, train_qs, test = korquad_split(path)
    # --fit-articles 92: the §7 protocol (dev held out); 100: every training question (dev then only reports fit).
    fit, dev = epoch_selection_split(train_qs, args.fit_articles)
    bm25 = plugins.create("retriever", "bm25", BM25_LUCENE_BIGRAMS)
    bm25.index(passages)
    return passages, fit, dev, test, retrieve([bm25], None, test, max(args.ks), bar=False)


def korquad(args: Any, payload: dict[str, Any]) -> None:
    split = korquad_inputs(args)
    if split is None:
        return

    from odqa_core import plugins
    from odqa_core.data import gold_results
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results

    out = Path(args.out) / ("korquad" if args.fit_articles == FIT_ARTICLES else f"korquad-fit{args.fit_articles}")
    passages, fit, dev, test, bm25_results = split
    ks = args.ks
    accuracy = evaluate_retrieval(test, hits_from_results(bm25_results), ks).to_json()["metrics"]["answer"]
    inputs = {"gold": gold_results(test, passages), **{f"bm25 top-{k}": top_k(bm25_results, k) for k in ks}}
    payload["korquad"] = {
        "data": {"passages": len(passages), "fit_q": len(fit), "dev_q": len(dev), "test_q": len(test)},
        "bm25_accuracy": {f"acc@{k}": accuracy[f"acc@{k}"] for k in ks},
        "models": [],
    }
    rows = []
    options = json.loads(args.lexical_options)
    for retrieved in (int(r) for r in args.retrieved.split(",")):
        name = f"lexical-r{retrieved}"
        model, train_s, report = train(
            passages,
            fit,
            dev,
            out / name,
            retrieved=retrieved,
            lexical_options=options,
            retrieval_options={"bm25." + k: v for k, v in BM25_LUCENE_BIGRAMS.items()},
        )
        reader = plugins.create("reader", "extractive", {"model": model})
        reader.warm_up()
        measured = {label: scores(reader, test, results) for label, results in inputs.items()}
        info = report["lexical"]
        row = {
            "model": name,
            "retrieved": retrieved,
            "train_s": round(train_s, 1),
            "dev": report["epochs"][0]["dev"],
            "training": info,
            **{label: m for label, (m, _) in measured.items()},
            "read_qps": {label: round(len(test) / s, 1) for label, (_, s) in measured.items()},
        }
        payload["korquad"]["models"].append(row)
        rows.append(
            [
                "gold passages" + (f" + BM25 top-{retrieved}" if retrieved else ""),
                f"{train_s:.0f}",
                f"{info['questions']} ({info['dropped_questions']})",
                f"{info['rows']:,}",
                *(cell(row[label]) for label in inputs),
            ]
        )
        print(rows[-1], flush=True)
    payload["korquad"]["table"] = markdown_table(
        ["lexical reader trained on", "train s", "questions (no candidate)", "candidate rows", *inputs], rows
    )


def ablations(args: Any, payload: dict[str, Any]) -> None:
    """Each feature group left out in turn (and two subsets), trained on gold passages."""
    split = korquad_inputs(args)
    if split is None:
        return
    from odqa_readers.lexical import FEATURE_GROUPS

    from odqa_core import plugins
    from odqa_core.data import gold_results

    out = Path(args.out) / "korquad"
    passages, fit, dev, test, bm25_results = split
    inputs = {"gold": gold_results(test, passages), "bm25 top-5": top_k(bm25_results, 5)}
    options = json.loads(args.lexical_options)
    payload.setdefault("korquad", {})["ablations"] = []
    if True:
        ablation_rows = []
        variants = [("all groups", FEATURE_GROUPS)]
        variants += [(f"without {g}", tuple(x for x in FEATURE_GROUPS if x != g)) for g in FEATURE_GROUPS]
        variants += [
            ("span + cross only", ("span", "cross")),
            ("match + ngram + align only", ("match", "ngram", "align")),
        ]
        for label, groups in variants:
            model, train_s, report = train(
                passages,
                fit,
                dev,
                out / ("ablation-" + "-".join(groups)),
                lexical_options={**options, "features": list(groups)},
            )
            reader = plugins.create("reader", "extractive", {"model": model})
            gold, _ = scores(reader, test, inputs["gold"])
            bm25_5, _ = scores(reader, test, inputs["bm25 top-5"])
            payload["korquad"]["ablations"].append(
                {
                    "variant": label,
                    "features": list(groups),
                    "train_s": round(train_s, 1),
                    "gold": gold,
                    "bm25 top-5": bm25_5,
                }
            )
            ablation_rows.append([label, f"{train_s:.0f}", cell(gold), cell(bm25_5)])
            print(ablation_rows[-1], flush=True)
        payload["korquad"]["ablation_table"] = markdown_table(
            ["features (trained on gold passages)", "train s", "gold EM / F1", "BM25 top-5 EM / F1"], ablation_rows
        )


def sample(args: Any, payload: dict[str, Any]) -> None:
    from odqa_core import plugins

    out = Path(args.out) / "sample"
    documents, train_qs, test, gold, bm25_top5 = sample_reading_inputs(5)
    inputs = {"gold": gold, "bm25 top-5": bm25_top5}
    payload["sample"] = {"models": []}
    rows = []
    for retrieved in (int(r) for r in args.retrieved.split(",")):
        model, train_s, report = train(
            documents,
            train_qs,
            None,
            out / f"lexical-r{retrieved}",
            retrieved=retrieved,
            lexical_options=json.loads(args.lexical_options),
        )
        reader = plugins.create("reader", "extractive", {"model": model})
        measured = {label: scores(reader, test, results)[0] for label, results in inputs.items()}
        # The design card's command, as a user runs it (demo DPR, cross fusion, its reader top-k).
        run_dir = out / f"run-cross-r{retrieved}"
        command = ["odqa", "run", "--retriever", "bm25", "--fuser", "cross", "--reader", "extractive"]
        command += ["-o", f"extractive.model={model}", "--output-dir", str(run_dir), "--overwrite"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "ODQA_PROGRESS": "0"})
        run_s = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        summary = json.loads((run_dir / "summary.json").read_text())
        qa = summary["reader_metrics"]
        cross = {"exact_match": qa["exact_match"], "f1": qa["f1"]}
        payload["sample"]["models"].append(
            {
                "retrieved": retrieved,
                "train_s": round(train_s, 1),
                "dev": report["epochs"][0]["dev"],
                "training": report["lexical"],
                **measured,
                "odqa run cross": cross,
                "odqa run command": " ".join(command),
                "odqa run reader_top_k": summary.get("reader_top_k"),
                "odqa run s": round(run_s, 1),
            }
        )
        rows.append(
            [
                "gold passages" + (f" + BM25 top-{retrieved}" if retrieved else ""),
                f"{train_s:.0f}",
                cell(report["epochs"][0]["dev"]),
                cell(measured["gold"]),
                cell(measured["bm25 top-5"]),
                cell(cross),
            ]
        )
        print(rows[-1], flush=True)
    payload["sample"]["table"] = markdown_table(
        [
            "lexical reader trained on",
            "train s",
            "dev (18 held-out training q) EM / F1",
            "gold passage EM / F1",
            "BM25 top-5 EM / F1",
            "`odqa run --retriever bm25 --fuser cross --reader extractive` EM / F1",
        ],
        rows,
    )


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="lexical")
    parser.add_argument("--retrieved", default="0,2", help="BM25 passages per training question, one model each.")
    parser.add_argument("--lexical-options", default="{}", help="JSON: LexicalSettings of every model.")
    parser.add_argument("--parts", default="korquad,sample", help="Of korquad, ablations, sample.")
    parser.add_argument(
        "--fit-articles",
        type=int,
        default=FIT_ARTICLES,
        help="KorQuAD: train on the questions of the first N articles (92: the 300-question dev of articles 92-99 "
        "held out, as §7; 100: all of them, the dev then in training).",
    )
    parser.add_argument("--ks", default=",".join(map(str, KS)), help="KorQuAD: BM25 depths read.")
    args = parser.parse_args()
    args.ks = tuple(int(k) for k in args.ks.split(","))
    payload: dict[str, Any] = {
        **run_header("plugins/odqa-readers/odqa_readers", "numpy", "scipy", "scikit-learn", "kiwipiepy"),
        "args": vars(args),
    }
    parts = args.parts.split(",")
    if "korquad" in parts:
        korquad(args, payload)
    if "ablations" in parts:
        ablations(args, payload)
    if "sample" in parts:
        sample(args, payload)
    write_json(args.out, f"lexical_reader-{'-'.join(parts)}-fit{args.fit_articles}.json", payload)
    print(headline(payload))
    for part in ("korquad", "sample"):
        for key in ("table", "ablation_table"):
            if key in payload.get(part, {}):
                print(payload[part][key])


if __name__ == "__main__":
    main()
