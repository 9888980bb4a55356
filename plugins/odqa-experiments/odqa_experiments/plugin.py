"""The ``experiments`` odqa plugin: adds the commands ``odqa sweep`` and ``odqa tune`` (no components).

The commands are added by reference (:func:`odqa_core.plugins.lazy_command`): their module is imported when one of
them runs or shows its own help, not for ``odqa --help``.
"""

from __future__ import annotations

import odqa_core
from odqa_core.plugins import lazy_command


@odqa_core.hookimpl
def register_commands(cli):
    sweep = "Run a grid of pipeline and training settings; one row per cell in results.csv, with tables and plots."
    tune = "Evaluate a grid of a fuser's options (λ, weights, normalization, ...) on dev questions; report the best."
    cli.add_command(lazy_command("odqa_experiments.cli:sweep", name="sweep", help=sweep))
    cli.add_command(lazy_command("odqa_experiments.cli:tune", name="tune", help=tune))
