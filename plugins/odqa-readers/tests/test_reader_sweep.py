"""``odqa sweep`` with a trained extractive reader on the bundled sample: reader_top_k as an axis, EM/F1 rows,
one training run for all cells."""

from __future__ import annotations

from reader_testdata import reader_top_k_sweep


def test_reader_top_k_grid_on_the_sample(tmp_path):
    rows = reader_top_k_sweep(tmp_path, 'bootstrap_size = "micro"\nvocab_size = 3000\nepochs = 1')
    for row in rows:
        assert 0.0 <= float(row["exact_match"]) <= float(row["f1"]) <= 100.0
    assert len(list((tmp_path / "out" / "cache" / "models").iterdir())) == 1
    assert "ranked by f1" in (tmp_path / "out" / "results.md").read_text()
