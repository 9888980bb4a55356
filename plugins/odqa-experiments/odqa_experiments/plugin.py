"""The ``experiments`` odqa plugin: adds the commands ``odqa sweep`` and ``odqa tune`` (no components)."""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_commands(cli):
    from odqa_experiments.cli import sweep, tune

    cli.add_command(sweep)
    cli.add_command(tune)
