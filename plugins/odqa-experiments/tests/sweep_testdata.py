"""Helpers of the sweep tests: grid files written into a test's directory, the rows of a results.csv."""

from __future__ import annotations

import csv
from pathlib import Path


def write_grid(directory: Path, text: str) -> Path:
    """``text`` as ``directory/grid.toml``."""
    path = directory / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(path: Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv``, as read back (every value a string)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
