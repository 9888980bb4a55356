"""DPR with the model families users bring (:mod:`odqa_transformers.model_families`: tiny random-weight models built
offline with each family's own tokenizer), and HuggingFace model directories whose weights or tokenizer are broken
(a pickled ``pytorch_model.bin`` and the safe loader: odqa-transformers' ``tests/test_hf.py``).

Every encoder family trains (``odqa train dpr``), indexes and retrieves through the CLI, and must learn the dozen
questions it trains on; an encoder-decoder is refused in one line; ``pooler`` pooling on a model without a pooler
is a one-line error before anything is encoded.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from odqa_transformers.model_families import (
    ENCODER_FAMILIES,
    FAMILY_QUESTIONS,
    SEQ2SEQ_FAMILIES,
)
from odqa_transformers.testing import FAMILY_DPR_SETTINGS, train_family_dpr

from odqa_core.errors import UsageError
from odqa_core.testing import assert_one_line_error, run_cli

INDEX_LENGTHS = "-o passage_max_length=64 -o query_max_length=32"


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_each_encoder_family_trains_indexes_and_retrieves(family, family_model, family_files, tmp_path):
    corpus, questions = family_files
    model = family_model(family)
    out = tmp_path / "dpr"
    train_family_dpr(model, family_files, out, epochs=10)
    report = json.loads((out / "report.json").read_text())
    # Overfit check: the questions it trained on come back with their passage first (a family that runs but
    # cannot learn fails here).
    assert report["best"]["metric"] >= 0.75, report["epochs"]
    for source in (out / "best", model):  # the trained checkpoint, and the HuggingFace directory as it is
        index = tmp_path / f"index-{source.name}"
        indexed = run_cli(
            f"index --retriever dpr --model {source} --corpus {corpus} --index-dir {index} {INDEX_LENGTHS} "
            "-o pooling=mean -o device=cpu"
        )
        assert indexed.exit_code == 0, indexed.output
        run_file = tmp_path / f"run-{source.name}.jsonl"
        retrieved = run_cli(
            f"retrieve --index-dir {index} --questions {questions} --top-k 3 --output {run_file} -o device=cpu"
        )
        assert retrieved.exit_code == 0, retrieved.output
        rows = [json.loads(line) for line in run_file.read_text().splitlines()]
        assert [r["id"] for r in rows] == [q.id for q in FAMILY_QUESTIONS]
        if source.name == "best":  # the index encodes as training did: its top hits are the gold passages
            first = [r["hits"][0]["doc_id"] for r in rows]
            gold = [q.doc_ids[0] for q in FAMILY_QUESTIONS]
            assert np.mean([a == b for a, b in zip(first, gold)]) >= 0.75, first


@pytest.mark.parametrize("family", SEQ2SEQ_FAMILIES)
def test_an_encoder_decoder_is_refused_as_a_dpr_model(family, family_model, family_files, tmp_path):
    corpus, questions = family_files
    model = family_model(family)
    index = run_cli(f"index --retriever dpr --model {model} --corpus {corpus} --index-dir {tmp_path / 'ix'}")
    assert_one_line_error(index, None, "is an encoder-decoder")
    assert not (tmp_path / "ix").exists()
    train = run_cli(
        f"train dpr --model {model} --corpus {corpus} --questions {questions} --output {tmp_path / 'dpr'} "
        f"--epochs 1 {FAMILY_DPR_SETTINGS}"
    )
    assert_one_line_error(train, None, "is an encoder-decoder")
    assert not (tmp_path / "dpr" / "best").exists()


def test_pooler_pooling_on_a_model_without_a_pooler_is_a_one_line_error(family_model, family_files, tmp_path):
    """ELECTRA has no pooler: refused before anything is encoded (it was an AttributeError mid-encoding)."""
    corpus, questions = family_files
    electra = family_model("electra")
    index = run_cli(
        f"index --retriever dpr --model {electra} -o pooling=pooler --corpus {corpus} --index-dir {tmp_path / 'ix'}"
    )
    assert_one_line_error(index, 2, "has none (use cls or mean)")
    assert not (tmp_path / "ix").exists()
    train = run_cli(
        f"train dpr --model {electra} --corpus {corpus} --questions {questions} --output {tmp_path / 'dpr'} "
        f"--epochs 1 {FAMILY_DPR_SETTINGS.replace('--pooling mean', '--pooling pooler')}"
    )
    assert_one_line_error(train, 2, "has none (use cls or mean)")
    assert not (tmp_path / "dpr" / "best").exists()
    with_pooler = run_cli(
        f"index --retriever dpr --model {family_model('klue-roberta')} -o pooling=pooler --corpus {corpus} "
        f"--index-dir {tmp_path / 'ok'} {INDEX_LENGTHS}"
    )
    assert with_pooler.exit_code == 0, with_pooler.output


def test_huggingface_dpr_encoders_need_pooler_pooling(family_model):
    """HF's own DPR encoders output only their pooled vector: pooler works, cls/mean are a usage error."""
    from odqa_dense.encoder import BiEncoder
    from transformers import AutoTokenizer, DPRConfig, DPRContextEncoder

    tokenizer = AutoTokenizer.from_pretrained(str(family_model("bert")))
    config = DPRConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    encoder = BiEncoder.from_models(tokenizer, DPRContextEncoder(config), pooling="pooler")
    assert encoder.encode(["한강은 서울을 흐른다"], "passage", 32, desc="").shape == (1, 32)
    with pytest.raises(UsageError, match="use pooling pooler"):
        BiEncoder.from_models(tokenizer, DPRContextEncoder(config), pooling="cls")


# --- weights or a tokenizer that are broken ------------------------------------------------------------------------


def _copy_without_weights(model, target):
    shutil.copytree(model, target)
    (target / "model.safetensors").unlink()
    return target


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_broken_model_safetensors_is_a_one_line_error(damage, family_model, family_files, tmp_path):
    corpus, _ = family_files
    model = family_model("bert")
    broken = _copy_without_weights(model, tmp_path / "broken")
    data = (model / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 64 if damage == "garbage" else data[: len(data) // 2])
    result = run_cli(f"index --retriever dpr --model {broken} --corpus {corpus} --index-dir {tmp_path / 'ix'}")
    assert_one_line_error(result, None, f"{broken / 'model.safetensors'} is not a valid safetensors file")
    assert not (tmp_path / "ix").exists()


@pytest.mark.parametrize(
    "content",
    ['{"version": "1.0", "model": {"type": "WordPiece"}}', '{"added_tokens": [], "model": {"type": "?"}}'],
    ids=["missing-entry", "unknown-model"],
)
def test_a_broken_tokenizer_json_is_a_one_line_error(content, family_model, family_files, tmp_path):
    corpus, _ = family_files
    broken = shutil.copytree(family_model("klue-roberta"), tmp_path / "broken")
    (broken / "tokenizer.json").write_text(content)
    result = run_cli(f"index --retriever dpr --model {broken} --corpus {corpus} --index-dir {tmp_path / 'ix'}")
    assert_one_line_error(result, None, f"cannot load a tokenizer from {broken}")
