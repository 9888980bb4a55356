"""Helpers shared by the odqa-dense tests: tiny checkpoints, byte flips, weight comparisons, JSONL files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from odqa_core.types import Document, Question

#: Training settings small enough for a 2-core machine: the micro BERT (1 layer, hidden 32), short inputs.
FAST_TRAINING: dict[str, Any] = {
    "bootstrap_size": "micro",
    "vocab_size": 1000,
    "passage_max_length": 64,
    "query_max_length": 32,
    "eval_ks": (1, 5, 20),
    "device": "cpu",
}


def save_bootstrap_checkpoint(
    path: str | Path,
    texts: Sequence[str],
    *,
    seed: int = 0,
    size: str = "micro",
    vocab_size: int = 500,
    pooling: str = "cls",
    encoders: str = "shared",
) -> str:
    """A randomly initialised bi-encoder (tokenizer trained on ``texts``) saved as an odqa checkpoint."""
    from odqa_dense.encoder import BiEncoder
    from odqa_transformers.bootstrap import bootstrap_encoder

    tokenizer, model = bootstrap_encoder(texts, size, vocab_size, 512, seed)
    BiEncoder.from_models(tokenizer, model, encoders=encoders, pooling=pooling).save(path)
    return str(path)


def flip_byte(path: str | Path, offset: int | None = None) -> None:
    """Corrupt a file in place without changing its size (so only the checksum can notice)."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0xFF
    path.write_bytes(bytes(data))


def weights(directory: str | Path) -> dict[str, Any]:
    """Every tensor of a checkpoint's encoder file(s), keyed ``file:tensor`` (the training state left out)."""
    from safetensors.torch import load_file

    out = {}
    for file in sorted(Path(directory).glob("*.safetensors")):
        if file.name.startswith("training_state"):
            continue
        for name, tensor in load_file(str(file)).items():
            out[f"{file.name}:{name}"] = tensor
    assert out, f"no encoder weights in {directory}"
    return out


def assert_same_weights(a: str | Path, b: str | Path) -> None:
    import torch

    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    for name in wa:
        assert torch.equal(wa[name], wb[name]), f"{name} differs between {a} and {b}"


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def corpus_rows(documents: Iterable[Document]) -> list[dict[str, Any]]:
    return [d.to_dict() for d in documents]


def question_rows(questions: Iterable[Question]) -> list[dict[str, Any]]:
    return [
        {"id": q.id, "question": q.text, "answers": list(q.answers), "doc_ids": list(q.doc_ids)} for q in questions
    ]
