"""Helpers of the sweep tests: grid files written into a test's directory, the rows of a results.csv, a sweep rerun
after its grid changed."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odqa_core.testing import FakeTrainer


def write_grid(directory: Path, text: str) -> Path:
    """``text`` as ``directory/grid.toml``."""
    path = directory / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(path: Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv``, as read back (every value a string)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sweep_then_rerun_changed(odqa: Callable[[str], Any], directory: Path, text: str, old: str, new: str) -> tuple:
    """Sweep the grid ``text``, then sweep it again after ``old`` is replaced by ``new`` in its file (the same
    output directory): the second run's result and how many training runs the first one started."""
    assert old in text
    grid = write_grid(directory, text)
    assert odqa(f"sweep --config {grid}").exit_code == 0
    trained = len(FakeTrainer.runs)
    write_grid(directory, text.replace(old, new))
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    return result, trained
