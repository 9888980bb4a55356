"""The test models of the families users bring: each builder reproduces what makes its family different (else the
tests that use them — DPR's, the readers' — would prove nothing)."""

from __future__ import annotations

import json

import pytest
from odqa_transformers.model_families import build_family_model, family_texts

from odqa_core import UsageError


def test_the_families_have_their_quirks(family_model):
    from transformers import AutoConfig, AutoTokenizer

    klue = AutoTokenizer.from_pretrained(str(family_model("klue-roberta")))
    assert (klue.cls_token_id, klue.pad_token_id, klue.sep_token_id) == (0, 1, 2)
    assert "token_type_ids" in klue.model_input_names and max(klue("a", "b")["token_type_ids"]) == 1
    assert AutoConfig.from_pretrained(str(family_model("klue-roberta"))).type_vocab_size == 1
    assert type(AutoTokenizer.from_pretrained(str(family_model("xlm-roberta")))).__name__.startswith("XLMRoberta")
    assert "model.safetensors" in {p.name for p in family_model("electra").iterdir()}
    forced = json.loads((family_model("bart-forced-bos") / "generation_config.json").read_text())
    assert forced["forced_bos_token_id"] == 0
    plain = json.loads((family_model("bart") / "generation_config.json").read_text())
    assert "forced_bos_token_id" not in plain
    kobart = AutoTokenizer.from_pretrained(str(family_model("kobart")))
    assert kobart("안녕")["input_ids"] == kobart("안녕", add_special_tokens=False)["input_ids"]  # adds none


def test_an_unknown_family_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown model family 'gpt'; choose one of klue-roberta, bert"):
        build_family_model("gpt", tmp_path / "gpt", family_texts())
    assert not (tmp_path / "gpt").exists()
