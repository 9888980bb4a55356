"""The core, plugin discovery and the CLI must not import torch (or other heavy libraries)."""

from __future__ import annotations

from odqa_core.testing import heavy_modules_imported

CHECK = """
import sys
import odqa_core
from odqa_core import plugins
from odqa_core._cli import cli
for kind in ("retriever", "fuser", "reader", "postprocessor", "analyzer"):
    plugins.registry(kind)
plugins.list_plugins()
"""


def test_importing_core_and_loading_all_plugins_imports_no_torch(tmp_path):
    heavy = heavy_modules_imported(CHECK, ("torch", "transformers", "faiss", "numba", "scipy", "sklearn"), tmp_path)
    assert heavy == [], f"heavy modules imported at discovery: {heavy}"
