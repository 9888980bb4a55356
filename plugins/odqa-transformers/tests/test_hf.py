"""Finding and loading HuggingFace models: a missing or wrong model is a one-line error naming what was looked for;
a pickled ``pytorch_model.bin`` goes through torch's safe loader only; broken weights or tokenizer files are
one-line errors naming the file; fingerprints follow the files, not where they are."""

from __future__ import annotations

import argparse
import re
import shutil

import pytest
from odqa_transformers import hf

from odqa_core import DataError, UsageError


def test_missing_model_path_names_the_path(tmp_path):
    missing = str(tmp_path / "no" / "such" / "model")
    with pytest.raises(DataError, match="not found") as info:
        hf.resolve_model_dir(missing)
    assert missing in str(info.value)


def test_model_path_that_is_not_a_model(tmp_path):
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        hf.resolve_model_dir(str(tmp_path / "file.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no config.json"):
        hf.resolve_model_dir(str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="no model"):
        hf.resolve_model_dir("  ")


def test_unknown_hub_id_offline_is_a_data_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    monkeypatch.chdir(tmp_path)  # so the id cannot name a local directory
    with pytest.raises(DataError, match="HF_HUB_OFFLINE") as info:
        hf.resolve_model_dir("no-such-org/no-such-model")
    assert "no-such-org/no-such-model" in str(info.value)


def test_devices_and_precisions_that_are_not_there_are_usage_errors():
    with pytest.raises(UsageError, match="device must be one of auto, cpu, cuda, mps, got 'tpu'"):
        hf.resolve_device("tpu")
    cpu = hf.resolve_device("cpu")
    assert hf.resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        hf.resolve_precision("fp16", cpu)
    with pytest.raises(UsageError, match="precision must be one of"):
        hf.resolve_precision("fp8", cpu)


def test_the_fingerprint_follows_the_files_not_the_directory(family_model, tmp_path):
    bert = family_model("bert")
    copy = shutil.copytree(bert, tmp_path / "copy")
    assert hf.fingerprint(copy) == hf.fingerprint(bert)
    assert hf.fingerprint(family_model("electra")) != hf.fingerprint(bert)


# --- weights that are a pickle, or not weights at all ---------------------------------------------------------------


def _copy_without_weights(model, target):
    shutil.copytree(model, target)
    (target / "model.safetensors").unlink()
    return target


@pytest.fixture(scope="module")
def pickled_model(family_model, tmp_path_factory):
    """The bert family model with its weights as a pickled ``pytorch_model.bin`` (tensors only), as older hub
    models ship them."""
    import torch
    from safetensors.torch import load_file

    model = family_model("bert")
    target = _copy_without_weights(model, tmp_path_factory.mktemp("pickled") / "bert-bin")
    torch.save(load_file(str(model / "model.safetensors")), target / "pytorch_model.bin")
    return target


def test_a_pickled_model_loads_through_the_safe_loader_only(pickled_model, family_model, monkeypatch):
    import torch

    weights_only = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        weights_only.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    from_pickle = hf.load_encoder(pickled_model).state_dict()
    assert weights_only and all(value is True for value in weights_only), weights_only
    from_safetensors = hf.load_encoder(family_model("bert")).state_dict()
    assert sorted(from_pickle) == sorted(from_safetensors)
    # The family model is a BertForMaskedLM: its files hold no pooler, which AutoModel initialises at random.
    stored = [name for name in from_pickle if not name.startswith("pooler.")]
    assert len(stored) > 10 and all(torch.equal(from_pickle[name], from_safetensors[name]) for name in stored)


def test_a_pickle_the_safe_loader_refuses_is_a_one_line_error(pickled_model, tmp_path):
    import torch

    unsafe = shutil.copytree(pickled_model, tmp_path / "unsafe")
    torch.save({"embeddings": argparse.Namespace(note="not a tensor")}, unsafe / "pytorch_model.bin")
    with pytest.raises(DataError, match="is a pickle") as info:
        hf.load_encoder(unsafe)
    message = str(info.value)
    assert "\n" not in message and str(unsafe / "pytorch_model.bin") in message
    assert "argparse.Namespace" in message and "convert it to safetensors" in message
    assert "weights_only=False" not in message


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_broken_model_safetensors_is_a_one_line_error(damage, family_model, tmp_path):
    model = family_model("bert")
    broken = _copy_without_weights(model, tmp_path / "broken")
    data = (model / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 64 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DataError, match="is not a valid safetensors file") as info:
        hf.load_encoder(broken)
    assert "\n" not in str(info.value) and str(broken / "model.safetensors") in str(info.value)


@pytest.mark.parametrize(
    "content",
    ['{"version": "1.0", "model": {"type": "WordPiece"}}', '{"added_tokens": [], "model": {"type": "?"}}'],
    ids=["missing-entry", "unknown-model"],
)
def test_a_broken_tokenizer_json_is_a_one_line_error(content, family_model, tmp_path):
    broken = shutil.copytree(family_model("klue-roberta"), tmp_path / "broken")
    (broken / "tokenizer.json").write_text(content)
    with pytest.raises(DataError, match=re.escape(f"cannot load a tokenizer from {broken}")) as info:
        hf.load_tokenizer(broken)
    assert "\n" not in str(info.value)
