"""``odqa sweep`` with a trained extractive reader on the bundled sample: reader_top_k as an axis, EM/F1 rows,
one training run for all cells."""

from __future__ import annotations

import csv

from odqa_core.testing import run_cli


def test_reader_top_k_grid_on_the_sample(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        """
[sweep]
output_dir = "out"
[pipeline]
retriever = "bm25"
reader = "extractive"
ks = [1, 5]
[train.extractive]
bootstrap_size = "micro"
vocab_size = 3000
epochs = 1
[axes]
"pipeline.reader_top_k" = [1, 3]
"""
    )
    result = run_cli(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["pipeline.reader_top_k"] for r in rows] == ["1", "3"]
    for row in rows:
        assert 0.0 <= float(row["exact_match"]) <= float(row["f1"]) <= 100.0
        assert row["extractive.epoch"] == "1"
    assert len(list((tmp_path / "out" / "cache" / "models").iterdir())) == 1
    assert "ranked by f1" in (tmp_path / "out" / "results.md").read_text()
