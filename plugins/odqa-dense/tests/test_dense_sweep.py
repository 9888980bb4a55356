"""``odqa sweep`` with real DPR training on the bundled sample: epochs shared by one run, cached models and
indexes reused by a second grid, the trained checkpoint is what the retriever searched with."""

from __future__ import annotations

import csv
import json

from odqa_core.spec import read_pipeline_file
from odqa_core.testing import run_cli

GRID = """
[sweep]
output_dir = "out"
cache_dir = "cache"
share_epochs = true
[pipeline]
retriever = "dpr"
ks = [1, 5, 20]
[train.dpr]
bootstrap_size = "micro"
vocab_size = 3000
ict_epochs = 0
checkpoint = "last"
[axes]
"train.dpr.epochs" = [1, 2]
"""


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_dpr_epochs_grid_on_the_sample(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    result = run_cli(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "out" / "results.csv")
    assert [r["train.dpr.epochs"] for r in rows] == ["1", "2"]
    assert [r["dpr.epoch"] for r in rows] == ["1", "2"] and {r["dpr.trained_epochs"] for r in rows} == {"2"}
    models = list((tmp_path / "cache" / "models").iterdir())
    assert len(models) == 1  # one run of 2 epochs serves both cells
    manifest = json.loads((models[0] / "checkpoints.json").read_text())
    assert [e["epoch"] for e in manifest["epochs"]] == [1, 2]
    assert all((models[0] / e["path"] / "manifest.json").is_file() for e in manifest["epochs"])
    indexes = sorted(p.name for p in (tmp_path / "cache" / "indexes").iterdir())
    assert len(indexes) == 2 and all(name.startswith("dpr-") for name in indexes)  # one per checkpoint
    for row in rows:
        assert 0.0 <= float(row["acc@1"]) <= float(row["acc@5"]) <= float(row["acc@20"]) <= 1.0
    # Each cell searched with its epoch's checkpoint: its summary names it.
    for row in rows:
        summary = json.loads((tmp_path / "out" / "cells" / row["cell"] / "summary.json").read_text())
        assert summary["components"]["dpr"]["model"].endswith(f"epoch-{row['dpr.epoch']}")
    best = read_pipeline_file(tmp_path / "out" / "best.toml")
    assert best["options"]["dpr.model"].startswith(str(models[0]))

    # A second grid with the same training settings, fixed at 2 epochs, reuses the model and the index.
    other = tmp_path / "fixed.toml"
    other.write_text(
        GRID.replace('output_dir = "out"', 'output_dir = "out2"')
        .replace('"train.dpr.epochs" = [1, 2]', '"pipeline.top_k" = [20, 50]')
        .replace('checkpoint = "last"', 'checkpoint = "last"\nepochs = 2')
    )
    result = run_cli(f"sweep --config {other}")
    assert result.exit_code == 0, result.output
    assert "training dpr" not in result.output
    assert len(list((tmp_path / "cache" / "models").iterdir())) == 1
    assert sorted(p.name for p in (tmp_path / "cache" / "indexes").iterdir()) == indexes
    again = rows_of(tmp_path / "out2" / "results.csv")
    assert again[0]["acc@20"] == rows[1]["acc@20"]
