"""The example grids in benchmarks/grids/ are valid: every cell of each plans (names, options and training
settings checked) with the plugins of this env installed. KorQuAD grids skip when ../shared is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odqa_core.testing import run_cli

ROOT = Path(__file__).resolve().parents[3]
GRIDS = sorted((ROOT / "benchmarks" / "grids").glob("*.toml"))
KORQUAD = ROOT.parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev.json"


def test_there_are_grids():
    assert {g.stem for g in GRIDS} >= {"korquad_dpr_sizes_epochs", "korquad_dpr_folds", "sample_dpr_cross"}


@pytest.mark.parametrize("grid", GRIDS, ids=[g.stem for g in GRIDS])
def test_example_grid_plans(grid, tmp_path):
    if "korquad" in grid.stem and not KORQUAD.is_file():
        pytest.skip(f"{KORQUAD} is absent")
    result = run_cli(f"sweep --config {grid} --output-dir {tmp_path / 'out'} --dry-run --json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert len(plan) >= 4 and len({cell["key"] for cell in plan}) == len(plan)
    assert not (tmp_path / "out").exists()
