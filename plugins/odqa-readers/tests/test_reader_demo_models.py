"""Where ``model=sample`` comes from: a hook (odqa_readers.demo, which the base class reads) that the readers plugin
module fills with the bundled sample's demo readers (odqa_readers.sample trains them with odqa_readers.training,
which builds on the base class: the base importing them was a design circle). The hook lives apart from the base
class so that loading the plugin imports neither. And the readers need nothing of odqa-dense."""

from __future__ import annotations

import subprocess
import sys

import pytest
from odqa_readers import base, demo

from odqa_core import UsageError

CHECK = r"""
import sys

import odqa_readers.cli, odqa_readers.extractive, odqa_readers.generative, odqa_readers.lexical
import odqa_readers.trainers, odqa_readers.training
from odqa_readers import base, demo

# The readers import nothing of odqa-dense (nor faiss): they share odqa-transformers with it instead.
assert not [m for m in sys.modules if m.split(".")[0] in ("odqa_dense", "faiss")], sorted(sys.modules)
assert demo.demo_models() is None  # no registry loaded yet: nobody has provided the demo models
try:
    base.resolve_model("sample", "no-such-reader")  # loads the plugins, which provide them; no demo for this one
except Exception as exc:
    assert "there is no demo model for reader 'no-such-reader'" in str(exc), exc
else:
    raise AssertionError("resolve_model accepted a reader without a demo model")
from odqa_readers import plugin

assert demo.demo_models() is plugin.sample_model
print("ok")
"""


def test_the_readers_plugin_provides_the_demo_models_and_the_readers_need_no_dense():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr


def test_model_sample_resolves_through_the_provided_demo_models(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "_provider", lambda reader: tmp_path / f"demo-{reader}")
    assert base.resolve_model("sample", "extractive") == tmp_path / "demo-extractive"


def test_without_demo_models_model_sample_is_a_one_line_error(monkeypatch):
    from odqa_core import plugins

    monkeypatch.setattr(demo, "_provider", None)
    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: None)  # as if the readers plugin were blocked
    with pytest.raises(UsageError, match="model=sample needs the readers plugin loaded") as info:
        base.resolve_model("sample", "extractive")
    assert "\n" not in str(info.value)
