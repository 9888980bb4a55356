"""The DPR bi-encoder: a question encoder and a passage encoder (one shared model or two), a pooling, a tokenizer.

Three layouts (``encoders``): ``shared`` (one model for both sides), ``separate`` (two models) and
``shared-heads`` (one model, then a linear ``dim → dim`` head per side on the pooled vector, initialised to the
identity with zero bias, so an untrained ``shared-heads`` model encodes exactly as its ``shared`` model does).

Similarity is the dot product of the pooled vectors, in training (:mod:`odqa_dense.training`) and in the index
(``IndexFlatIP`` and friends) alike.

Encoding is the fast path: texts are tokenized in blocks, sorted by length inside each block and encoded in
batches padded only to the longest text of the batch, under ``torch.inference_mode()``. Its precisions
(:data:`ENCODE_PRECISIONS`): ``fp32``; ``bf16`` and ``fp16`` under autocast (bf16 on a CPU only where the CPU has
bfloat16 instructions, :func:`odqa_transformers.hf.cpu_bf16_native`); ``int8``: the encoder's Linear layers
dynamically quantized (int8 weights, activations quantized per batch; CPU only). Vectors are float32 whatever the
precision; benchmarks/RESULTS.md section 4 has their speed and their retrieval accuracy on KorQuAD.

A trained bi-encoder is saved as a DPR checkpoint, an odqa store of kind ``checkpoint`` whose layout
:mod:`odqa_transformers.encoder_checkpoint` defines (so that other plugins read its encoders without this one).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from odqa_transformers import hf
from odqa_transformers.encoder_checkpoint import (
    CHECKPOINT_KIND,
    CHECKPOINT_NAME,
    CHECKPOINT_VERSION,
    ENCODERS,
    HEADS_FILE,
    POOLINGS,
    encoder_files,
    load_weights,
    open_checkpoint,
)

from odqa_core.errors import DataError, UsageError
from odqa_core.progress import progress
from odqa_core.storage import StoreWriter, write_store
from odqa_core.types import Document

#: What :meth:`BiEncoder.encode` computes in: the transformer precisions plus ``int8`` (dynamic quantization).
ENCODE_PRECISIONS = (*hf.PRECISIONS, "int8")
#: Texts tokenized (then length-sorted) at a time while encoding: bounds memory on large corpora.
TOKENIZE_BLOCK = 8192


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise UsageError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    return pooling


def check_encoders(encoders: str) -> str:
    if encoders not in ENCODERS:
        raise UsageError(f"encoders must be one of {', '.join(ENCODERS)}, got {encoders!r}")
    return encoders


def resolve_encode_precision(precision: str, device: Any) -> str:
    """The precision :meth:`BiEncoder.encode` runs in on ``device``: ``auto`` as :func:`hf.resolve_precision`
    (bf16 on a GPU that has it, else fp32); a precision the device cannot run is a one-line usage error."""
    if precision not in ENCODE_PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(ENCODE_PRECISIONS)}, got {precision!r}")
    if precision == "int8":
        if device.type != "cpu":
            raise UsageError(
                f"precision int8 (dynamic int8 quantization) runs on the CPU only, not on {device.type}; "
                "use device=cpu, or bf16/fp16 on a GPU"
            )
        return "int8"
    resolved = hf.resolve_precision(precision, device)
    if resolved == "bf16" and device.type == "cpu" and not hf.cpu_bf16_native():
        raise UsageError(
            "precision bf16 needs a CPU with bfloat16 instructions (AVX512-BF16 or AMX) and this one has neither: "
            "torch would emulate bf16, slower than fp32; use precision fp32 or int8"
        )
    return resolved


def quantize_int8(model: Any) -> Any:
    """A copy of ``model`` with every ``torch.nn.Linear`` dynamically quantized to int8 (weights per tensor;
    activations quantized per batch at run time); embeddings, layer norms and softmax stay fp32. CPU only.

    torch 2.13 still ships ``torch.ao.quantization.quantize_dynamic`` but marks the module deprecated in favour of
    torchao's ``quantize_(model, Int8DynamicActivationInt8WeightConfig())`` (a separate package whose CPU speed
    relies on ``torch.compile``); its deprecation warnings (the module's, and the one about creating quantized
    tensors that quantizing the weights raises) are silenced here and nothing else changes.
    """
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message=r".*quantized tensor creation functions.*deprecated", category=UserWarning
        )
        from torch.ao.quantization import quantize_dynamic

        quantized = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)
    return quantized.eval()


def weights_version(model: Any) -> int:
    """Changes whenever a parameter of ``model`` is modified in place (an optimizer step, ``load_state_dict``):
    the int8 copy of a model is rebuilt when its weights moved on."""
    return sum(p._version for p in model.parameters())


def identity_heads(dim: int, like: Any = None) -> Any:
    """The ``shared-heads`` heads: ``{"question", "passage"}`` linear ``dim → dim`` maps, weight the identity and
    bias zero (so training starts from the shared model), on the device and dtype of the module ``like``."""
    import torch

    heads = torch.nn.ModuleDict({side: torch.nn.Linear(dim, dim) for side in ("question", "passage")})
    with torch.no_grad():
        for head in heads.values():
            head.weight.copy_(torch.eye(dim))
            head.bias.zero_()
    if like is not None:
        reference = next(like.parameters())
        heads.to(device=reference.device, dtype=reference.dtype)
    return heads


def check_dense_model(model: Any, pooling: str, source: str) -> None:
    """Refuse, in one line, a model DPR cannot encode with: an encoder-decoder (T5, BART: ``AutoModel`` gives the
    whole seq2seq network, whose output is the decoder's, or an error without decoder inputs) and ``pooler``
    pooling on a model without a pooler layer (ELECTRA has none; ``add_pooling_layer=False`` removes it).
    HuggingFace's own DPR encoders (model type ``dpr``) output only their pooled vector: they need ``pooler``."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None) or type(model).__name__
    if getattr(config, "is_encoder_decoder", False):
        raise DataError(
            f"model {source} is an encoder-decoder ({model_type}); DPR needs an encoder such as BERT, RoBERTa, "
            "ELECTRA or XLM-RoBERTa (an encoder-decoder goes with the generative reader)"
        )
    if model_type == "dpr":
        if pooling != "pooler":
            raise UsageError(
                f"model {source} is a HuggingFace DPR encoder, which outputs its pooled vector only: "
                f"use pooling pooler, not {pooling!r}"
            )
    elif pooling == "pooler" and getattr(model, "pooler", None) is None:
        raise UsageError(
            f"pooling 'pooler' needs a model with a pooler layer; the {model_type} model {source} has none "
            "(use cls or mean)"
        )


def passage_texts(documents: Sequence[Document], include_title: bool) -> list[str | tuple[str, str]]:
    """DPR's passage input: ``(title, text)`` pairs (``[CLS] title [SEP] text [SEP]``) or the text alone."""
    if include_title:
        return [(d.title, d.text) if d.title else d.text for d in documents]
    return [d.text for d in documents]


class BiEncoder:
    """Question and passage encoders with their tokenizer. Build with :meth:`load` or :meth:`from_models`."""

    def __init__(
        self,
        tokenizer: Any,
        question_model: Any,
        passage_model: Any,
        *,
        pooling: str = "cls",
        source: str = "",
        fingerprint: str = "",
        settings: dict[str, Any] | None = None,
        heads: Any = None,
    ) -> None:
        self.tokenizer = tokenizer
        #: What a checkpoint was trained with (include_title, query/passage max lengths): the retriever's defaults.
        self.settings = dict(settings or {})
        self.question_model = question_model
        self.passage_model = passage_model
        self.pooling = check_pooling(pooling)
        self.source = source
        self.fingerprint = fingerprint
        #: ``shared-heads``: a ``ModuleDict`` of the ``question`` and ``passage`` linear heads; None otherwise.
        self.heads = heads
        #: ``id(model) → (weights_version, int8 copy)``: the quantized encoders of ``precision="int8"``.
        self._int8_models: dict[int, tuple[int, Any]] = {}
        #: ``id(model) → torch.compile(model)``: the compiled encoders of ``encode(..., compile=True)``.
        self._compiled_models: dict[int, Any] = {}
        if heads is not None and question_model is not passage_model:
            raise ValueError("linear heads go on one shared encoder, not on separate ones")
        for model in dict.fromkeys((question_model, passage_model)):
            check_dense_model(model, self.pooling, source or "(in memory)")

    @property
    def encoders(self) -> str:
        if self.heads is not None:
            return "shared-heads"
        return "shared" if self.question_model is self.passage_model else "separate"

    @property
    def dim(self) -> int:
        return int(self.passage_model.config.hidden_size)

    @property
    def device(self) -> Any:
        return next(self.passage_model.parameters()).device

    @property
    def max_positions(self) -> int:
        """The longest input (in tokens) the encoders can take."""
        return hf.max_positions(self.passage_model.config)

    def check_max_length(self, max_length: int) -> int:
        if max_length > self.max_positions:
            raise UsageError(
                f"max length {max_length} exceeds what the model {self.source or ''} takes "
                f"({self.max_positions} positions); use a max length of at most {self.max_positions}"
            )
        return max_length

    def to(self, device: Any) -> BiEncoder:
        self.question_model.to(device)
        self.passage_model.to(device)
        if self.heads is not None:
            self.heads.to(device)
        return self

    def modules(self) -> list[Any]:
        """The trainable modules, each once: the encoder(s), then the heads of ``shared-heads``."""
        if self.encoders == "separate":
            return [self.question_model, self.passage_model]
        return [self.passage_model] if self.heads is None else [self.passage_model, self.heads]

    def head_parameters(self) -> list[Any]:
        """The parameters of the ``shared-heads`` heads (none for the other layouts)."""
        return [] if self.heads is None else list(self.heads.parameters())

    def parameters(self) -> list[Any]:
        return [p for m in self.modules() for p in m.parameters()]

    def train(self, mode: bool = True) -> None:
        for module in self.modules():
            module.train(mode)

    # --- tokenization and pooling -----------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str | tuple[str, str]], max_length: int) -> list[list[int]]:
        """Token ids per text (no padding). ``(a, b)`` tuples are encoded as pairs."""
        if max_length < 4:
            raise UsageError(f"max length must be at least 4 tokens, got {max_length}")
        self.check_max_length(max_length)
        singles = [i for i, t in enumerate(texts) if isinstance(t, str)]
        pairs = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        ids: list[list[int]] = [[] for _ in texts]
        kwargs = {"truncation": True, "max_length": max_length, "add_special_tokens": True}
        if singles:
            out = self.tokenizer([texts[i] for i in singles], **kwargs)["input_ids"]
            for i, row in zip(singles, out):
                ids[i] = row
        if pairs:
            out = self.tokenizer([texts[i][0] for i in pairs], [texts[i][1] for i in pairs], **kwargs)["input_ids"]
            for i, row in zip(pairs, out):
                ids[i] = row
        return ids

    def pad(self, rows: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        """``(input_ids, attention_mask)`` tensors padded to the longest row."""
        import torch

        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def embed(self, model: Any, input_ids: Any, attention_mask: Any) -> Any:
        """Pooled vectors of a padded batch (gradients flow when called outside inference mode)."""
        out = model(input_ids=input_ids, attention_mask=attention_mask)
        if self.pooling == "cls":
            return out.last_hidden_state[:, 0]
        if self.pooling == "pooler":
            return out.pooler_output
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def head(self, which: str, pooled: Any) -> Any:
        """``which`` side's linear head applied to pooled vectors (``shared-heads``); the vectors as they are
        otherwise. Questions and passages meet only through this: the index stores passage vectors after it."""
        return pooled if self.heads is None else self.heads[which](pooled)

    def embed_rows(self, which: str, rows: Sequence[Sequence[int]], model: Any = None) -> Any:
        """Vectors of token rows through ``which`` side's encoder (or ``model``, e.g. its int8 copy) and head."""
        if model is None:
            model = self.question_model if which == "question" else self.passage_model
        input_ids, attention_mask = self.pad(rows)
        device = self.device
        return self.head(which, self.embed(model, input_ids.to(device), attention_mask.to(device)))

    # --- encoding ---------------------------------------------------------------------------------------------

    def compiled_model(self, which: str) -> Any:
        """``which`` side's encoder under ``torch.compile(dynamic=True)`` (one graph for every batch shape), made
        once per model. It shares the model's parameters; its kernels compile on the first batch (tens of seconds
        on a CPU: benchmarks/RESULTS.md section 4 says when that pays)."""
        import torch

        model = self.question_model if which == "question" else self.passage_model
        compiled = self._compiled_models.get(id(model))
        if compiled is None:
            with warnings.catch_warnings():  # importing inductor trips torch's own deprecation of torch.jit
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
                compiled = self._compiled_models[id(model)] = torch.compile(model, dynamic=True)
        return compiled

    def int8_model(self, which: str) -> Any:
        """``which`` side's encoder with int8 Linear layers (:func:`quantize_int8`), made once per weights."""
        model = self.question_model if which == "question" else self.passage_model
        version = weights_version(model)
        cached = self._int8_models.get(id(model))
        if cached is None or cached[0] != version:
            cached = (version, quantize_int8(model))
            self._int8_models[id(model)] = cached
        return cached[1]

    def encode(
        self,
        texts: Sequence[str | tuple[str, str]],
        which: str,
        max_length: int,
        *,
        batch_size: int = 64,
        precision: str = "fp32",
        compile: bool = False,
        desc: str | None = None,
    ) -> np.ndarray:
        """Vectors ``(len(texts), dim)`` float32: length-sorted batches, dynamic padding, inference mode.

        ``precision`` is one of :data:`ENCODE_PRECISIONS` already resolved (:func:`resolve_encode_precision`):
        ``fp32``, ``bf16``/``fp16`` (autocast), ``int8`` (the encoder's int8 copy, CPU). ``compile`` runs the
        encoder through :meth:`compiled_model` (fp32, bf16 and fp16; not int8).
        """
        import torch

        if which not in ("question", "passage"):
            raise ValueError(f"which must be 'question' or 'passage', got {which!r}")
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {batch_size}")
        if precision not in ENCODE_PRECISIONS or precision == "auto":
            raise ValueError(f"precision must be a resolved one of {', '.join(ENCODE_PRECISIONS[1:])}")
        if compile and precision == "int8":
            raise UsageError("compile applies to fp32, bf16 and fp16 encoding, not to int8: use one or the other")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        model = self.question_model if which == "question" else self.passage_model
        was_training = model.training
        model.eval()
        device = self.device
        run_model = self.int8_model(which) if precision == "int8" else model
        if compile:
            run_model = self.compiled_model(which)
        autocast = "fp32" if precision == "int8" else precision
        bar = progress(len(texts), desc or f"encode {which}s", which[0]) if desc != "" else None
        try:
            with torch.inference_mode(), hf.autocast(device, autocast):
                for start in range(0, len(texts), TOKENIZE_BLOCK):
                    block = self.tokenize(texts[start : start + TOKENIZE_BLOCK], max_length)
                    order = np.argsort([-len(r) for r in block], kind="stable")
                    for b in range(0, len(order), batch_size):
                        members = order[b : b + batch_size]
                        vectors = self.embed_rows(which, [block[i] for i in members], run_model)
                        out[start + members] = vectors.float().cpu().numpy()
                        if bar is not None:
                            bar.update(len(members))
        finally:
            if bar is not None:
                bar.close()
            model.train(was_training)
        return out

    def encode_naive(self, texts: Sequence[str | tuple[str, str]], which: str, max_length: int) -> np.ndarray:
        """The baseline the benchmarks compare with: one text at a time, padded to ``max_length``."""
        import torch

        model = self.question_model if which == "question" else self.passage_model
        model.eval()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.no_grad():
            for i, text in enumerate(texts):
                pair = (text,) if isinstance(text, str) else tuple(text)
                enc = self.tokenizer(
                    *pair, truncation=True, max_length=max_length, padding="max_length", return_tensors="pt"
                )
                vec = self.embed(model, enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))
                out[i] = self.head(which, vec)[0].float().cpu().numpy()
        return out

    # --- persistence ------------------------------------------------------------------------------------------

    def write_files(self, writer: StoreWriter) -> None:
        """Write config, tokenizer and weights (safetensors) into a store being written."""
        from safetensors.torch import save_model

        writer.path("config.json").write_text(self.passage_model.config.to_json_string(), encoding="utf-8")
        self.tokenizer.save_pretrained(str(writer.root))
        files = encoder_files(self.encoders)
        save_model(self.passage_model, str(writer.path(files["passage"])))
        if self.encoders == "separate":
            save_model(self.question_model, str(writer.path(files["question"])))
        if self.heads is not None:
            save_model(self.heads, str(writer.path(HEADS_FILE)))
        writer.params.update({"encoders": self.encoders, "pooling": self.pooling, "dim": self.dim})

    def save(self, path: str | Path, *, config: dict[str, Any] | None = None, params: dict | None = None) -> None:
        """Save as a ``checkpoint`` store (atomic)."""
        with write_store(
            path,
            kind=CHECKPOINT_KIND,
            name=CHECKPOINT_NAME,
            format_version=CHECKPOINT_VERSION,
            config={"encoders": self.encoders, "pooling": self.pooling, **(config or {})},
        ) as writer:
            self.write_files(writer)
            writer.params.update(params or {})

    @classmethod
    def from_models(cls, tokenizer: Any, model: Any, *, encoders: str = "shared", pooling: str = "cls") -> BiEncoder:
        """A bi-encoder from an in-memory encoder; ``separate`` gives the question side its own copy,
        ``shared-heads`` adds identity heads (it encodes as ``shared`` until trained)."""
        import copy

        check_encoders(encoders)
        question = copy.deepcopy(model) if encoders == "separate" else model
        heads = identity_heads(int(model.config.hidden_size), model) if encoders == "shared-heads" else None
        return cls(tokenizer, question, model, pooling=pooling, source="(in memory)", heads=heads)

    @classmethod
    def load(cls, model: str, *, question_model: str | None = None, pooling: str | None = None) -> BiEncoder:
        """Load an odqa ``checkpoint`` directory or a HuggingFace encoder (path or hub id).

        ``question_model`` gives a separate question encoder for a HuggingFace pair (e.g. DPR's question and
        context encoders); an odqa checkpoint already says whether its encoders are shared or separate.
        """
        model_dir = hf.resolve_model_dir(model)
        if (model_dir / "manifest.json").is_file():
            return cls._load_checkpoint(model_dir, question_model, pooling)
        tokenizer = hf.load_tokenizer(model_dir)
        passage = hf.load_encoder(model_dir)
        fingerprint = hf.fingerprint(model_dir)
        question = passage
        if question_model:
            question_dir = hf.resolve_model_dir(question_model)
            question = hf.load_encoder(question_dir)
            fingerprint = hashlib.sha256(f"{fingerprint}\0{hf.fingerprint(question_dir)}".encode()).hexdigest()
            if int(question.config.hidden_size) != int(passage.config.hidden_size):
                raise DataError(
                    f"question model {question_model!r} has dimension {question.config.hidden_size} but passage "
                    f"model {model!r} has {passage.config.hidden_size}; their dot product is undefined"
                )
        return cls(
            tokenizer, question, passage, pooling=pooling or "cls", source=str(model_dir), fingerprint=fingerprint
        )

    @classmethod
    def _load_checkpoint(cls, model_dir: Path, question_model: str | None, pooling: str | None) -> BiEncoder:
        reader = open_checkpoint(model_dir)  # every checksum verified
        stored = reader.config
        if question_model:
            raise UsageError("question_model applies to HuggingFace models; a DPR checkpoint holds both encoders")
        if pooling and pooling != stored["pooling"]:
            raise UsageError(
                f"checkpoint {model_dir} was trained with pooling {stored['pooling']!r}, not {pooling!r}"
            )
        tokenizer = hf.load_tokenizer(model_dir)
        config = hf.load_config(model_dir)
        files = encoder_files(stored["encoders"])
        passage = load_weights(hf.encoder_from_config(config), reader.path(files["passage"]))
        question = passage
        if stored["encoders"] == "separate":
            question = load_weights(hf.encoder_from_config(config), reader.path(files["question"]))
        heads = None
        if stored["encoders"] == "shared-heads":
            heads = load_weights(identity_heads(int(passage.config.hidden_size), passage), reader.path(HEADS_FILE))
        return cls(
            tokenizer,
            question,
            passage,
            pooling=stored["pooling"],
            source=str(model_dir),
            fingerprint=hf.fingerprint(model_dir),
            heads=heads,
        )
