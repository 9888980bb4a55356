"""Steps several odqa-readers test modules share: a micro ``odqa train reader`` run and a reader_top_k sweep."""

from __future__ import annotations

import csv
from pathlib import Path

from odqa_core.testing import run_cli, write_toy_files


def train_micro_reader(tmp_path: Path, questions: list, epochs: int, extra: str = "") -> tuple:
    """``(result, output, questions file)`` of ``odqa train reader`` on ``questions`` (written under ``tmp_path``):
    a micro bootstrap reader with short windows, trained ``epochs`` epochs into ``output``, ``tmp_path/cli``."""
    _, questions_file = write_toy_files(tmp_path, questions=questions)
    output = tmp_path / "cli"
    result = run_cli(
        f"train reader --questions {questions_file} --output {output} --bootstrap micro --vocab-size 600 "
        f"--epochs {epochs} --batch-size 8 -o max_length=96 -o doc_stride=32 {extra}"
    )
    return result, output, questions_file


def reader_top_k_sweep(tmp_path: Path, train_extractive: str) -> list[dict[str, str]]:
    """The rows of ``odqa sweep`` over ``pipeline.reader_top_k`` 1 and 3 (bm25 + extractive on the bundled sample,
    the reader trained by the ``[train.extractive]`` settings ``train_extractive``), checked: one row per value,
    each read by the reader of epoch 1."""
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f"""
[sweep]
output_dir = "out"
[pipeline]
retriever = "bm25"
reader = "extractive"
ks = [1, 5]
[train.extractive]
{train_extractive}
[axes]
"pipeline.reader_top_k" = [1, 3]
"""
    )
    result = run_cli(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["pipeline.reader_top_k"] for r in rows] == ["1", "3"]
    assert {row["extractive.epoch"] for row in rows} == {"1"}
    return rows
