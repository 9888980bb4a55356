"""Reading a DPR checkpoint's encoders without the dense retriever: the passage side of each layout, checksums
verified, and one-line errors for a store that is not one or a layout this version does not know.

The checkpoints are written here the way odqa-dense writes them (an odqa store of kind ``checkpoint``, name
``dpr``: config.json, the tokenizer files and the encoders' safetensors), from two micro BERTs with other weights,
so that a test can tell which tower was read."""

from __future__ import annotations

import pytest
from odqa_transformers import encoder_checkpoint as ckpt
from odqa_transformers.bootstrap import bootstrap_encoder

from odqa_core import DataError, IndexFormatError
from odqa_core.storage import write_store


@pytest.fixture(scope="module")
def towers(vocab_texts):
    """``(tokenizer, question model, passage model)``: one tokenizer, two micro BERTs of other weights."""
    tokenizer, question = bootstrap_encoder(vocab_texts, "micro", 500, 512, 1)
    _, passage = bootstrap_encoder(vocab_texts, "micro", 500, 512, 2)
    return tokenizer, question, passage


def write_checkpoint(path, tokenizer, question, passage, encoders, name="dpr"):
    from safetensors.torch import save_model

    files = ckpt.encoder_files(encoders) if encoders in ckpt.ENCODERS else ckpt.encoder_files("shared")
    with write_store(path, kind="checkpoint", name=name, format_version=1, config={"encoders": encoders}) as w:
        w.path("config.json").write_text(passage.config.to_json_string(), encoding="utf-8")
        tokenizer.save_pretrained(str(w.root))
        save_model(passage, str(w.path(files["passage"])))
        if files["question"] != files["passage"]:
            save_model(question, str(w.path(files["question"])))
    return path


def _same_weights(a, b):
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sorted(sa) == sorted(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("encoders", ["shared", "separate"])
def test_the_passage_encoder_of_each_layout(towers, encoders, tmp_path):
    tokenizer, question, passage = towers
    path = write_checkpoint(tmp_path / "ckpt", tokenizer, question, passage, encoders)
    assert ckpt.is_dpr_checkpoint(path)
    loaded_tokenizer, encoder = ckpt.load_passage_encoder(path)
    assert _same_weights(encoder, passage) and not _same_weights(encoder, question)
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()


def test_a_corrupted_checkpoint_is_refused(towers, tmp_path):
    path = write_checkpoint(tmp_path / "ckpt", *towers, "shared")
    weights = path / ckpt.SHARED_ENCODER_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        ckpt.load_passage_encoder(path)


def test_an_unknown_layout_is_an_index_format_error(towers, tmp_path):
    path = write_checkpoint(tmp_path / "ckpt", *towers, "triple")
    with pytest.raises(IndexFormatError, match="encoders 'triple' are not one of shared, separate, shared-heads"):
        ckpt.load_passage_encoder(path)


def test_what_is_not_a_dpr_checkpoint(towers, tmp_path):
    tokenizer, _, passage = towers
    reader = write_checkpoint(tmp_path / "reader", *towers, "shared", name="extractive")
    assert not ckpt.is_dpr_checkpoint(reader)
    with pytest.raises(DataError, match="is an odqa checkpoint 'extractive', not a DPR checkpoint"):
        ckpt.load_passage_encoder(reader)
    hf_dir = tmp_path / "hf"
    passage.save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    assert not ckpt.is_dpr_checkpoint(hf_dir)
