"""A sweep cell's pipeline is one :class:`PipelineSpec`: made once when the grid is planned, its components created
once, given its trained model when it runs, written back as ``best.toml``; and the cell keys of earlier sweeps."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from odqa_experiments.grid import read_grid
from odqa_experiments.runner import SweepRunner
from sweep_testdata import rows_of, write_grid

from odqa_core import plugins
from odqa_core.spec import PipelineSpec

FUSED_GRID = """
[sweep]
output_dir = "out"
metric = "f1"

[pipeline]
retriever = "fake"
fuser = "fake-sum"
reader = "fake-reader"
ks = [1, 5]

[train.fake-reader]
checkpoint = "last"

[axes]
"train.fake-reader.epochs" = [1, 2]
"pipeline.options.fake-sum.depth" = [3, 10]
"""


def test_cell_keys_stay_those_of_earlier_sweeps(fake_plugins, tmp_path):
    """The keys the planning made before the spec (computed by that code on this grid): the rows of results.csv
    files written by earlier versions still match their cells, so a rerun does not compute them again."""
    runner = SweepRunner(read_grid(write_grid(tmp_path, FUSED_GRID)))
    assert [cell.key for cell in runner.cells] == [
        "1bfe8afa1c8b308f",
        "c0849c2b7fd0f1a2",
        "561dc85c1b3d0cab",
        "8e04d431ea6dca46",
    ]


@pytest.fixture
def created(monkeypatch) -> Counter:
    """How many times each pipeline component (``(kind, name)``) was created; trainers not counted."""
    counts: Counter = Counter()
    create = plugins.create

    def counting(kind, name, options=None):
        if kind != "trainer":
            counts[kind, name] += 1
        return create(kind, name, options)

    monkeypatch.setattr(plugins, "create", counting)
    return counts


def test_each_cell_creates_its_components_once(fake_plugins, tmp_path, toy_files, created):
    corpus, questions = toy_files
    text = FUSED_GRID.replace("ks = [1, 5]", f'ks = [1, 5]\ncorpus = "{corpus}"\nquestions = "{questions}"')
    text = text.replace('checkpoint = "last"', f'checkpoint = "last"\nquestions = "{questions}"')
    runner = SweepRunner(read_grid(write_grid(tmp_path, text)))
    stages = {("retriever", "fake"), ("fuser", "fake-sum"), ("reader", "fake-reader")}
    # Planning: each cell's spec made once, the fuser (which chose the retrievers) included.
    assert created == Counter(dict.fromkeys(stages, len(runner.cells)))
    cell = runner.cells[0]
    # The stage the cell trains has no model until the cell runs; then it has the checkpoint it chose.
    assert "model" not in cell.spec.options_of("fake-reader")
    created.clear()
    row = runner.run_cell(cell)
    assert created == Counter(dict.fromkeys(stages, 1))  # the cell's spec with its model, created once
    settings = json.loads((runner.grid.output_dir / "cells" / cell.key / "cell.json").read_text())["settings"]
    assert settings["options"]["fake-reader.model"].endswith(f"epoch-{row['fake-reader.epoch']}")


def test_a_cell_that_trains_nothing_runs_the_components_it_was_planned_with(fake_plugins, tmp_path, created):
    text = '[pipeline]\nretriever = "fake"\nfuser = "fake-sum"\n[axes]\n"pipeline.options.fake-sum.depth" = [3, 10]\n'
    runner = SweepRunner(read_grid(write_grid(tmp_path, text)))
    assert created == {("retriever", "fake"): 2, ("fuser", "fake-sum"): 2}
    created.clear()
    for cell in runner.cells:
        runner.run_cell(cell)
    assert created == {}


def test_best_toml_is_the_best_cells_spec_and_runs_as_it_ran(fake_plugins, odqa, tmp_path, toy_files):
    corpus, questions = toy_files
    text = FUSED_GRID.replace("ks = [1, 5]", f'ks = [1, 5]\ncorpus = "{corpus}"\nquestions = "{questions}"')
    text = text.replace('checkpoint = "last"', f'checkpoint = "last"\nquestions = "{questions}"')
    grid = write_grid(tmp_path, text)
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    rows = rows_of(out / "results.csv")
    best = max(rows, key=lambda r: float(r["f1"]))  # the first of equals, as the sweep's ranking
    runner = SweepRunner(read_grid(grid))
    cell = next(c for c in runner.cells if c.key == best["cell"])
    spec = PipelineSpec.from_file(out / "best.toml")
    model = spec.options_of("fake-reader")["model"]
    assert model.endswith(f"epoch-{best['fake-reader.epoch']}")
    assert spec.options_of("fake-sum") == {"depth": int(best["pipeline.options.fake-sum.depth"])}
    ran = cell.spec.with_options({"fake-reader.model": model})  # the spec the cell ran
    assert spec.to_settings() == {**ran.to_settings(), "questions": str(questions.resolve())}
    assert spec.data.corpus == str(corpus.resolve())
    assert (out / "best.toml").read_text().startswith(f"# The best cell of {grid.name} (")
    run = odqa(f"run --config {out / 'best.toml'} --output-dir {tmp_path / 'rerun'} --json")
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)
    assert summary["reader_metrics"]["f1"] == pytest.approx(float(best["f1"]), abs=1e-3)
    assert summary["retrieval"]["metrics"][best["hit"]]["acc@5"] == pytest.approx(float(best["acc@5"]), abs=1e-5)
