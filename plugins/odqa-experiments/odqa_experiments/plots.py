"""The PNG plots of a sweep (matplotlib, the ``plots`` extra: ``pip install 'odqa-experiments[plots]'``).

- ``plot-topk.png``: top-k accuracy against k, one curve per cell (the best 12 when there are more);
- ``plot-<axis>.png`` for every axis with two or more values (epochs, sizes, λ, k ...): the ranking metric
  against the axis, one line per setting of the other axes (the mean over folds, with its std, when there is a
  fold axis);
- ``plot-folds.png`` when an axis ends in ``.fold``: the spread of the metric over the folds, per setting of the
  other axes (box and points).

Figures are drawn with matplotlib's object API (no pyplot state, no display needed) and written atomically.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from odqa_core.outputs import remove_abandoned_temporaries, temporary_sibling
from odqa_experiments.grid import REPEAT_SUFFIXES, option_text

MAX_CURVES = 12


def _save(fig: Any, path: Path) -> Path:
    remove_abandoned_temporaries(path)  # left by a process killed while writing it
    tmp = temporary_sibling(path)
    try:
        fig.savefig(tmp, format="png", dpi=110)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _label(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    return ", ".join(f"{a.rsplit('.', 1)[-1]}={row.get(a)}" for a in axes) or "pipeline"


def plot_sweep(
    rows: Sequence[Mapping[str, Any]], dimensions: Mapping[str, Sequence[Any]], metric: str, out_dir: Path
) -> list[Path] | None:
    """Draw the plots of ``rows`` (a sweep's typed result rows, ranked by ``metric``, varying along
    ``dimensions``) into ``out_dir``; returns the files written, or None when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    axes = list(dimensions)
    folds = [a for a in axes if a.endswith(REPEAT_SUFFIXES)]
    written = []
    path = _topk(Figure, rows, axes, metric, out_dir)
    if path is not None:
        written.append(path)
    for axis in axes:
        if axis in folds or len(dimensions[axis]) < 2:
            continue
        written.append(_by_axis(Figure, rows, axes, axis, folds, metric, dimensions[axis], out_dir))
    if folds:
        written.append(_folds(Figure, rows, axes, folds[0], metric, out_dir))
    return written


def _topk(Figure: Any, rows: Sequence[Mapping[str, Any]], axes: list[str], metric: str, out_dir: Path) -> Path | None:
    ks = sorted({int(m.group(1)) for r in rows for k in r if (m := re.fullmatch(r"acc@(\d+)", k))})
    if len(ks) < 2:
        return None
    ranked = sorted(rows, key=lambda r: -(_number(r.get(metric)) or -math.inf))[:MAX_CURVES]
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    for row in ranked:
        ys = [_number(row.get(f"acc@{k}")) for k in ks]
        points = [(k, y) for k, y in zip(ks, ys) if y is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_label(row, axes))
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("k (passages retrieved)")
    ax.set_ylabel(f"top-k accuracy ({rows[0].get('hit', '')} hits)")
    more = f" (best {MAX_CURVES} of {len(rows)} by {metric})" if len(rows) > MAX_CURVES else ""
    ax.set_title(f"Top-k accuracy per configuration{more}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return _save(fig, out_dir / "plot-topk.png")


def _groups(rows: Sequence[Mapping[str, Any]], others: list[str]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_label(row, others), []).append(row)
    return groups


def _by_axis(
    Figure: Any,
    rows: Sequence[Mapping[str, Any]],
    axes: list[str],
    axis: str,
    folds: list[str],
    metric: str,
    values: Sequence[Any],
    out_dir: Path,
) -> Path:
    import numpy as np

    others = [a for a in axes if a != axis and a not in folds]
    labels = [str(_cell_value(v)) for v in values]
    numeric = all(_number(_cell_value(v)) is not None for v in values)
    positions = [float(_cell_value(v)) for v in values] if numeric else list(range(len(values)))
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    for label, group in list(_groups(rows, others).items())[:MAX_CURVES]:
        xs, ys, errs = [], [], []
        for pos, text in zip(positions, labels):
            found = [_number(r.get(metric)) for r in group if str(r.get(axis)) == text]
            found = [y for y in found if y is not None]
            if found:
                xs.append(pos)
                ys.append(float(np.mean(found)))
                errs.append(float(np.std(found)) if len(found) > 1 else 0.0)
        if any(errs):
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=label)
        else:
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_xticks(positions, labels)  # the axis values themselves, never interpolated ticks
    ax.set_xlabel(axis)
    ax.set_ylabel(metric + (f" (mean ± std over {folds[0].rsplit('.', 1)[-1]}s)" if folds else ""))
    ax.set_title(f"{metric} against {axis}")
    ax.grid(True, alpha=0.3)
    if others:
        ax.legend(fontsize="small")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", axis)
    return _save(fig, out_dir / f"plot-{name}.png")


def _cell_value(value: Any) -> Any:
    """An axis value as the rows hold it (numbers stay numbers, other values as their option text)."""
    return value if _number(value) is not None else option_text(value)


def _folds(
    Figure: Any, rows: Sequence[Mapping[str, Any]], axes: list[str], fold: str, metric: str, out_dir: Path
) -> Path:
    others = [a for a in axes if a != fold]
    groups = list(_groups(rows, others).items())
    fig = Figure(figsize=(max(5.0, 1.1 * len(groups) + 2), 4.8), layout="constrained")
    ax = fig.subplots()
    data = [[y for r in group if (y := _number(r.get(metric))) is not None] for _, group in groups]
    ax.boxplot(data, tick_labels=[label for label, _ in groups])
    for i, ys in enumerate(data, 1):
        ax.scatter([i] * len(ys), ys, s=18, zorder=3)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} over {fold} (each point a fold)")
    ax.grid(True, axis="y", alpha=0.3)
    if len(groups) > 3:
        for text in ax.get_xticklabels():
            text.set_rotation(20)
            text.set_horizontalalignment("right")
    return _save(fig, out_dir / "plot-folds.png")
