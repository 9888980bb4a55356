"""Discovering odqa-readers — registries, ``odqa train reader --help``, reader and trainer options and their errors,
a pipeline file — imports no torch: only reading or training does."""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import sys
from click.testing import CliRunner

import odqa_core
from odqa_core import plugins
from odqa_core._cli import cli

assert {"extractive", "generative"} <= set(plugins.registry("reader")), sorted(plugins.registry("reader"))
for name, options in (("extractive", {"max_length": 256, "doc_stride": 64}), ("generative", {"mode": "passages"})):
    reader = plugins.create("reader", name, {"model": "some/model", "device": "cpu", **options})
    reader.config()
    try:
        plugins.create("reader", name, {"max_length": -1})
    except odqa_core.UsageError:
        pass
    else:
        raise AssertionError(f"{name}: max_length=-1 was accepted")
assert {"extractive", "generative"} <= set(plugins.registry("trainer")), sorted(plugins.registry("trainer"))
for name in ("extractive", "generative"):
    trainer = plugins.create("trainer", name, {"model": "some/model", "epochs": 2, "folds": 3, "fold": 2})
    assert trainer.stage == "reader" and trainer.train_config().reader == name
    for bad in ({"epochs": 0}, {"fold": 6, "folds": 5}, {"reader": name}):
        try:
            plugins.create("trainer", name, bad)
        except odqa_core.UsageError:
            pass
        else:
            raise AssertionError(f"{name} trainer: {bad} was accepted")
for args in (["train", "reader", "--help"], ["run", "--help"], ["evaluate", "--help"]):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
result = CliRunner().invoke(cli, ["train", "reader", "--output", "/nonexistent/x", "--epochs", "0"])
assert result.exit_code == 2 and "epochs" in result.output, result.output
result = CliRunner().invoke(cli, ["train", "reader", "--output", "/nonexistent/x", "--folds", "5", "--fold", "6"])
assert result.exit_code == 2 and "out of range" in result.output, result.output
assert "torch" not in sys.modules, "torch was imported"
assert "transformers" not in sys.modules, "transformers was imported"
print("ok")
"""


def test_discovery_and_option_errors_import_no_torch():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr
