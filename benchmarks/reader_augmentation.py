"""Do preprocessing and augmentation help a reader? The summary of `korquad_reader_augmentation.toml`'s sweep.

The grid (``odqa sweep --config benchmarks/grids/korquad_reader_augmentation.toml``) trains each reader once per
variant — a baseline and one change each (title prefixing, cloze questions, retrieved no-answer passages,
particle-stripped gold spans, another seed) — and reads every evaluation question given its gold passage and
given BM25's top 5. This script reads the sweep's cells (their ``gold_predictions.json`` and ``predictions.json``)
and, per variant, compares each question's EM/F1 with its reader's baseline: the mean difference and its 95 %
paired bootstrap interval over the questions (the variant named ``<reader>@seed<N>`` is the baseline retrained
with another seed: the size of the noise). Writes ``augmentation.md`` (the table) and ``plot-augmentation.png``
into ``--out`` (default: the sweep's output directory). Nothing is trained or read again.

    python benchmarks/reader_augmentation.py [--grid benchmarks/grids/korquad_reader_augmentation.toml]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, benchmark_parser, markdown_table, show_markdown  # noqa: E402

DEFAULT_GRID = REPO / "benchmarks" / "grids" / "korquad_reader_augmentation.toml"
MODES = (("gold", "gold_predictions.json", "gold passage"), ("top5", "predictions.json", "BM25 top-5"))


def split_variant(name: str) -> tuple[str, str]:
    """``bootstrap+cloze`` → (bootstrap, cloze); ``lexical@seed43`` → (lexical, seed43); ``lexical`` → baseline."""
    for sep in ("+", "@"):
        if sep in name:
            reader, _, factor = name.partition(sep)
            return reader, factor
    return name, "baseline"


def per_question(predictions: dict[str, str], questions: list[Any], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Each question's EM and F1 (0-100); a question without a prediction scores 0 (as evaluate_predictions)."""
    from odqa_core.qa_metrics import exact_match, f1

    em = np.array([100.0 * exact_match(predictions.get(q.id, ""), q.answers, metric) for q in questions])
    f = np.array([100.0 * f1(predictions.get(q.id, ""), q.answers, metric) for q in questions])
    return em, f


def paired_interval(diff: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The 95 % bootstrap interval of the mean of ``diff`` (questions resampled with replacement)."""
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 100):  # blocks bound the index matrix's memory
        idx = rng.integers(0, len(diff), (min(100, resamples - start), len(diff)))
        means[start : start + len(idx)] = diff[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--grid", default=str(DEFAULT_GRID))
    parser.add_argument("--out", default=None, help="Where to write augmentation.md and the plot (default: sweep's).")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from odqa_experiments.caches import MODEL_MANIFEST
    from odqa_experiments.grid import read_grid
    from odqa_experiments.runner import SweepRunner

    from odqa_core import data

    runner = SweepRunner(read_grid(args.grid))
    out = Path(args.out) if args.out else runner.grid.output_dir
    questions = runner.data.questions(runner.grid.questions, data.sample_questions_path)
    questions = [q for q in questions if q.answers]
    metric = runner.cells[0].spec.metric
    rows = {r["cell"]: r for r in runner.grid_rows()}

    scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    info: dict[str, dict[str, Any]] = {}
    for cell in runner.cells:
        name = cell.values["variant"]
        cell_dir = runner.grid.output_dir / "cells" / cell.key
        if cell.key not in rows or not all((cell_dir / f).is_file() for _, f, _ in MODES):
            print(f"{name}: not run yet (or without gold_predictions.json); skipped", file=sys.stderr)
            continue
        scores[name] = {
            mode: per_question(json.loads((cell_dir / f).read_text(encoding="utf-8")), questions, metric)
            for mode, f, _ in MODES
        }
        manifest = json.loads((runner.model_dir(cell.models[0]) / MODEL_MANIFEST).read_text(encoding="utf-8"))
        row = rows[cell.key]
        info[name] = {"epoch": row.get("extractive.epoch"), "train_s": manifest.get("train_s"), "row": row}

    table, deltas = [], {}
    for name, by_mode in scores.items():
        reader, factor = split_variant(name)
        line: list[Any] = [reader, factor]
        for mode, _, _ in MODES:
            for m, values in (("EM", by_mode[mode][0]), ("F1", by_mode[mode][1])):
                cell = f"{values.mean():.1f}"
                if factor != "baseline" and reader in scores:
                    diff = values - scores[reader][mode][0 if m == "EM" else 1]
                    low, high = paired_interval(diff, args.resamples, args.seed)
                    deltas[(reader, factor, mode, m)] = (float(diff.mean()), low, high)
                    cell += f" ({diff.mean():+.1f} [{low:+.1f}, {high:+.1f}])"
                line.append(cell)
        epoch = info[name]["epoch"]
        line += [str(epoch) if epoch not in (None, "") else "", f"{info[name]['train_s']:.0f}"]
        table.append(line)
    header = ["reader", "variant", "gold EM (Δ [95 % CI])", "gold F1 (Δ [95 % CI])"]
    header += ["top-5 EM (Δ [95 % CI])", "top-5 F1 (Δ [95 % CI])", "epoch", "train s"]
    text = (
        f"# Reader augmentation: {len(scores)} variants, {len(questions)} questions ({metric} EM/F1)\n\n"
        "Δ: the variant's EM or F1 minus its reader's baseline on the same questions; 95 % paired bootstrap interval "
        f"over questions ({args.resamples} resamples). `@seed43`: the baseline retrained with another seed.\n\n"
        + markdown_table(header, table)
        + "\n"
    )
    show_markdown(out, "augmentation.md", text)
    if deltas:
        plot(deltas, out / "plot-augmentation.png")


def plot(deltas: dict[tuple[str, str, str, str], tuple[float, float, float]], path: Path) -> None:
    from matplotlib.figure import Figure

    readers = list(dict.fromkeys(k[0] for k in deltas))
    factors = list(dict.fromkeys(k[1] for k in deltas))
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    grid = fig.subplots(2, len(MODES), sharey="row")
    width = 0.8 / len(readers)
    panels = [
        (ax, metric, mode, label)
        for row, metric in zip(grid, ("EM", "F1"))
        for ax, (mode, _, label) in zip(row, MODES)
    ]
    for ax, metric, mode, label in panels:
        for i, reader in enumerate(readers):
            xs, ys, lows, highs = [], [], [], []
            for j, factor in enumerate(factors):
                if (reader, factor, mode, metric) in deltas:
                    mean, low, high = deltas[(reader, factor, mode, metric)]
                    xs.append(j + (i - (len(readers) - 1) / 2) * width)
                    ys.append(mean)
                    lows.append(mean - low)
                    highs.append(high - mean)
            ax.bar(xs, ys, width, yerr=[lows, highs], capsize=3, label=reader)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(factors)), factors, rotation=20)
        ax.set_title(f"Δ {metric} vs the reader's baseline — {label}")
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_ylabel(f"Δ {metric} (points), 95 % paired bootstrap CI")
    grid[0][0].legend(fontsize="small")
    fig.savefig(path, format="png", dpi=110)


if __name__ == "__main__":
    main()
