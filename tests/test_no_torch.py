"""The core, plugin discovery and the CLI must not import torch (or other heavy libraries)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import odqa_core
from odqa_core import plugins
from odqa_core._cli import cli
for kind in ("retriever", "fuser", "reader", "postprocessor", "analyzer"):
    plugins.registry(kind)
plugins.list_plugins()
heavy = sorted(m for m in ("torch", "transformers", "faiss", "numba", "scipy", "sklearn") if m in sys.modules)
print(",".join(heavy))
"""


def test_importing_core_and_loading_all_plugins_imports_no_torch():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported at discovery: {out.stdout.strip()}"
