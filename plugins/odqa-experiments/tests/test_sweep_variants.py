"""``odqa sweep``: named variants (one-factor-at-a-time grids), reading the gold passages (``read_gold``), and the
spread over a seed axis."""

from __future__ import annotations

import json

import pytest
from odqa_experiments.grid import read_grid
from odqa_experiments.runner import SweepRunner
from sweep_testdata import rows_of, sweep_then_rerun_changed, write_grid

from odqa_core import data
from odqa_core.errors import UsageError
from odqa_core.qa_metrics import evaluate_predictions
from odqa_core.testing import FakeTrainer, assert_one_line_error

VARIANTS_GRID = """
[sweep]
output_dir = "out"
metric = "gold_f1"
read_gold = true

[pipeline]
retriever = "fake"
reader = "fake-reader"
ks = [1, 5]

[train.fake-reader]
epochs = 2
max_words = 5

[variants]
baseline = {}
one-word = {"train.fake-reader.max_words" = 1}
more-epochs = {"train.fake-reader.epochs" = 3, "train.fake-reader.max_words" = 3}

[axes]
"pipeline.reader_top_k" = [1, 3]
"""


def test_variants_times_axes_with_gold_reading(fake_plugins, odqa, tmp_path):
    result = odqa(f"sweep --config {write_grid(tmp_path, VARIANTS_GRID)}")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    rows = rows_of(out / "results.csv")
    # The variants are the slowest dimension, each with every axes cell; the variant replaces fixed settings.
    assert [(r["variant"], r["pipeline.reader_top_k"]) for r in rows] == [
        ("baseline", "1"), ("baseline", "3"), ("one-word", "1"), ("one-word", "3"),
        ("more-epochs", "1"), ("more-epochs", "3"),
    ]  # fmt: skip
    assert sorted(run["epochs"] for run in FakeTrainer.runs) == [2, 2, 3]  # one training per variant
    assert [r["fake-reader.epoch"] for r in rows] == ["2", "2", "2", "2", "2", "2"]  # best: epoch 2
    by_variant = {r["variant"]: r for r in rows if r["pipeline.reader_top_k"] == "1"}
    for row in rows:
        assert 0.0 <= float(row["gold_exact_match"]) <= float(row["gold_f1"]) <= 100.0
    # Gold reading does not depend on how many retrieved passages are read; it does on the model.
    for name in by_variant:
        assert {r["gold_f1"] for r in rows if r["variant"] == name} == {by_variant[name]["gold_f1"]}
    assert by_variant["one-word"]["gold_f1"] != by_variant["baseline"]["gold_f1"]
    # The gold-passage answers are kept per cell, and they are what the gold columns measure.
    questions = data.load_questions(data.sample_questions_path())
    for row in rows:
        answers = json.loads((out / "cells" / row["cell"] / "gold_predictions.json").read_text(encoding="utf-8"))
        assert set(answers) == {q.id for q in questions}
        qa = evaluate_predictions(answers, questions, "korquad")
        assert qa.f1 == pytest.approx(float(row["gold_f1"]), abs=1e-3)
    md = (out / "results.md").read_text()
    assert "| rank | variant | pipeline.reader_top_k |" in md and "gold_f1" in md
    assert (out / "plot-variant.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best: variant=" in result.output


def test_a_grid_without_read_gold_has_no_gold_columns_and_turning_it_on_reruns(fake_plugins, odqa, tmp_path):
    text = VARIANTS_GRID.replace('metric = "gold_f1"\nread_gold = true\n', 'metric = "f1"\n')
    grid = write_grid(tmp_path, text)
    assert odqa(f"sweep --config {grid}").exit_code == 0
    assert "gold_f1" not in rows_of(tmp_path / "out" / "results.csv")[0]
    write_grid(tmp_path, text.replace('metric = "f1"\n', 'metric = "f1"\nread_gold = true\n'))
    assert len(SweepRunner(read_grid(grid)).pending()) == 6  # rows without gold columns are not reused


def test_repeat_axes_get_their_spread(fake_plugins, odqa, tmp_path):
    text = VARIANTS_GRID.replace('"pipeline.reader_top_k" = [1, 3]', '"train.fake-reader.seed" = [0, 1]')
    result = odqa(f"sweep --config {write_grid(tmp_path, text)}")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "out" / "results.md").read_text()
    assert "**Spread over train.fake-reader.seed** (gold_f1: mean ± std over seeds, n)" in md
    assert "| variant=one-word |" in md


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('one-word = {"train.fake-reader.max_words" = 1}', 'one-word = {"pipeline.reader_top_k" = 2}'),
            "also an axis",
        ),
        (('one-word = {"train.fake-reader.max_words" = 1}', 'one-word = {"train.fake-reader.nope" = 1}'), "nope"),
        (('one-word = {"train.fake-reader.max_words" = 1}', "one-word = 3"), "must be a table"),
        (('one-word = {"train.fake-reader.max_words" = 1}', 'one-word = {"train.fake-reader.epochs" = 0}'), "epochs"),
        (("read_gold = true\n", ""), "needs sweep.read_gold = true"),
        (("read_gold = true", 'read_gold = "yes"'), "read_gold"),
    ],
)
def test_bad_variants_and_gold_settings_are_one_line_errors(change, message, fake_plugins, odqa, tmp_path):
    old, new = change
    assert old in VARIANTS_GRID
    grid = write_grid(tmp_path, VARIANTS_GRID.replace(old, new))
    with pytest.raises(UsageError, match=message):
        read_grid(grid)
    assert_one_line_error(odqa(f"sweep --config {grid}"), None, message)
    assert not (tmp_path / "out" / "results.csv").exists()


def test_renaming_a_variant_recomputes_nothing_and_relabels_its_rows(fake_plugins, odqa, tmp_path):
    _, runs = sweep_then_rerun_changed(odqa, tmp_path, VARIANTS_GRID, "one-word = ", "single-word = ")
    assert len(FakeTrainer.runs) == runs
    rows = rows_of(tmp_path / "out" / "results.csv")
    assert [r["variant"] for r in rows] == ["baseline"] * 2 + ["single-word"] * 2 + ["more-epochs"] * 2
    assert "one-word" not in (tmp_path / "out" / "results.md").read_text()
