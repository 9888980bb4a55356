"""odqa-experiments: ``odqa sweep`` (grids of pipeline and training settings) and ``odqa tune`` (a fuser's options).

- :mod:`odqa_experiments.grid` — the grid file: read and checked (tables, axes, variants)
- :mod:`odqa_experiments.caches` — corpora and questions loaded once, trained models and built indexes reused
- :mod:`odqa_experiments.planning` — the cells: settings, the models each trains, keys
- :mod:`odqa_experiments.reports` — results.csv, results.md, best.toml, the time left
- :mod:`odqa_experiments.plots` — the PNG plots (matplotlib, the ``plots`` extra)
- :mod:`odqa_experiments.runner` — runs the pending cells
- :mod:`odqa_experiments.tuning` — ``odqa tune``: a fuser's options on dev questions, the retrievers' work shared
- :mod:`odqa_experiments.cli` — the two commands, registered by :mod:`odqa_experiments.plugin`
"""

from __future__ import annotations

__version__ = "0.1.0"
