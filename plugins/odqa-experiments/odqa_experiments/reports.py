"""What a sweep writes besides the cells' own outputs: ``results.csv`` (one row per finished cell), ``results.md``
(ranked table, best cell, spread over folds or seeds), the plots, ``best.toml`` (the best cell as a pipeline
file), and the estimate of the time left.

A row is its cell's key plus its axis values and metrics. ``results.csv`` may also hold rows of other grids
written to the same directory; the reports show this grid's rows only.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from odqa_core.errors import UsageError
from odqa_core.outputs import atomic_write_text
from odqa_experiments.caches import ModelCache, load_checkpoints, utc_now
from odqa_experiments.grid import GOLD_METRICS, READER_METRICS, REPEAT_SUFFIXES, VARIANT, Grid
from odqa_experiments.planning import Cell
from odqa_experiments.plots import plot_sweep

RESULTS = "results.csv"


def read_results(path: Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv`` (empty when there is none); a file without a ``cell`` column is an error."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return []
        if "cell" not in reader.fieldnames:
            raise UsageError(f"{path} is not a sweep's results file (no 'cell' column); use another output_dir")
        return [row for row in reader if row.get("cell")]


def write_results(path: Path, rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> None:
    """All rows, columns ``first`` then the others in order of appearance, written atomically."""
    columns = list(dict.fromkeys([*first, *(k for row in rows for k in row)]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    atomic_write_text(path, buffer.getvalue())


def choose_metric(grid: Grid, cells: Sequence[Cell]) -> str:
    """The grid's ranking metric; by default F1 when every cell reads, else top-20 accuracy (or the nearest K)."""
    if grid.metric:
        return grid.metric
    if all(c.spec.reader for c in cells):
        return "f1"
    ks = sorted(set.intersection(*(set(c.spec.ks) for c in cells)))
    return f"acc@{20 if 20 in ks else max([k for k in ks if k <= 20] or ks)}"


def check_metric(grid: Grid, cells: Sequence[Cell], metric: str) -> None:
    """The ranking metric is measured in every cell (its K among every cell's ks; a reader for EM/F1)."""
    where = f"{grid.path}: sweep.metric {metric}"
    for cell in cells:
        if metric in READER_METRICS or metric in GOLD_METRICS:
            if not cell.spec.reader:
                raise UsageError(f"{where} needs a reader, and cell {cell.index} ({cell.label()}) has none")
        elif int(metric.partition("@")[2]) not in cell.spec.ks:
            raise UsageError(
                f"{where}: cell {cell.index} ({cell.label()}) evaluates at ks {list(cell.spec.ks)}; "
                "add the cut-off to pipeline.ks"
            )


def best_row(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any] | None:
    """The row with the highest ``metric``, the first of equals (grid order); None when no row has it."""
    scored = [r for r in rows if isinstance(r.get(metric), (int, float)) and not math.isnan(r[metric])]
    if not scored:
        return None
    return dict(max(scored, key=lambda r: r[metric]))


def time_left(
    cells: Sequence[Cell], evaluating: Sequence[float], training: Sequence[float], models: ModelCache
) -> float:
    """Seconds the ``cells`` will take: the mean cell without training each (``evaluating``: seconds per cell so
    far), plus the mean training (``training``: seconds per model so far) per model they still have to train."""
    untrained = {(p.trainer, p.key) for c in cells for p in c.models if not models.is_trained(p.trainer, p.key)}
    per_model = sum(training) / len(training) if training else 0.0
    return len(cells) * sum(evaluating) / max(1, len(evaluating)) + len(untrained) * per_model


class SweepReport:
    """The rows of ``results.csv`` (this grid's and any other's in the file) and the reports made from them."""

    def __init__(self, grid: Grid, cells: Sequence[Cell], models: ModelCache, echo: Callable[[str], None]) -> None:
        self.grid = grid
        self.cells = cells
        self.models = models
        self.echo = echo
        self.path = grid.output_dir / RESULTS
        self.rows = read_results(self.path)
        names = {c.key: c.values[VARIANT] for c in cells if VARIANT in c.values}
        #: Rows of a variant renamed since they ran: they take the name it has now (nothing is computed again).
        self.relabelled = 0
        for row in self.rows:
            if row["cell"] in names and row.get(VARIANT) != names[row["cell"]]:
                row[VARIANT] = names[row["cell"]]
                self.relabelled += 1
        self.metric = choose_metric(grid, cells)
        check_metric(grid, cells, self.metric)
        self._told_no_plots = False

    def grid_rows(self) -> list[dict[str, Any]]:
        """This grid's finished rows, in grid order, with their numbers as numbers."""
        by_key = {row["cell"]: row for row in self.rows}
        return [typed(by_key[c.key]) for c in self.cells if c.key in by_key]

    def add(self, row: Mapping[str, Any]) -> None:
        """Add a finished cell's row and rewrite ``results.csv`` and the reports."""
        self.rows.append(dict(row))
        self.save_rows()
        self.write()

    def save_rows(self) -> None:
        write_results(self.path, self.rows, ["cell", *self.grid.dimensions])

    def write(self) -> None:
        """``results.md``, the plots and ``best.toml`` of the rows so far."""
        rows = self.grid_rows()
        plots: list[Path] = []
        if self.grid.plots and rows:
            drawn = plot_sweep(rows, self.grid.dimensions, self.metric, self.grid.output_dir)
            if drawn is None and not self._told_no_plots:
                self.echo("matplotlib is not installed, so no plots: pip install 'odqa-experiments[plots]'")
                self._told_no_plots = True
            plots = drawn or []
        atomic_write_text(self.grid.output_dir / "results.md", self.markdown(rows, plots))
        best = best_row(rows, self.metric)
        if best is not None:
            cell = next(c for c in self.cells if c.key == best["cell"])
            atomic_write_text(self.grid.output_dir / "best.toml", self.best_pipeline(cell))

    def metric_columns(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        ks = sorted({k for c in self.cells for k in c.spec.ks})
        cols = [self.metric, *READER_METRICS, *GOLD_METRICS, *(f"acc@{k}" for k in ks), "mrr@10"]
        return [c for c in dict.fromkeys(cols) if any(c in r and r[c] != "" for r in rows)]

    def markdown(self, rows: Sequence[Mapping[str, Any]], plots: Sequence[Path]) -> str:
        grid = self.grid
        metric = self.metric
        axes = list(grid.dimensions)
        extra = sorted({k for r in rows for k in r if k.endswith((".epoch", ".trained_epochs"))})
        cols = self.metric_columns(rows)
        lines = [
            f"# Sweep: {grid.path.name}",
            "",
            f"{len(rows)} of {len(self.cells)} cells done; ranked by {metric} (hit: {_hits(rows)}); "
            f"questions: {grid.questions.describe()}. Updated {utc_now()}.",
            "",
        ]
        best = best_row(rows, metric)
        if best is not None:
            lines += [
                f"**Best**: {row_label(best, axes)} — {metric} = {format_value(best[metric])} (`best.toml`)",
                "",
            ]
        header = ["rank", *axes, *extra, *cols, "cell s"]
        ordered = sorted(rows, key=lambda r: -_number(r.get(metric)))
        table = [header] + [
            [
                str(i),
                *(str(r.get(a, "")) for a in axes),
                *(str(r.get(e, "")) for e in extra),
                *(format_value(r.get(c)) for c in cols),
                format_value(r.get("cell_s"), 1),
            ]
            for i, r in enumerate(ordered, 1)
        ]
        lines += _md_table(table)
        folds = [a for a in axes if a.endswith(REPEAT_SUFFIXES)]
        if folds and rows:
            over = folds[0].rsplit(".", 1)[-1] + "s"  # folds, seeds
            lines += ["", f"**Spread over {folds[0]}** ({metric}: mean ± std over {over}, n)", ""]
            lines += _md_table(
                [["setting", "mean", "std", "min", "max", "n"], *_fold_spread(rows, axes, folds[0], metric)]
            )
        if plots:
            lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
        pending = len(self.cells) - len(rows)
        if pending:
            lines += ["", f"{pending} cells not run yet: run the same `odqa sweep --config` again to continue."]
        return "\n".join(lines) + "\n"

    def best_pipeline(self, cell: Cell) -> str:
        """A pipeline file (``odqa run --config best.toml``) of the best cell: the spec it ran, with the models it
        trained (:meth:`PipelineSpec.to_toml <odqa_core.spec.PipelineSpec.to_toml>`), and its questions file."""
        row = next(r for r in self.rows if r["cell"] == cell.key)
        models = {}
        for plan in cell.models:
            epoch = int(row[f"{plan.trainer}.epoch"])
            checkpoints = load_checkpoints(self.models.directory(plan.trainer, plan.key))
            models[plan.model_option] = str(next(c for c in checkpoints if c.epoch == epoch).path)
        spec = cell.run_spec(models)
        lines = [
            f"# The best cell of {self.grid.path.name} ({row_label(typed(row), list(self.grid.dimensions))}):",
            f"# {self.metric} = {row.get(self.metric)}. Run it with: odqa run --config best.toml",
        ]
        if self.grid.questions.articles:
            lines.append(f"# questions: {self.grid.questions.describe()} (select those articles yourself)")
        elif self.grid.questions.path:
            spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, questions=self.grid.questions.path))
        return "\n".join(lines) + "\n" + spec.to_toml()


def duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 90
        else f"{seconds / 60:.0f} min"
        if seconds < 5400
        else f"{seconds / 3600:.1f} h"
    )


def format_value(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def row_label(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    return ", ".join(f"{a}={row.get(a)}" for a in axes) or "the fixed pipeline"


def typed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CSV row with its numbers as numbers (metric columns compare and plot)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str) and key != "cell":
            try:
                number = float(value)
            except ValueError:
                out[key] = value
                continue
            out[key] = (
                int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
            )
        else:
            out[key] = value
    return out


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("-inf")


def _hits(rows: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(sorted({str(r.get("hit")) for r in rows})) or "-"


def _md_table(rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return out


def _fold_spread(rows: Sequence[Mapping[str, Any]], axes: Sequence[str], fold: str, metric: str) -> list[list[str]]:
    import numpy as np

    groups: dict[str, list[float]] = {}
    for row in rows:
        others = [a for a in axes if a != fold]
        groups.setdefault(row_label(row, others), []).append(_number(row.get(metric)))
    out = []
    for label, values in groups.items():
        v = np.array([x for x in values if math.isfinite(x)])
        if len(v):
            out.append([label, f"{v.mean():.4f}", f"{v.std():.4f}", f"{v.min():.4f}", f"{v.max():.4f}", str(len(v))])
    return out
