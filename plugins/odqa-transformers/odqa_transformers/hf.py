"""Finding, loading and fingerprinting HuggingFace models; devices and precisions.

Shared by every odqa plugin that runs a transformer (the dense retriever, the readers). A model is
named by a local directory or a hub id; with ``HF_HUB_OFFLINE=1`` (or no network) a hub id must already be in the
local HuggingFace cache. Nothing here sets ``trust_remote_code``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from odqa_core.errors import DataError, UsageError

#: Files that define a model's behaviour; their hashes make up its fingerprint.
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")
_NOT_MODEL_FILES = {"manifest.json", "training_state.json", "report.json"}

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_model_dir(model: str) -> Path:
    """The local directory holding ``model`` (a path, or a hub id found in / fetched into the HF cache).

    Raises a one-line :class:`DataError` naming what was looked for when there is no such model.
    """
    if not model or not str(model).strip():
        raise UsageError("no model given: pass a local model directory or a HuggingFace id")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DataError(f"model {model!r} is a file; expected a model directory (config.json + weights)")
        if not (path / "config.json").is_file() and not (path / "manifest.json").is_file():
            raise DataError(f"model directory {model!r} has no config.json (nor an odqa manifest.json)")
        return path.resolve()
    looks_like_path = str(model).startswith((".", "/", "~")) or os.sep in str(model).strip("/").replace("/", "", 1)
    if looks_like_path:
        raise DataError(f"model {model!r} not found: no such directory")
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    try:
        return Path(snapshot_download(str(model), local_files_only=offline))
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; all mean "not available"
        where = "in the local HuggingFace cache (HF_HUB_OFFLINE is set)" if offline else "locally or on the hub"
        raise DataError(
            f"model {model!r} not found: no such directory, and not {where} ({type(exc).__name__})"
        ) from None


def fingerprint(model_dir: str | Path) -> str:
    """A sha256 over the model's config, tokenizer and weight files (names and contents), stable across copies.

    An odqa store reuses the checksums its manifest already holds instead of re-reading the weights.
    """
    model_dir = Path(model_dir)
    manifest = model_dir / "manifest.json"
    digest = hashlib.sha256()
    if manifest.is_file():
        files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
        for name in sorted(files):
            if name.endswith(_MODEL_FILE_SUFFIXES) and name not in _NOT_MODEL_FILES and "training_state" not in name:
                digest.update(f"{name}\0{files[name]['sha256']}\0".encode())
        return digest.hexdigest()
    from odqa_core.storage import sha256_file

    for file in sorted(model_dir.iterdir()):
        if file.is_file() and file.name.endswith(_MODEL_FILE_SUFFIXES) and file.name not in _NOT_MODEL_FILES:
            digest.update(f"{file.name}\0{sha256_file(file)}\0".encode())
    return digest.hexdigest()


def resolve_device(device: str) -> Any:
    """``auto`` picks cuda, then mps, then cpu; asking for a device that is not there is a usage error."""
    import torch

    if device not in DEVICES:
        raise UsageError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' requested but CUDA is not available")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device 'mps' requested but MPS is not available")
    return torch.device(device)


def resolve_precision(precision: str, device: Any) -> str:
    """``auto`` is bf16 on a GPU that supports it, else fp32. fp16 needs CUDA."""
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UsageError("fp16 needs a CUDA device; use fp32 (or bf16) on CPU")
    return precision


def cpu_bf16_native() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX tiles). Without either, torch emulates
    bf16 matrix products, which is slower than fp32, so bf16 on such a CPU only costs accuracy."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


@contextlib.contextmanager
def autocast(device: Any, precision: str) -> Iterator[None]:
    """Mixed precision for ``bf16``/``fp16``; a no-op for fp32."""
    import torch

    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def max_positions(config: Any) -> int:
    """The longest input (in tokens) a model with this config takes (no limit: a very large number)."""
    limit = int(getattr(config, "max_position_embeddings", 0) or 0) or 10**9
    if "roberta" in str(getattr(config, "model_type", "")):  # positions start after the padding index
        limit -= int(getattr(config, "pad_token_id", 1) or 1) + 1
    return limit


def quiet_transformers() -> None:
    """Keep transformers' own progress bars and advisory warnings out of odqa's output."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc} entry"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _from_pretrained(loader: Any, model_dir: str | Path, what: str) -> Any:
    """``loader.from_pretrained`` on a local directory; a failure is a one-line :class:`DataError`."""
    quiet_transformers()
    try:
        return loader.from_pretrained(str(model_dir), local_files_only=True)
    # A malformed tokenizer.json raises KeyError, or a plain Exception from the tokenizers library (Rust).
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot load {what} from {model_dir}: {_first_line(exc)}") from None


#: Weight files in the order transformers prefers them: safetensors first, a pickle only when there is nothing else.
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _weights_file_named(model_dir: str | Path, kind: str, default: str) -> Path:
    """The directory's weight file of a ``kind`` (``.bin``, ``.safetensors``; sharded: its index), for messages."""
    found = [Path(model_dir) / n for n in _WEIGHT_FILES if kind in n and (Path(model_dir) / n).is_file()]
    return found[0] if found else Path(model_dir) / default


def load_pretrained_model(loader: Any, model_dir: str | Path, what: str) -> Any:
    """``loader.from_pretrained`` (an ``AutoModel…`` class) on a local directory, every failure one line.

    A pickled ``pytorch_model.bin`` (older hub models ship no safetensors) goes through torch's safe loader
    (``weights_only=True``: tensors and plain containers only; never ``weights_only=False``, which runs whatever
    code the pickle names); a pickle that loader refuses, and a ``model.safetensors`` that is not one, are
    :class:`DataError`s naming the file.
    """
    import pickle

    from safetensors import SafetensorError

    quiet_transformers()
    try:
        return loader.from_pretrained(str(model_dir), local_files_only=True, weights_only=True)
    except pickle.UnpicklingError as exc:
        file = _weights_file_named(model_dir, ".bin", "pytorch_model.bin")
        # torch's message suggests weights_only=False; keep only what the pickle holds that is not allowed.
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        reason = f"it names {refused.group(1)}" if refused else _first_line(exc).rstrip(".")
        raise DataError(
            f"cannot load {what} from {model_dir}: {file} is a pickle that torch's safe loader (weights_only) "
            f"refuses ({reason}); convert it to safetensors (model.safetensors) first, where the file can be trusted"
        ) from None
    except SafetensorError as exc:
        file = _weights_file_named(model_dir, ".safetensors", "model.safetensors")
        raise DataError(
            f"cannot load {what} from {model_dir}: {file} is not a valid safetensors file ({exc})"
        ) from None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise DataError(f"cannot load {what} from {model_dir}: {_first_line(exc)}") from None


def load_tokenizer(model_dir: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, model_dir, "a tokenizer")
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"the tokenizer in {model_dir} is not a fast (Rust) tokenizer; odqa needs offsets and speed")
    return tokenizer


def load_config(model_dir: str | Path) -> Any:
    from transformers import AutoConfig

    return _from_pretrained(AutoConfig, model_dir, "the model config")


def load_encoder(model_dir: str | Path) -> Any:
    """An ``AutoModel`` (encoder) from a local HF model directory."""
    from transformers import AutoModel

    return load_pretrained_model(AutoModel, model_dir, "the model")


def encoder_from_config(config: Any) -> Any:
    from transformers import AutoModel

    quiet_transformers()
    return AutoModel.from_config(config)
