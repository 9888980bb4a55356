"""Discovering odqa-dense — registries, ``odqa --help``, ``odqa train dpr --help``, option errors — imports no torch.

``tests/test_no_torch.py`` checks the registries and the CLI import for every installed plugin; this adds what only
the dense plugin brings: the ``train dpr`` command, ``dpr`` options being validated, the ``dpr`` trainer being
created and validated, and usage errors of training.
"""

from __future__ import annotations

from odqa_core.testing import heavy_modules_imported

CHECK = r"""
import sys
from click.testing import CliRunner

import odqa_core
from odqa_core import plugins
from odqa_core._cli import cli

for kind in ("retriever", "fuser", "reader", "postprocessor", "analyzer", "trainer"):
    plugins.registry(kind)
assert "dpr" in plugins.registry("retriever"), sorted(plugins.registry("retriever"))
assert "dpr" in plugins.registry("trainer"), sorted(plugins.registry("trainer"))
assert any(row["name"] == "dense" for row in plugins.list_plugins())

cls = plugins.get_component_class("retriever", "dpr")
retriever = cls.from_options({"model": "some/model", "index_type": "hnsw", "device": "cpu"})
retriever.config()
try:
    cls.from_options({"index_type": "annoy"})
except odqa_core.UsageError:
    pass
else:
    raise AssertionError("index_type=annoy accepted")

settings = {"model": "some/model", "epochs": 2, "eval_ks": [1, 5], "folds": 3, "fold": 2}
trainer = plugins.create("trainer", "dpr", settings)
assert trainer.stage == "retriever" and trainer.config()["fold"] == 2
for bad in ({"epochs": 0}, {"fold": 6, "folds": 5}, {"bogus": 1}):
    try:
        plugins.create("trainer", "dpr", bad)
    except odqa_core.UsageError:
        pass
    else:
        raise AssertionError(f"trainer options {bad} accepted")

runner = CliRunner()
for args, expected_code, expected in (
    (["--help"], 0, "train"),
    (["train", "--help"], 0, "dpr"),
    (["train", "dpr", "--help"], 0, "--hard-negatives"),
    (["train", "dpr", "--help"], 0, "--keep-epochs"),
    (["index", "--help"], 0, "--model"),
    (["plugins"], 0, "retrievers: dpr"),
    (["plugins"], 0, "trainers: dpr"),
    (["train", "dpr", "--epochs", "0", "--output", "never-written"], 2, "epochs"),
    (["train", "dpr", "--folds", "5", "--fold", "6", "--output", "never-written"], 2, "out of range"),
):
    result = runner.invoke(cli, args)
    assert result.exit_code == expected_code and expected in result.output, (args, result.exit_code, result.output)
"""


def test_dense_discovery_and_cli_import_no_torch(tmp_path):
    heavy = heavy_modules_imported(CHECK, ("torch", "transformers", "faiss", "tokenizers", "safetensors"), tmp_path)
    assert heavy == [], f"heavy modules imported at discovery: {heavy}"
    assert not (tmp_path / "never-written").exists()


HELP_ONLY = r"""
import os
os.environ["ODQA_BLOCK_PLUGINS"] = "example"  # the test suite's own outside plugin imports numpy on purpose
from click.testing import CliRunner
from odqa_core._cli import cli

result = CliRunner().invoke(cli, ["train", "dpr", "--help"])
assert result.exit_code == 0 and "--hard-negatives" in result.output, result.output
"""


def test_train_dpr_help_imports_not_even_numpy(tmp_path):
    # `odqa train dpr --help` shows the layout and pooling choices from the checkpoint module, which loads no numpy
    # (the store's arrays are read through numpy only when a store is opened).
    heavy = heavy_modules_imported(
        HELP_ONLY, ("numpy", "torch", "transformers", "scipy", "odqa_dense.encoder"), tmp_path
    )
    assert heavy == [], f"odqa train dpr --help imported {heavy}"
