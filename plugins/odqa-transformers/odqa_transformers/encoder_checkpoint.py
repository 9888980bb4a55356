"""DPR checkpoints: the odqa store a trained bi-encoder is saved as, and reading its encoders.

A DPR checkpoint is an odqa store of kind ``checkpoint`` and name ``dpr``::

    manifest.json                 encoders, pooling, max lengths, base model, checksums of every file
    config.json                   the HuggingFace config of the encoder(s)
    tokenizer.json, tokenizer_config.json
    encoder.safetensors           (shared, shared-heads), or
    question_encoder.safetensors + passage_encoder.safetensors   (separate)
    heads.safetensors             (shared-heads, beside encoder.safetensors) question.weight/.bias, passage.*
    training_state.safetensors    optimizer state, only in a resumable ``last/`` checkpoint

The dense retriever (``odqa_dense.encoder``) writes it and reads it whole, with this module's layout; any other
plugin reads the encoder a retrieval training taught the corpus with :func:`load_passage_encoder` (the extractive
reader starts from it) without depending on the dense retriever.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odqa_core.errors import DataError, IndexFormatError
from odqa_core.storage import StoreReader, open_store
from odqa_transformers import hf

CHECKPOINT_KIND = "checkpoint"
CHECKPOINT_NAME = "dpr"
CHECKPOINT_VERSION = 1
#: The layouts (``encoders``): one model for both sides, two models, one model plus a linear head per side.
ENCODERS = ("shared", "separate", "shared-heads")
#: How an encoder's output becomes one vector (``pooling``): the first token's state, the model's pooler, the mean.
POOLINGS = ("cls", "pooler", "mean")
#: Where ``shared-heads`` keeps its two linear heads, beside the shared encoder's file.
HEADS_FILE = "heads.safetensors"
SHARED_ENCODER_FILE = "encoder.safetensors"
SEPARATE_ENCODER_FILES = {"question": "question_encoder.safetensors", "passage": "passage_encoder.safetensors"}


def encoder_files(encoders: str) -> dict[str, str]:
    """``{"question": file, "passage": file}``: the weight file of each side's encoder in a layout."""
    if encoders == "separate":
        return dict(SEPARATE_ENCODER_FILES)
    return {"question": SHARED_ENCODER_FILE, "passage": SHARED_ENCODER_FILE}


def is_dpr_checkpoint(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` is an odqa store that calls itself a DPR checkpoint (checksums not verified)."""
    if not (Path(model_dir) / "manifest.json").is_file():
        return False
    manifest = open_store(model_dir, verify=False).manifest
    return (manifest.get("kind"), manifest.get("name")) == (CHECKPOINT_KIND, CHECKPOINT_NAME)


def open_checkpoint(model_dir: str | Path) -> StoreReader:
    """The DPR checkpoint store at ``model_dir``, every checksum verified; another odqa store is a
    :class:`DataError`, a layout this version does not know an :class:`IndexFormatError`."""
    manifest = open_store(model_dir, verify=False).manifest
    kind, name = manifest.get("kind"), manifest.get("name")
    if (kind, name) != (CHECKPOINT_KIND, CHECKPOINT_NAME):
        raise DataError(f"{model_dir} is an odqa {kind} {name!r}, not a DPR checkpoint or a HuggingFace model")
    reader = open_store(model_dir, kind=CHECKPOINT_KIND, name=CHECKPOINT_NAME, format_version=CHECKPOINT_VERSION)
    layout = reader.config.get("encoders")
    if layout not in ENCODERS:
        raise IndexFormatError(
            f"{model_dir}: checkpoint encoders {layout!r} are not one of {', '.join(ENCODERS)} "
            "(written by a newer odqa-dense?)"
        )
    return reader


def load_weights(module: Any, file: str | Path) -> Any:
    """``module`` with its weights loaded from the safetensors ``file``; a file that does not fit it is a one-line
    :class:`IndexFormatError`."""
    from safetensors.torch import load_model

    try:
        load_model(module, str(file))
    except (RuntimeError, OSError, ValueError) as exc:
        raise IndexFormatError(f"{file}: cannot load weights ({str(exc).splitlines()[0]})") from None
    return module


def load_passage_encoder(model_dir: str | Path) -> tuple[Any, Any]:
    """``(tokenizer, encoder)``: a DPR checkpoint's tokenizer and the HuggingFace encoder of its passage side (the
    shared encoder of ``shared`` and ``shared-heads`` — without the heads — or the passage tower of ``separate``),
    after verifying every checksum."""
    reader = open_checkpoint(model_dir)
    tokenizer, config = hf.load_tokenizer(model_dir), hf.load_config(model_dir)
    passage_file = encoder_files(reader.config["encoders"])["passage"]
    return tokenizer, load_weights(hf.encoder_from_config(config), reader.path(passage_file))
