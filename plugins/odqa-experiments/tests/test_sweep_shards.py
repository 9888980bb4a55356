"""``odqa sweep`` with ``sweep.shards``: every index the sweep builds is a sharded index (``odqa index --shards
N``), searched through its shards, with the same metrics as the single index; cached sharded indexes are reused."""

from __future__ import annotations

import pytest
from sweep_testdata import rows_of, write_grid

from odqa_core.shards import is_sharded
from odqa_core.testing import assert_one_line_error

GRID = """
[sweep]
output_dir = "{out}"
cache_dir = "{cache}"
metric = "mrr@10"
{shards}

[pipeline]
retriever = "fake"
ks = [1, 5, 10, 20]

[axes]
"pipeline.options.fake.tokens" = ["words", "chars"]
"""

#: Columns that differ between two runs of the same cell (times, what this run trained or reused).
VOLATILE = {"trained", "train_s", "index_s", "retrieve_s", "read_s", "cell_s", "finished"}


def sweep_rows(odqa, directory, out, cache, shards=""):
    directory.mkdir(exist_ok=True)
    grid = write_grid(directory, GRID.format(out=out, cache=cache, shards=shards))
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows_of(directory / out / "results.csv")]


def test_a_sweep_over_sharded_indexes_gives_the_single_index_metrics(fake_plugins, odqa, tmp_path):
    single = sweep_rows(odqa, tmp_path / "a", "single", "cache-single")
    sharded = sweep_rows(odqa, tmp_path / "b", "sharded", "cache-sharded", "shards = 3")
    assert len(single) == 2 and len(sharded) == 2
    assert {"acc@1", "mrr@10", "acc@20"} <= set(sharded[0])
    assert sharded == single  # same cells (keys), same metrics to the last digit
    indexes = sorted((tmp_path / "b" / "cache-sharded" / "indexes").iterdir())
    assert len(indexes) == 2 and all(is_sharded(path) for path in indexes)
    assert all(len(list(path.glob("shard-*"))) == 3 for path in indexes)
    assert not any(is_sharded(path) for path in (tmp_path / "a" / "cache-single" / "indexes").iterdir())
    # Another sweep sharing the cache loads the sharded indexes instead of building them again.
    stamps = {path: (path / "manifest.json").stat().st_mtime_ns for path in indexes}
    again = sweep_rows(odqa, tmp_path / "b", "sharded-again", "cache-sharded", "shards = 3")
    assert again == single
    assert {path: (path / "manifest.json").stat().st_mtime_ns for path in indexes} == stamps


@pytest.mark.parametrize("value", ["0", "true", '"2"'])
def test_bad_shard_counts_are_refused(fake_plugins, odqa, tmp_path, value):
    grid = write_grid(tmp_path, GRID.format(out="out", cache="cache", shards=f"shards = {value}"))
    result = odqa(f"sweep --config {grid}")
    assert_one_line_error(result, contains="sweep.shards")
    assert not (tmp_path / "out").exists()
