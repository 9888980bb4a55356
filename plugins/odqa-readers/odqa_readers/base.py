"""What the extractive and generative readers share: model resolution, checkpoints, batching, training hooks.

A reader's ``model`` option names

- a HuggingFace model (local directory or hub id; ``HF_HUB_OFFLINE=1`` keeps it to the local cache) with the head
  the reader needs (question answering for ``extractive``, seq2seq LM for ``generative``);
- an odqa reader checkpoint written by ``odqa train reader`` (a store: manifest with checksums, ``config.json``,
  ``model.safetensors`` and the tokenizer files; loading verifies every checksum);
- ``sample``: the demo model of the bundled sample, trained on the sample's training questions on first use and
  cached (:mod:`odqa_readers.sample`, reached through the hook of :mod:`odqa_readers.demo`: this module trains
  nothing).

Training (:mod:`odqa_readers.training`) drives any :class:`TransformerReader` through three hooks —
:meth:`~TransformerReader.training_features`, :meth:`~TransformerReader.collate` and
:meth:`~TransformerReader.training_loss` — so the loop, the schedule, checkpointing and k-fold are written once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

# gold_results lives in core (odqa sweep's read_gold reads with it too); imported here where readers look for it.
from odqa_core.data import gold_results  # noqa: F401
from odqa_core.errors import DataError, IndexFormatError, UsageError
from odqa_core.interfaces import Reader
from odqa_core.progress import stderr_echo
from odqa_core.storage import open_store, write_store
from odqa_core.types import Document, Question
from odqa_readers import demo
from odqa_readers.demo import provide_demo_models  # noqa: F401 - where it was defined before odqa_readers.demo

CHECKPOINT_KIND = "checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class ReaderExample:
    """One (question, passage) pair to train on.

    ``answer_start`` is the character offset of ``answer`` in ``document.text``; both are None when the passage
    does not hold the answer (a retrieved passage without it: the reader learns to give it a low score).
    """

    question: Question
    document: Document
    answer: str | None = None
    answer_start: int | None = None

    @property
    def has_answer(self) -> bool:
        return self.answer is not None


def resolve_model(spec: str | None, reader: str) -> Path:
    """The local directory of a reader's ``model`` option (see the module docstring)."""
    if spec is None or not str(spec).strip():
        raise UsageError(
            f"reader {reader!r} needs a model: train one on your data with 'odqa train reader --reader {reader} "
            f"--output runs/reader' (-o {reader}.model=runs/reader/best) or give an HF model (-o {reader}.model=PATH "
            "or hub id); without a pretrained model, the lexical span scorer trains in seconds: 'odqa train reader "
            "--reader extractive --model lexical'; -o "
            f"{reader}.model=sample is only the bundled sample's demo model (it knows its 60 documents, nothing else)"
        )
    if spec == "sample":
        if demo.demo_models() is None:  # used without the registry: loading the plugins runs odqa_readers.plugin
            from odqa_core import plugins

            plugins.get_plugin_manager()
        provider = demo.demo_models()
        if provider is None:
            raise UsageError(
                f"reader {reader!r}: model=sample needs the readers plugin loaded (see ODQA_LOAD_PLUGINS and "
                f"ODQA_BLOCK_PLUGINS); or give a model (-o {reader}.model=PATH)"
            )
        return provider(reader)
    from odqa_transformers import hf

    return hf.resolve_model_dir(str(spec))


class TransformerReader(Reader):
    """Base of the readers that run a transformer. Subclasses declare their options in ``__init__`` (keyword-only,
    validated there, as every component does) and implement the abstract methods below."""

    #: The HuggingFace Auto class of the network (``AutoModelForQuestionAnswering``, ``AutoModelForSeq2SeqLM``).
    auto_class: ClassVar[str]
    #: Bumped when the checkpoint layout or its config keys change.
    checkpoint_version: ClassVar[int] = CHECKPOINT_VERSION
    #: Options stored in a checkpoint and restored from it unless the user sets them (e.g. max_length).
    stored_options: ClassVar[tuple[str, ...]] = ()

    model: str | None
    device: str
    precision: str

    tokenizer: Any = None
    network: Any = None
    source: str = ""

    @classmethod
    def sample_defaults(cls) -> dict[str, Any]:
        return {"model": "sample"}

    # --- model loading ------------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        if self.network is not None:
            return
        model_dir = resolve_model(self.model, self.name)
        if (model_dir / "manifest.json").is_file():
            tokenizer, network, stored = load_checkpoint(model_dir, self)
            for key, value in stored.items():
                if key in self.stored_options and key not in self._user_options:
                    setattr(self, key, value)
        else:
            from odqa_transformers import hf

            tokenizer, network = hf.load_tokenizer(model_dir), load_network(self.auto_class, model_dir)
        self.source = str(model_dir)
        self.attach(tokenizer, network)

    def attach(self, tokenizer: Any, network: Any) -> None:
        """Use an in-memory tokenizer and network (training, bootstrap); moves it to the device, eval mode."""
        from odqa_transformers import hf

        self.torch_device = hf.resolve_device(self.device)
        self.run_precision = hf.resolve_precision(self.precision, self.torch_device)
        self.tokenizer = tokenizer
        self.network = network.to(self.torch_device)
        self.network.eval()
        self.check_model()

    def resolved_config(self) -> dict[str, Any]:
        """The options (the stored ones as the loaded checkpoint set them), ``device`` and ``precision`` as
        resolved (``auto`` → ``cpu``, ``fp32``, ...) and ``model_path``, the directory the model was loaded from
        (``model=sample``'s cached demo model, an HF id's local copy)."""
        resolved = self.config()
        if self.network is not None:
            resolved.update(device=str(self.torch_device), precision=self.run_precision)
        if self.source:
            resolved["model_path"] = self.source
        return resolved

    def check_model(self) -> None:  # noqa: B027 - optional hook
        """Validate options against the loaded model (e.g. max_length within its positions)."""

    def check_corpus(self, documents: Sequence[Document], rows: Any) -> None:
        """Warn once (one line on stderr) when the sample's demo model (``model=sample``) is about to read passages
        (``documents[rows]``) that are not the bundled sample's: it was trained on those 60 documents only, and its
        answers elsewhere are close to random (F1 1.7 on KorQuAD)."""
        if self.model != "sample" or getattr(self, "_warned_sample", False):
            return
        from odqa_core.data import is_sample_corpus

        if not is_sample_corpus(documents[int(row)] for row in np.unique(np.asarray(rows, np.int64))):
            self._warned_sample = True
            stderr_echo(
                f"warning: reader {self.name!r} uses the bundled sample's demo model (model=sample), which knows "
                "only the sample's 60 documents; for this corpus train a reader ('odqa train reader') or give an HF "
                f"model (-o {self.name}.model=...)"
            )

    @property
    def _user_options(self) -> set[str]:
        return getattr(self, "_given", set())

    def remember_given(self, given: dict[str, Any]) -> None:
        """Record which options the user set explicitly (the others may come from a checkpoint)."""
        self._given = {k for k, v in given.items() if v is not None}

    # --- checkpoints ----------------------------------------------------------------------------------------------

    def checkpoint_config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.stored_options}

    def save(self, path: str | Path, params: dict[str, Any] | None = None) -> None:
        """Write a checkpoint store atomically: config.json, model.safetensors, tokenizer files, manifest."""
        if self.network is None:
            raise UsageError(f"reader {self.name!r} has no model to save; call warm_up() or attach() first")
        with write_store(
            path,
            kind=CHECKPOINT_KIND,
            name=self.name,
            format_version=self.checkpoint_version,
            config={**self.checkpoint_config(), "base_model": self.source or "(in memory)"},
        ) as writer:
            self.network.save_pretrained(str(writer.root), safe_serialization=True)
            self.tokenizer.save_pretrained(str(writer.root))
            writer.params.update(params or {})

    # --- reading --------------------------------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def bootstrap(
        cls, texts: Sequence[str], size: str = "tiny", vocab_size: int = 16000, seed: int = 0, **options: Any
    ) -> TransformerReader:
        """A reader with a randomly initialised network of a bootstrap ``size`` and a tokenizer trained on
        ``texts`` (odqa_transformers.bootstrap), attached and ready to train; ``options`` are the reader's options."""

    @classmethod
    def from_encoder(cls, tokenizer: Any, encoder: Any, seed: int = 0, **options: Any) -> TransformerReader:
        """A reader whose network starts from a trained encoder (a DPR checkpoint's); readers that cannot say so."""
        raise UsageError(f"reader {cls.name!r} cannot start from an encoder (a DPR checkpoint); give an HF model")

    # --- training hooks -------------------------------------------------------------------------------------------

    @abstractmethod
    def training_features(self, examples: Sequence[ReaderExample]) -> list[dict[str, Any]]:
        """Model inputs and targets of every example (one example may give several features: windows, chunks)."""

    @abstractmethod
    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """A padded batch of tensors (on ``self.torch_device``) from some features."""

    @abstractmethod
    def training_loss(self, batch: dict[str, Any]) -> Any:
        """The scalar loss of one collated batch (the network is in train mode)."""


def load_network(auto_class: str, model_dir: str | Path) -> Any:
    """``transformers.<auto_class>.from_pretrained`` on a local directory (a pickled ``pytorch_model.bin`` through
    torch's safe loader only); one-line DataError on failure (:func:`odqa_transformers.hf.load_pretrained_model`)."""
    import transformers
    from odqa_transformers import hf

    what = f"a {auto_class.removeprefix('AutoModelFor')} model"
    return hf.load_pretrained_model(getattr(transformers, auto_class), model_dir, what)


def load_checkpoint(model_dir: Path, reader: TransformerReader) -> tuple[Any, Any, dict[str, Any]]:
    """Tokenizer, network and stored options of a reader checkpoint, after verifying every checksum."""
    from odqa_transformers import hf

    manifest = open_store(model_dir, verify=False).manifest
    if (manifest.get("kind"), manifest.get("name")) != (CHECKPOINT_KIND, reader.name):
        raise DataError(
            f"{model_dir} is an odqa {manifest.get('kind')} {manifest.get('name')!r}, not a {reader.name!r} reader "
            "checkpoint or a HuggingFace model"
        )
    store = open_store(model_dir, kind=CHECKPOINT_KIND, name=reader.name, format_version=reader.checkpoint_version)
    if "model.safetensors" not in store.manifest["files"]:
        raise IndexFormatError(f"{model_dir}: the checkpoint has no model.safetensors")
    return hf.load_tokenizer(model_dir), load_network(reader.auto_class, model_dir), store.config
