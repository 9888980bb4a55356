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

Encoder layouts (``--encoders shared,separate,shared-heads``; the KLUE template's "split the shared encoder into
question/passage heads" history): one ICT run of the shared bootstrap, then each layout fine-tuned from that same
checkpoint with the same budget (epochs, batch, seed, learning rate). Per epoch: passage-level accuracy over the full
corpus, the training loss, and what could make a layout fall — the passage and question vectors' spread (effective
rank, mean pairwise cosine, norm) over a fixed sample, and for ``shared-heads`` each head's singular values and
distance from the identity. ``shared-heads@R`` sets that run's head learning rate to ``R`` (an ablation).
Writes ``korquad_dense_encoders.json`` (and a plot with ``--plot``) instead of the per-size and fold tables.

Everything is written to ``--out`` (scratch; nothing to the repository): checkpoints, ``report.json`` per run
and ``korquad_dense.json`` with every number printed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BM25_LUCENE_BIGRAMS,
    benchmark_parser,
    korquad_split,
    markdown_table,
    require_korquad,
    run_header,
    show_markdown,
    write_json,
)

KS = (1, 5, 20, 100)


def metrics_row(report_metrics: dict[str, dict[str, float]], hit: str) -> dict[str, float]:
    m = report_metrics[hit]
    return {**{f"acc@{k}": m[f"acc@{k}"] for k in KS}, "mrr@10": m.get("mrr@10", float("nan"))}


def bm25_rows(docs: list, passages: list, test: list) -> list[dict[str, Any]]:
    from odqa_core import plugins
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results

    rows = []
    for label, options in (
        ("bm25 okapi, regex words", {}),
        ("bm25 lucene, char bigrams", BM25_LUCENE_BIGRAMS),
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


# --- encoder layouts: shared / separate / shared-heads --------------------------------------------------------


def parse_layouts(spec: str) -> list[tuple[str, str, float | None, bool]]:
    """``shared,separate,shared-heads@1e-3,shared-heads/random`` → ``(label, encoders, head_lr, random_heads)``
    per run; ``/random``: the heads start from PyTorch's default ``Linear`` initialisation, not the identity."""
    from odqa_dense.encoder import check_encoders

    layouts = []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        layout, _, rate = item.partition("@")
        encoders, _, init = layout.partition("/")
        check_encoders(encoders)
        if init not in ("", "random") or (init and encoders != "shared-heads"):
            raise SystemExit(f"unknown layout {item!r}: only shared-heads takes /random")
        layouts.append((item, encoders, float(rate) if rate else None, init == "random"))
    return layouts


def random_heads_start(ict_last: Path, target: Path, seed: int) -> Path:
    """The ICT checkpoint with ``shared-heads`` whose heads have PyTorch's default (random) ``Linear`` init: the
    two sides no longer meet in the space ICT trained, as in a template that adds fresh heads."""
    import torch
    from odqa_dense.encoder import BiEncoder

    if not (target / "manifest.json").is_file():
        start = BiEncoder.load(str(ict_last))
        encoder = BiEncoder.from_models(
            start.tokenizer, start.passage_model, encoders="shared-heads", pooling=start.pooling
        )
        torch.manual_seed(seed)
        for head in encoder.heads.values():
            head.reset_parameters()
        encoder.save(target)
    return target


def effective_rank(singular_values: Any) -> float:
    """exp(entropy) of the normalised singular values (Roy & Vetterli 2007): 1 for a rank-1 matrix, ``d`` for
    an isotropic one."""
    import numpy as np

    p = np.asarray(singular_values, np.float64)
    p = p[p > 0] / p.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def vector_stats(vectors: Any) -> dict[str, float]:
    """How spread out a set of vectors is: collapse shows as a low effective rank and a mean cosine near 1."""
    import numpy as np

    x = vectors.astype(np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    mean_cosine = (np.linalg.norm(unit.sum(0)) ** 2 - n) / (n * (n - 1))  # over pairs i ≠ j
    centered = np.linalg.svd(x - x.mean(0), compute_uv=False)
    return {
        "effective_rank": effective_rank(centered),
        "mean_cosine": float(mean_cosine),
        "mean_norm": float(np.linalg.norm(x, axis=1).mean()),
        "total_variance": float(x.var(0).sum()),
    }


def head_stats(head: Any) -> dict[str, float]:
    import torch

    weight = head.weight.detach().float().cpu()
    sigma = torch.linalg.svdvals(weight).numpy()
    eye = torch.eye(weight.shape[0])
    return {
        "sigma_max": float(sigma.max()),
        "sigma_min": float(sigma.min()),
        "effective_rank": effective_rank(sigma),
        "distance_from_identity": float(torch.linalg.norm(weight - eye) / torch.linalg.norm(eye)),
        "bias_norm": float(head.bias.detach().float().norm()),
    }


def representation_stats(encoder: Any, config: Any, sample: list, questions: list) -> dict[str, Any]:
    """Spread of passage and question vectors over fixed samples, and the heads' spectra (shared-heads)."""
    from odqa_dense.encoder import passage_texts

    passages = encoder.encode(
        passage_texts(sample, config.include_title), "passage", config.passage_max_length, batch_size=128, desc=""
    )
    question_vectors = encoder.encode(
        [q.text for q in questions], "question", config.query_max_length, batch_size=128, desc=""
    )
    out: dict[str, Any] = {"passage": vector_stats(passages), "question": vector_stats(question_vectors)}
    if encoder.heads is not None:
        out["heads"] = {side: head_stats(encoder.heads[side]) for side in ("question", "passage")}
    return out


def held_out_loss(encoder: Any, config: Any, passages: list, examples: Any) -> float:
    """The training loss (in-batch + hard negatives, batches of ``config.batch_size`` in a seeded order) on
    held-out examples, in eval mode: whether the loss on questions the model does not train on rises."""
    import tempfile

    import numpy as np
    import torch
    from odqa_dense.training import BiEncoderTrainingLoop

    with tempfile.TemporaryDirectory() as scratch:
        trainer = BiEncoderTrainingLoop(
            encoder, passages, examples, [], config, Path(scratch), echo=lambda message: None
        )
        q_rows = encoder.tokenize(examples.questions, config.query_max_length)
        order = np.random.default_rng([config.seed, 0]).permutation(len(examples))
        was_training = [m.training for m in encoder.modules()]
        encoder.train(False)
        try:
            with torch.inference_mode():
                losses = [
                    float(trainer._loss(order[b : b + config.batch_size], q_rows))
                    * len(order[b : b + config.batch_size])
                    for b in range(0, len(order), config.batch_size)
                ]
        finally:
            for module, mode in zip(encoder.modules(), was_training):
                module.train(mode)
    return sum(losses) / len(order)


def run_layouts(
    args: Any, out: Path, passages: list, train: list, test: list, config_for: Any, results: dict[str, Any]
) -> dict[str, Any]:
    """ICT once on the shared bootstrap, then every layout fine-tuned from that checkpoint, same budget; fills
    ``results["encoders"]`` (written after every run)."""
    import dataclasses as dc

    import numpy as np
    from odqa_dense.training import DEFAULT_LR_BOOTSTRAP, build_examples, initial_encoder, pretrain_ict, train_dpr

    layouts: dict[str, Any] = results.setdefault("encoders", {})
    rng = np.random.default_rng(0)
    sample = [passages[i] for i in sorted(rng.choice(len(passages), min(1000, len(passages)), replace=False))]
    for size in [s for s in args.sizes.split(",") if s]:
        base = config_for(size, args.epochs).validate()
        root = out / f"encoders-{size}"
        ict_last = root / "ict" / "last"
        started = time.perf_counter()
        if not (root / "ict" / "report.json").is_file() or not json.loads(
            (root / "ict" / "report.json").read_text()
        ).get("done"):
            pretrain_ict(initial_encoder(passages, base), passages, train, base, root, test, True, print)
        ict_s = round(time.perf_counter() - started, 1)
        size_results: dict[str, Any] = {"ict_s": ict_s, "n_test": len(test), "layouts": {}}
        from odqa_dense.encoder import BiEncoder

        start = BiEncoder.load(str(ict_last))
        # held-out examples: the evaluation questions with their positive and 1 BM25 hard negative, as in training
        held_out = build_examples(passages, test, base, print)
        size_results["dim"] = start.dim
        size_results["ict"] = {
            "passage": metrics_row(evaluate_passages(start, base, passages, test), "answer"),
            "stats": representation_stats(start, base, sample, test),
            "held_out_loss": held_out_loss(start, base, passages, held_out),
        }
        print(f"[{size}] ICT only: " + json.dumps(size_results["ict"]["passage"]), flush=True)
        for label, encoders, head_lr, random_heads in parse_layouts(args.encoders):
            start_dir = (
                random_heads_start(ict_last, root / "ict-random-heads", base.seed) if random_heads else ict_last
            )
            config = dc.replace(
                base,
                model=str(start_dir),
                encoders=encoders,
                head_lr=head_lr,
                lr=args.lr or DEFAULT_LR_BOOTSTRAP,
                ict_epochs=0,
                eval_ks=(*KS, 10),
            )

            def on_epoch(
                fold: int, epoch: int, encoder: Any, label=label, config=config, size=size, held_out=held_out
            ) -> dict:
                row = {"epoch": epoch, **representation_stats(encoder, config, sample, test)}
                row["held_out_loss"] = held_out_loss(encoder, config, passages, held_out)
                print(f"[{size} {label}] epoch {epoch}: " + json.dumps(row), flush=True)
                return row  # kept in the run's report.json as the epoch's "extra"

            run_dir = root / label.replace("@", "-head-lr-").replace("/", "-")
            started = time.perf_counter()
            report = train_dpr(passages, train, config, run_dir, dev_questions=test, on_epoch=on_epoch, resume=True)
            size_results["layouts"][label] = {
                "encoders": encoders,
                "head_lr": head_lr,
                "random_heads": random_heads,
                "learning_rate": report["config"]["learning_rate"],
                "per_epoch": [
                    {
                        "epoch": e["epoch"],
                        "loss": e["loss"],
                        "train_s": e["train_s"],
                        "passage": metrics_row(e["dev"], "answer"),
                        "stats": {k: v for k, v in e.get("extra", {}).items() if k not in ("epoch", "held_out_loss")},
                        "held_out_loss": e.get("extra", {}).get("held_out_loss"),
                    }
                    for e in report["epochs"]
                ],
                "n_train": report["n_train"],
                "wall_s": round(time.perf_counter() - started, 1),
            }
            if random_heads:  # epoch 0 is not the common start: evaluate where this run started
                begin = BiEncoder.load(str(start_dir))
                size_results["layouts"][label]["start"] = {
                    "passage": metrics_row(evaluate_passages(begin, base, passages, test), "answer"),
                    "stats": representation_stats(begin, base, sample, test),
                    "held_out_loss": held_out_loss(begin, base, passages, held_out),
                }
            # epochs trained before the held-out loss was measured per epoch: from the checkpoints kept
            per_epoch = {e["epoch"]: e for e in size_results["layouts"][label]["per_epoch"]}
            for kept, epoch in (("best", report["best"]["epoch"]), ("last", config.epochs)):
                if epoch in per_epoch and per_epoch[epoch]["held_out_loss"] is None:
                    encoder = BiEncoder.load(str(run_dir / kept))
                    per_epoch[epoch]["held_out_loss"] = held_out_loss(encoder, config, passages, held_out)
            layouts[size] = size_results
            write_json(args.out, "korquad_dense_encoders.json", results)
    return layouts


def evaluate_passages(encoder: Any, config: Any, passages: list, test: list) -> dict[str, dict[str, float]]:
    import dataclasses as dc

    from odqa_dense.training import evaluate_encoder

    return evaluate_encoder(encoder, passages, test, dc.replace(config, eval_ks=(*KS, 10)))["metrics"]


def render_layouts(results: dict[str, Any]) -> str:
    """The RESULTS.md tables of the encoder-layout comparison."""
    keys = ["acc@1", "acc@5", "acc@20", "acc@100", "mrr@10"]
    out = []
    for size, run in results.items():
        ict = run["ict"]
        rows = [["(ICT only, the common start)", 0, "-", loss_cell(ict), *(pct(ict["passage"][k]) for k in keys)]]
        for label, layout in run["layouts"].items():
            if "start" in layout:
                start = layout["start"]
                rows.append([label, 0, "-", loss_cell(start), *(pct(start["passage"][k]) for k in keys)])
            for e in layout["per_epoch"]:
                rows.append(
                    [label, e["epoch"], f"{e['loss']:.3f}", loss_cell(e), *(pct(e["passage"][k]) for k in keys)]
                )
        out.append(
            f"**passage level, bootstrap {size}** (evaluation questions of the last 40 articles, full corpus)\n"
        )
        out.append(
            markdown_table(
                ["encoders", "epoch", "train loss", "held-out loss", "top-1", "top-5", "top-20", "top-100", "MRR@10"],
                rows,
            )
            + "\n"
        )
        rows = []
        start = run["ict"]["stats"]
        rows.append(["(ICT only)", 0, *stat_cells(start)])
        for label, layout in run["layouts"].items():
            if "start" in layout:
                rows.append([label, 0, *stat_cells(layout["start"]["stats"])])
            for e in layout["per_epoch"]:
                rows.append([label, e["epoch"], *stat_cells(e["stats"])])
        out.append(
            f"**vector spread** (1,000 fixed passages, the {run.get('n_test', 1719):,} evaluation questions; eff. "
            f"rank of the centred vectors, of {run.get('dim', '?')} dimensions; cos = mean pairwise cosine) and "
            "**heads** (shared-heads: σ min / max of W, ‖W − I‖/‖I‖)\n"
        )
        header = ["encoders", "epoch", "passage eff. rank", "passage cos", "passage norm", "question eff. rank"]
        header += ["question cos", "q head σ min/max", "q head ‖W−I‖", "p head σ min/max", "p head ‖W−I‖"]
        out.append(markdown_table(header, rows) + "\n")
    return "\n".join(out)


def loss_cell(row: dict[str, Any]) -> str:
    value = row.get("held_out_loss")
    return "-" if value is None else f"{value:.3f}"


def stat_cells(row: dict[str, Any]) -> list[str]:
    p, q = row["passage"], row["question"]
    cells = [f"{p['effective_rank']:.1f}", f"{p['mean_cosine']:.3f}", f"{p['mean_norm']:.2f}"]
    cells += [f"{q['effective_rank']:.1f}", f"{q['mean_cosine']:.3f}"]
    heads = row.get("heads")
    for side in ("question", "passage"):
        if heads:
            h = heads[side]
            cells += [f"{h['sigma_min']:.2f} / {h['sigma_max']:.2f}", f"{h['distance_from_identity']:.3f}"]
        else:
            cells += ["-", "-"]
    return cells


def plot_layouts(results: dict[str, Any], path: Path) -> None:
    """Training loss and passage top-20 per epoch, one line per layout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for size, run in results.items():
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
        for label, layout in run["layouts"].items():
            epochs = [e["epoch"] for e in layout["per_epoch"]]
            (line,) = loss_ax.plot(
                epochs, [e["loss"] for e in layout["per_epoch"]], marker="o", label=f"{label} train"
            )
            start = layout.get("start", run["ict"])
            held = [(0, start.get("held_out_loss"))] + [
                (e["epoch"], e.get("held_out_loss")) for e in layout["per_epoch"]
            ]
            held = [(x, y) for x, y in held if y is not None]
            if held:
                loss_ax.plot(
                    *zip(*held), marker="x", linestyle="--", color=line.get_color(), label=f"{label} held-out"
                )
            acc_ax.plot(
                [0, *epochs],
                [
                    100 * layout.get("start", run["ict"])["passage"]["acc@20"],
                    *(100 * e["passage"]["acc@20"] for e in layout["per_epoch"]),
                ],
                marker="o",
                label=label,
            )
        loss_ax.set(
            xlabel="epoch (0 = start)",
            ylabel="loss",
            title=f"bootstrap {size}: training loss (epoch mean, ─), held-out loss (- -)",
        )
        acc_ax.set(xlabel="epoch (0 = after ICT)", ylabel="passage top-20 %", title="KorQuAD, last 40 articles")
        for ax in (loss_ax, acc_ax):
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3)
        loss_ax.legend(fontsize="x-small", ncol=2)
        acc_ax.legend(fontsize="small", loc="lower right")
        fig.tight_layout()
        fig.savefig(path if len(results) == 1 else path.with_name(f"{path.stem}-{size}{path.suffix}"), dpi=110)
        plt.close(fig)


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
    parser = benchmark_parser(__doc__, korquad=True, out="dense")
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
    parser.add_argument(
        "--encoders",
        default=None,
        help="Compare encoder layouts instead (e.g. shared,separate,shared-heads,shared-heads@1e-3): ICT once per "
        "size, then each layout from that checkpoint.",
    )
    parser.add_argument("--plot", default=None, help="With --encoders: write the loss / top-20 plot to this PNG.")
    parser.add_argument("--render", default=None, help="Only print the Markdown tables of a korquad_dense.json.")
    parser.add_argument(
        "--ict-rows-only",
        action="store_true",
        help="Only evaluate the ICT-pretrained checkpoints (OUT/epochs-SIZE/ict/last) of a finished run and add "
        "them to OUT/korquad_dense.json as epoch 0.",
    )
    args = parser.parse_args()
    if args.render:
        rendered = json.loads(Path(args.render).read_text())
        if "encoders" in rendered:
            if args.plot:
                plot_layouts(rendered["encoders"], Path(args.plot))
            print(render_layouts(rendered["encoders"]))
        else:
            print(render_markdown(rendered))
        return

    path = require_korquad(args.korquad)
    if path is None:
        return
    from odqa_dense.training import TrainConfig, train_dpr

    out = Path(args.out)
    docs, passages, train, test = korquad_split(path)
    results: dict[str, Any] = {
        **run_header("plugins/odqa-dense/odqa_dense", "torch", "transformers", "faiss-cpu", "tokenizers"),
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

    if args.encoders:
        run_layouts(args, out, passages, train, test, config_for, results)
        if args.plot:
            plot_layouts(results["encoders"], Path(args.plot))
        print(render_layouts(results["encoders"]))
        return

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
    show_markdown(out, "korquad_dense.md", render_markdown(results))


if __name__ == "__main__":
    main()
