"""DPR training: in-batch negatives plus BM25 hard negatives, evaluated on real retrieval after every epoch.

The loss is DPR's: for a batch of B questions, the B positive passages and the B·N hard negatives are all
candidates of every question, scored by dot product (the similarity the index uses too), with cross-entropy on the
question's own positive. A passage that is another question's positive *and* this question's positive (several
questions about one passage in one batch) is masked out rather than counted as a negative.

Hard negatives come from any retriever in the registry (``bm25`` by default, by name, never by import): the
highest-ranked passages that are not gold and do not contain an answer string.

After every epoch the model is evaluated the way it will be used: all passages are encoded, the dev questions are
searched against the whole corpus, and top-k accuracy decides which epoch is kept as ``best/``. ``last/`` holds the
optimizer state as well, so ``resume`` continues a stopped run; the data order and dropout of epoch ``e`` depend
only on ``(seed, e)``, so a resumed run ends with the same weights as an uninterrupted one.

Output directory::

    report.json        configuration, per-epoch loss and metrics, best epoch (and per fold with k-fold)
    best/              checkpoint of the best epoch (``odqa index --retriever dpr --model DIR/best``)
    last/              checkpoint of the last epoch + optimizer state (for resume)
    epoch-1/ ...       with ``keep_epochs``: the checkpoint of every epoch (what ``odqa sweep`` picks from)
    fold-1/ ...        with ``folds > 1``: one such directory per fold; ``best/`` is then the best fold's best

With ``folds > 1`` and ``fold = k`` only fold ``k`` is trained, laid out as a one-fold run directly in the output
directory (no ``fold-k/``): its held-out questions select the epoch, as they do for that fold of a k-fold run.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core import plugins
from odqa_core.errors import DataError, IndexFormatError, UsageError
from odqa_core.evaluation import evaluate_retrieval, hits_from_results, normalize_for_match
from odqa_core.pipeline import search_in_batches
from odqa_core.progress import progress, stderr_echo
from odqa_core.storage import (
    atomic_directory,
    atomic_write_text,
    open_store,
    output_lock,
    recover_interrupted_write,
)
from odqa_core.types import Document, Question, RankedResults
from odqa_dense import hf
from odqa_dense.encoder import BiEncoder, check_encoders, check_pooling, passage_texts
from odqa_dense.vectors import VectorIndex

KEEP_FOLDS = ("best", "all")
HITS = ("auto", "answer", "doc")
TRAINING_STATE = "training_state"
#: Learning rates used when none is given: fine-tuning a pretrained encoder vs. training a bootstrap one.
DEFAULT_LR_PRETRAINED = 2e-5
DEFAULT_LR_BOOTSTRAP = 1e-4
#: Inverse Cloze Task on a bootstrap model: a higher rate, since it starts from random weights.
DEFAULT_ICT_LR_BOOTSTRAP = 5e-4
#: ICT epochs run by default before fine-tuning a bootstrap model (none for a pretrained one).
DEFAULT_ICT_EPOCHS_BOOTSTRAP = 3


def check_training_settings(config: Any, positive: Sequence[str] = ()) -> None:
    """What every odqa training config (DPR's, the readers') must satisfy: positive counts (epochs, batch size,
    gradient accumulation, folds, vocabulary size and ``positive``), a positive learning rate, a warmup fraction
    or step count, a known ``keep_folds``, a dev fraction within 0-1, a boolean ``keep_epochs`` and a ``fold``
    (when set) within ``1..folds`` of a k-fold run. One-line usage errors."""
    for name in ("epochs", "batch_size", "grad_accum", "folds", "vocab_size", *positive):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if not isinstance(config.keep_epochs, bool):
        raise UsageError(f"keep-epochs must be true or false, got {config.keep_epochs!r}")
    fold = config.fold
    if fold is not None:
        if isinstance(fold, bool) or not isinstance(fold, int):
            raise UsageError(f"fold must be an integer, got {fold!r}")
        if config.folds < 2:
            raise UsageError(f"fold {fold} needs a k-fold run (folds of 2 or more), got folds {config.folds}")
        if not 1 <= fold <= config.folds:
            raise UsageError(f"fold {fold} is out of range for folds {config.folds}")
    if config.lr is not None and not config.lr > 0:
        raise UsageError(f"learning rate must be positive, got {config.lr}")
    if not config.warmup >= 0:
        raise UsageError(f"warmup must be a fraction of the steps (0-1) or a step count, got {config.warmup}")
    if config.keep_folds not in KEEP_FOLDS:
        raise UsageError(f"keep-folds must be one of {', '.join(KEEP_FOLDS)}, got {config.keep_folds!r}")
    if not 0 < config.dev_fraction < 1:
        raise UsageError(f"dev fraction must be between 0 and 1, got {config.dev_fraction}")


@dataclass
class TrainConfig:
    """Everything that defines a DPR training run (``odqa train dpr --help`` documents each field)."""

    model: str | None = None
    bootstrap_size: str = "tiny"
    vocab_size: int = 16000
    encoders: str = "shared"
    #: None: ``cls`` for a pretrained model (DPR's choice), ``mean`` for a bootstrap one, which learns much faster
    #: from random weights (benchmarks/RESULTS.md).
    pooling: str | None = None
    include_title: bool = True
    epochs: int = 3
    lr: float | None = None
    warmup: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 16
    grad_accum: int = 1
    hard_negatives: int = 1
    negative_retriever: str = "bm25"
    negative_options: dict[str, Any] = field(default_factory=dict)
    negative_depth: int = 30
    query_max_length: int = 64
    passage_max_length: int = 256
    max_grad_norm: float = 2.0
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"
    eval_ks: tuple[int, ...] = (1, 5, 20, 100)
    select: str = "acc@20"
    hit: str = "auto"
    eval_batch_size: int = 128
    folds: int = 1
    keep_folds: str = "best"
    dev_fraction: float = 0.1
    #: Inverse Cloze Task epochs over the corpus before the supervised ones (None: 3 for a bootstrap model, else 0).
    ict_epochs: int | None = None
    ict_samples: int = 2
    ict_keep_span: float = 0.1
    #: ICT learning rate (default: ``lr``'s default for the model).
    ict_lr: float | None = None
    #: Also save every epoch's checkpoint as ``epoch-N/`` (best/ and last/ as always).
    keep_epochs: bool = False
    #: With ``folds > 1``: train only this fold (1-based), directly into the output directory.
    fold: int | None = None
    #: ``encoders="shared-heads"`` only: peak learning rate of the two linear heads, in the ICT epochs too (None:
    #: the encoder's rate of each phase, ``lr`` then ``ict_lr``).
    head_lr: float | None = None

    def validate(self) -> TrainConfig:
        check_encoders(self.encoders)
        if self.head_lr is not None:
            if self.encoders != "shared-heads":
                raise UsageError(f"head-lr applies to encoders=shared-heads only, not {self.encoders!r}")
            if isinstance(self.head_lr, bool) or not isinstance(self.head_lr, (int, float)) or not self.head_lr > 0:
                raise UsageError(f"head-lr must be a positive learning rate, got {self.head_lr!r}")
        if self.pooling is None and not self.model:
            self.pooling = "mean"
        if self.pooling is not None:
            check_pooling(self.pooling)
        check_training_settings(self, ("negative_depth", "eval_batch_size"))
        if self.ict_epochs is None:
            self.ict_epochs = 0 if self.model else DEFAULT_ICT_EPOCHS_BOOTSTRAP
        if self.ict_epochs < 0 or self.ict_samples < 1 or not 0 <= self.ict_keep_span <= 1:
            raise UsageError("ict-epochs must be ≥ 0, ict-samples ≥ 1 and ict-keep-span within 0-1")
        if self.hard_negatives < 0:
            raise UsageError(f"hard-negatives must be 0 or more, got {self.hard_negatives}")
        if self.hit not in HITS:
            raise UsageError(f"hit must be one of {', '.join(HITS)}, got {self.hit!r}")
        metric, _, k = self.select.partition("@")
        if metric not in ("acc", "mrr") or not k.isdigit() or int(k) < 1:
            raise UsageError(f"select must look like acc@20 or mrr@10, got {self.select!r}")
        ks = self.eval_ks
        if not isinstance(ks, (tuple, list)) or not all(type(v) is int and v >= 1 for v in ks):
            raise UsageError(f"eval-ks must be a list of positive integers, got {ks!r}")
        self.eval_ks = tuple(sorted(set(ks) | {int(k)}))
        if self.model is None:
            from odqa_dense.bootstrap import bert_size

            bert_size(self.bootstrap_size)
        return self

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return DEFAULT_LR_PRETRAINED if self.model else DEFAULT_LR_BOOTSTRAP

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["eval_ks"] = list(self.eval_ks)
        out["learning_rate"] = self.learning_rate
        return out

    def digest(self) -> str:
        """What a resumed run must share with the stopped one (run-time settings like the device may differ)."""
        runtime = ("device", "eval_batch_size", "keep_folds", "keep_epochs")
        keep = {k: v for k, v in self.to_json().items() if k not in runtime}
        for name in ("fold", "head_lr"):  # unset, as before they existed: runs started then still resume
            if keep[name] is None:
                del keep[name]
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Examples:
    """Training examples: question texts, each with one positive passage and ``N`` hard negatives (indices)."""

    questions: list[str]
    positives: np.ndarray
    negatives: np.ndarray
    #: Index of each example's question in the question list it was built from.
    source: np.ndarray
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.questions)


# --- data -------------------------------------------------------------------------------------------------------


def build_examples(
    documents: Sequence[Document], questions: Sequence[Question], config: TrainConfig, echo: Callable = stderr_echo
) -> Examples:
    """Positive and hard-negative passages for each question.

    The positive is a passage of the question's gold document(s) that contains an answer (the first such; any gold
    passage when the question has no answers). Questions without gold ids take the first negative-retriever hit
    that contains an answer, as in the DPR paper. Questions with no positive are skipped and counted.
    """
    by_source: dict[str, list[int]] = {}
    for i, doc in enumerate(documents):
        for sid in {doc.id, *doc.source_ids}:
            by_source.setdefault(sid, []).append(i)
    depth = min(config.negative_depth + 1, len(documents))
    ranked = _negative_candidates(documents, questions, config, depth, echo)

    normalized: dict[int, str] = {}  # each passage is normalised once, however many questions look at it

    def contains_answer(i: int, answers: list[str]) -> bool:
        if i not in normalized:
            normalized[i] = normalize_for_match(documents[i].text)
        return any(a in normalized[i] for a in answers)

    texts, positives, negatives, source = [], [], [], []
    rng = np.random.default_rng(config.seed)
    skipped = 0
    for qi, (q, row) in enumerate(zip(questions, ranked)):
        answers = [normalize_for_match(a) for a in q.answers if a]
        gold = sorted({i for d in q.doc_ids for i in by_source.get(d, ())})
        positive = next((i for i in gold if contains_answer(i, answers)), None)
        if positive is None and gold and not q.answers:
            positive = gold[0]
        if positive is None and not gold and q.answers:
            positive = next((i for i in row if contains_answer(i, answers)), None)
        if positive is None:
            skipped += 1
            continue
        excluded = {positive, *gold}
        negs = [i for i in row if i not in excluded and not contains_answer(i, answers)][: config.hard_negatives]
        attempts = 0
        while len(negs) < config.hard_negatives:  # few candidates: fill with random passages without the answer
            i = int(rng.integers(len(documents)))
            attempts += 1
            clean = i not in excluded and i not in negs and not contains_answer(i, answers)
            # A corpus where (nearly) every passage holds the answer cannot supply clean negatives; after enough
            # draws take any passage (the loss masks a repeat of the question's own positive).
            if clean or attempts > 100 * config.hard_negatives:
                negs.append(i)
        texts.append(q.text)
        source.append(qi)
        positives.append(positive)
        negatives.append(negs)
    if not texts:
        raise DataError(
            f"none of the {len(questions)} training questions has a positive passage (a passage of its gold "
            "document containing an answer); check that the questions belong to this corpus"
        )
    return Examples(
        texts,
        np.asarray(positives, np.int64),
        np.asarray(negatives, np.int64).reshape(len(texts), config.hard_negatives),
        np.asarray(source, np.int64),
        skipped,
    )


def _negative_candidates(
    documents: Sequence[Document], questions: Sequence[Question], config: TrainConfig, depth: int, echo: Callable
) -> list[list[int]]:
    if config.hard_negatives == 0 and all(q.doc_ids for q in questions):
        return [[] for _ in questions]
    retriever = plugins.create("retriever", config.negative_retriever, config.negative_options)
    echo(f"mining hard negatives with {config.negative_retriever!r} (top {depth - 1})")
    retriever.warm_up()
    retriever.index(documents)
    results = search_in_batches(retriever.search, questions, depth, desc="mine negatives")
    return results.indices.tolist()


SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


def ict_examples(documents: Sequence[Document], config: TrainConfig) -> tuple[list[Document], Examples]:
    """Inverse Cloze Task pairs (ORQA, Lee et al. 2019): a sentence of a passage is the pseudo-question, the rest
    of the passage its positive (the sentence is left in with probability ``ict_keep_span``, so that lexical
    overlap also counts). Needs no labels, so it covers the whole corpus — the words of documents no training
    question is about get trained too, which a bootstrap model otherwise never sees."""
    rng = np.random.default_rng([config.seed, 7])
    contexts: list[Document] = []
    queries: list[str] = []
    for doc in documents:
        sentences = [x for x in SENTENCE_END.split(doc.text.strip()) if x.strip()]
        words = doc.text.split()
        for _ in range(config.ict_samples):
            if len(sentences) >= 2:
                i = int(rng.integers(len(sentences)))
                query, rest = sentences[i], sentences[:i] + sentences[i + 1 :]
            elif len(words) >= 8:  # one long sentence: a window of words stands in for it
                width = max(4, len(words) // 4)
                i = int(rng.integers(len(words) - width + 1))
                query, rest = " ".join(words[i : i + width]), [" ".join(words[:i]), " ".join(words[i + width :])]
            else:
                continue
            keep = rng.random() < config.ict_keep_span
            context = doc.text if keep else " ".join(r for r in rest if r)
            contexts.append(Document(f"{doc.id}#ict{len(contexts)}", context, doc.title))
            queries.append(query)
    if not queries:
        raise DataError("no passage is long enough for Inverse Cloze Task pretraining (8 words or 2 sentences)")
    n = len(queries)
    return contexts, Examples(queries, np.arange(n), np.zeros((n, 0), np.int64), np.arange(n))


def group_folds(questions: Sequence[Question], folds: int, seed: int) -> list[np.ndarray]:
    """Question indices of each fold; questions about the same gold document stay in the same fold."""
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(q.doc_ids[0] if q.doc_ids else q.id, []).append(i)
    if len(groups) < folds:
        raise UsageError(f"{folds} folds need at least {folds} question groups (gold documents); found {len(groups)}")
    keys = list(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    members: list[list[int]] = [[] for _ in range(folds)]
    for rank in order:  # largest-first would be tighter; seeded round-robin keeps fold sizes within one group
        smallest = min(range(folds), key=lambda f: len(members[f]))
        members[smallest].extend(groups[keys[rank]])
    return [np.asarray(sorted(m), np.int64) for m in members]


# --- evaluation -------------------------------------------------------------------------------------------------


def evaluate_encoder(
    encoder: BiEncoder,
    documents: Sequence[Document],
    questions: Sequence[Question],
    config: TrainConfig,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Top-k accuracy / MRR of ``questions`` searched over all ``documents`` (exact inner product, the index's)."""
    passage_vectors = encoder.encode(
        passage_texts(documents, config.include_title),
        "passage",
        config.passage_max_length,
        batch_size=config.eval_batch_size,
        precision=precision,
        desc="eval: encode passages",
    )
    q_vectors = encoder.encode(
        [q.text for q in questions],
        "question",
        config.query_max_length,
        batch_size=config.eval_batch_size,
        precision=precision,
        desc="",
    )
    indices, scores = VectorIndex(passage_vectors, "flat").search(q_vectors, max(config.eval_ks))
    report = evaluate_retrieval(
        questions, hits_from_results(RankedResults(indices, scores, documents)), config.eval_ks
    )
    return report.to_json()


def selected_metric(report: dict[str, Any], config: TrainConfig) -> float:
    metrics = report["metrics"]
    hit = config.hit
    if hit == "auto":
        hit = "answer" if report["evaluated"].get("answer") else "doc"
    if hit not in metrics:
        raise DataError(f"the dev questions have no {hit!r} gold data to select the best epoch with")
    return float(metrics[hit][config.select])


# --- the training loop ------------------------------------------------------------------------------------------


def lr_at(step: int, total: int, warmup_steps: int, peak: float) -> float:
    """Linear warmup to ``peak``, then linear decay to 0 (DPR's schedule)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    return peak * max(0.0, (total - step) / max(1, total - warmup_steps))


def _save_training_state(path: Path, optimizer: Any, state: dict[str, Any]) -> None:
    """Optimizer tensors as safetensors, the rest as JSON: no pickle, loadable without executing anything."""
    from safetensors.torch import save_file

    tensors, groups = {}, []
    for pid, pstate in optimizer.state_dict()["state"].items():
        for key, value in pstate.items():
            tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous().reshape(-1) if value.ndim == 0 else value
    for group in optimizer.state_dict()["param_groups"]:
        groups.append({k: v for k, v in group.items()})
    save_file(tensors, str(path / f"{TRAINING_STATE}.safetensors"))
    (path / f"{TRAINING_STATE}.json").write_text(json.dumps({**state, "param_groups": groups}, indent=1))


def _load_training_state(path: Path, optimizer: Any) -> dict[str, Any]:
    from safetensors.torch import load_file

    state = json.loads((path / f"{TRAINING_STATE}.json").read_text())
    tensors = load_file(str(path / f"{TRAINING_STATE}.safetensors"))
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        per_param.setdefault(int(pid), {})[key] = value.reshape(()) if key == "step" else value
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("param_groups")})
    return state


@dataclass
class Stepper:
    """AdamW (no weight decay on biases and norms) with DPR's schedule — linear warmup, then linear decay — plus
    gradient accumulation, clipping and fp16 loss scaling: how every odqa training loop (DPR, readers) steps."""

    optimizer: Any
    scaler: Any
    parameters: list[Any]
    total: int
    warmup_steps: int
    peak_lr: float
    grad_accum: int
    max_grad_norm: float

    @classmethod
    def create(
        cls,
        named_parameters: Sequence[tuple[str, Any]],
        *,
        lr: float,
        weight_decay: float,
        precision: str,
        micro_per_epoch: int,
        epochs: int,
        warmup: float,
        grad_accum: int,
        max_grad_norm: float,
        own_rates: Sequence[tuple[Sequence[Any], float]] = (),
    ) -> Stepper:
        """``own_rates``: ``(parameters, peak)`` pairs, parameters that follow the same schedule to their own peak
        learning rate (e.g. the heads of ``shared-heads`` DPR) instead of ``lr``."""
        import torch

        params = [p for _, p in named_parameters]
        apart = {id(p) for group, _ in own_rates for p in group}
        common = [p for p in params if id(p) not in apart]
        groups: list[dict[str, Any]] = [
            {"params": [p for p in common if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in common if p.ndim <= 1], "weight_decay": 0.0},
        ]
        for group, peak in own_rates:
            for decayed in (True, False):
                members = [p for p in group if (p.ndim > 1) == decayed]
                if members:
                    groups.append({"params": members, "weight_decay": weight_decay if decayed else 0.0, "peak": peak})
        optimizer = torch.optim.AdamW(groups, lr=lr)
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        total = math.ceil(micro_per_epoch / grad_accum) * epochs
        warmup_steps = int(warmup * total) if warmup < 1 else int(warmup)
        return cls(optimizer, scaler, params, total, warmup_steps, lr, grad_accum, max_grad_norm)

    @classmethod
    def for_config(
        cls,
        named_parameters: Sequence[tuple[str, Any]],
        config: Any,
        precision: str,
        micro_per_epoch: int,
        own_rates: Sequence[tuple[Sequence[Any], float]] = (),
    ) -> Stepper:
        """:meth:`create` with the settings of a training config (DPR's or a reader's: ``learning_rate``,
        ``weight_decay``, ``epochs``, ``warmup``, ``grad_accum``, ``max_grad_norm``)."""
        return cls.create(
            named_parameters,
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            precision=precision,
            micro_per_epoch=micro_per_epoch,
            epochs=config.epochs,
            warmup=config.warmup,
            grad_accum=config.grad_accum,
            max_grad_norm=config.max_grad_norm,
            own_rates=own_rates,
        )

    def run_epoch(
        self,
        loss_of: Callable[[int], Any],
        micro_batches: int,
        state: dict[str, Any],
        device: Any,
        precision: str,
        desc: str,
    ) -> list[float]:
        """One epoch of ``micro_batches`` calls ``loss_of(i)`` (under autocast); ``state["step"]`` counts the
        optimizer steps across epochs (the schedule's position). Returns the micro-batch losses."""
        import torch

        optimizer, scaler = self.optimizer, self.scaler
        losses: list[float] = []
        optimizer.zero_grad(set_to_none=True)
        with progress(micro_batches, desc, "batch") as bar:
            for micro in range(micro_batches):
                with hf.autocast(device, precision):
                    loss = loss_of(micro)
                scaled = loss / self.grad_accum
                (scaler.scale(scaled) if scaler else scaled).backward()
                losses.append(float(loss.detach()))
                if (micro + 1) % self.grad_accum == 0 or micro + 1 == micro_batches:
                    for group in optimizer.param_groups:
                        peak = group.get("peak", self.peak_lr)
                        group["lr"] = lr_at(state["step"], self.total, self.warmup_steps, peak)
                    if scaler:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
                    if scaler:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    state["step"] += 1
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        return losses


class Trainer:
    """Trains one bi-encoder on one set of examples, evaluating on ``dev`` after every epoch."""

    def __init__(
        self,
        encoder: BiEncoder,
        documents: Sequence[Document],
        examples: Examples,
        dev: Sequence[Question],
        config: TrainConfig,
        output: Path,
        *,
        test: Sequence[Question] = (),
        echo: Callable[[str], None] = stderr_echo,
        on_epoch: Callable[[int, BiEncoder], dict[str, Any] | None] | None = None,
        eval_documents: Sequence[Document] | None = None,
    ) -> None:
        self.encoder = encoder
        self.on_epoch = on_epoch
        #: The corpus the dev questions are searched in (the training passages unless told otherwise).
        self.eval_documents = documents if eval_documents is None else eval_documents
        self.documents = documents
        self.examples = examples
        self.dev = list(dev)
        self.test = list(test)
        self.config = config
        self.output = Path(output)
        self.echo = echo
        self._passage_ids: dict[int, list[int]] = {}

    def _passage_rows(self, indices: np.ndarray) -> list[list[int]]:
        missing = [int(i) for i in np.unique(indices) if int(i) not in self._passage_ids]
        if missing:
            texts = passage_texts([self.documents[i] for i in missing], self.config.include_title)
            for i, ids in zip(missing, self.encoder.tokenize(texts, self.config.passage_max_length)):
                self._passage_ids[i] = ids
        return [self._passage_ids[int(i)] for i in indices]

    def run(self, resume: bool = False) -> dict[str, Any]:
        import torch

        config = self.config
        last = self.output / "last"
        if resume:
            recover_last_checkpoint(last, self.echo)
        resuming = resume and (last / "manifest.json").is_file()
        if resuming:  # the stopped run's tokenizer and weights, not a fresh initial model
            self.encoder = self._load_last(last)
        device = hf.resolve_device(config.device)
        precision = hf.resolve_precision(config.precision, device)
        encoder = self.encoder.to(device)
        n = len(self.examples)
        micro_per_epoch = math.ceil(n / config.batch_size)
        heads = encoder.head_parameters()
        own_rates = [(heads, config.head_lr)] if heads and config.head_lr is not None else []
        steps = Stepper.for_config(self._named_parameters(), config, precision, micro_per_epoch, own_rates)
        optimizer = steps.optimizer
        q_rows = encoder.tokenize(self.examples.questions, config.query_max_length)

        state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best": None, "config": config.digest()}
        if resuming:
            state = _load_training_state(last, optimizer)
            self.echo(f"resuming {self.output} after epoch {state['epoch']}")

        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            started = time.perf_counter()
            order = np.random.default_rng([config.seed, epoch]).permutation(n)
            torch.manual_seed(config.seed * 1000 + epoch)
            encoder.train()

            def loss_of(micro: int, order=order) -> Any:
                return self._loss(order[micro * config.batch_size : (micro + 1) * config.batch_size], q_rows)

            losses = steps.run_epoch(
                loss_of, micro_per_epoch, state, device, precision, f"epoch {epoch}/{config.epochs}"
            )
            train_s = time.perf_counter() - started
            dev_report = evaluate_encoder(encoder, self.eval_documents, self.dev, config, precision)
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "train_s": round(train_s, 2),
                "dev": dev_report["metrics"],
                "metric": selected_metric(dev_report, config),
            }
            if self.test:
                row["test"] = evaluate_encoder(encoder, self.eval_documents, self.test, config, precision)["metrics"]
            if self.on_epoch is not None:
                extra = self.on_epoch(epoch, encoder)
                if extra:
                    row["extra"] = extra
            row["eval_s"] = round(time.perf_counter() - started - train_s, 2)
            state["history"].append(row)
            improved = state["best"] is None or row["metric"] > state["best"]["metric"]
            if improved:
                state["best"] = {"epoch": epoch, "metric": row["metric"]}
                self._save(self.output / "best", epoch, row)
            if config.keep_epochs:
                self._save(self.output / f"epoch-{epoch}", epoch, row)
            state["epoch"] = epoch
            self._save(last, epoch, row, optimizer=optimizer, state=state)
            self._write_report(state)
            self.echo(
                f"epoch {epoch}: loss {row['loss']:.4f}, dev {config.select} {row['metric']:.4f}"
                + (" (best)" if improved else "")
            )
        return self._write_report(state)

    def _named_parameters(self) -> list[tuple[str, Any]]:
        return [(f"{i}.{n}", p) for i, m in enumerate(self.encoder.modules()) for n, p in m.named_parameters()]

    def _loss(self, batch: np.ndarray, q_rows: list[list[int]]) -> Any:
        import torch

        ex = self.examples
        positives = ex.positives[batch]
        candidates = np.concatenate([positives, ex.negatives[batch].reshape(-1)])
        q = self.encoder.embed_rows("question", [q_rows[i] for i in batch])
        p = self.encoder.embed_rows("passage", self._passage_rows(candidates))
        scores = (q @ p.T).float()
        # Another question's copy of my own positive is not a negative.
        same = positives[:, None] == candidates[None, :]
        same[np.arange(len(batch)), np.arange(len(batch))] = False
        scores = scores.masked_fill(torch.from_numpy(same).to(scores.device), float("-inf"))
        target = torch.arange(len(batch), device=scores.device)
        return torch.nn.functional.cross_entropy(scores, target)

    def _save(self, path: Path, epoch: int, row: dict[str, Any], optimizer: Any = None, state: Any = None) -> None:
        from odqa_core.storage import write_store
        from odqa_dense.encoder import CHECKPOINT_KIND, CHECKPOINT_NAME, CHECKPOINT_VERSION

        config = self.config
        with write_store(
            path,
            kind=CHECKPOINT_KIND,
            name=CHECKPOINT_NAME,
            format_version=CHECKPOINT_VERSION,
            config={
                "encoders": self.encoder.encoders,
                "pooling": self.encoder.pooling,
                "include_title": config.include_title,
                "query_max_length": config.query_max_length,
                "passage_max_length": config.passage_max_length,
                "base_model": config.model or f"bootstrap:{config.bootstrap_size}",
            },
        ) as writer:
            self.encoder.write_files(writer)
            writer.params.update({"epoch": epoch, "loss": row["loss"], "dev_metric": row["metric"]})
            if optimizer is not None:
                _save_training_state(writer.root, optimizer, state)

    def _load_last(self, last: Path) -> BiEncoder:
        reader = open_store(last, kind="checkpoint", name="dpr", verify=False)
        if f"{TRAINING_STATE}.json" not in reader.manifest["files"]:
            raise IndexFormatError(f"{last}: no training state to resume from")
        state = json.loads(reader.path(f"{TRAINING_STATE}.json").read_text())
        if state.get("config") != self.config.digest():
            raise UsageError(
                f"{last} was trained with other settings; resume with the same options or use a new --output"
            )
        return BiEncoder.load(str(last))  # verifies every checksum

    def _write_report(self, state: dict[str, Any]) -> dict[str, Any]:
        report = {
            "config": self.config.to_json(),
            "n_train": len(self.examples),
            "skipped_train": self.examples.skipped,
            "n_dev": len(self.dev),
            "n_test": len(self.test),
            "epochs": state["history"],
            "best": state["best"],
            "done": state["epoch"] >= self.config.epochs,
        }
        atomic_write_text(self.output / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
        return report


# --- entry point ------------------------------------------------------------------------------------------------


def initial_encoder(documents: Sequence[Document], config: TrainConfig) -> BiEncoder:
    """The starting bi-encoder: a pretrained model/checkpoint, or the bootstrap (tokenizer on the corpus + BERT)."""
    if config.model:
        loaded = BiEncoder.load(config.model)
        is_checkpoint = (hf.resolve_model_dir(config.model) / "manifest.json").is_file()
        if config.pooling is None:
            config.pooling = loaded.pooling  # the checkpoint's, or cls for a HuggingFace model
        elif is_checkpoint and config.pooling != loaded.pooling:
            raise UsageError(f"{config.model} was trained with pooling {loaded.pooling!r}, not {config.pooling!r}")
        if is_checkpoint and loaded.encoders == config.encoders:
            return loaded  # continue training both towers as they are
        return BiEncoder.from_models(
            loaded.tokenizer, loaded.passage_model, encoders=config.encoders, pooling=config.pooling
        )
    from odqa_dense.bootstrap import bootstrap_encoder

    texts = [f"{d.title} {d.text}" if d.title else d.text for d in documents]
    tokenizer, model = bootstrap_encoder(
        texts, config.bootstrap_size, config.vocab_size, max(512, config.passage_max_length), config.seed
    )
    return BiEncoder.from_models(tokenizer, model, encoders=config.encoders, pooling=config.pooling)


def pretrain_ict(
    encoder: BiEncoder,
    documents: Sequence[Document],
    questions: Sequence[Question],
    config: TrainConfig,
    output: Path,
    dev_questions: Sequence[Question] | None,
    resume: bool,
    echo: Callable[[str], None],
) -> BiEncoder:
    """Inverse Cloze Task epochs over the corpus (``output/ict/``); returns the encoder to fine-tune from.

    Progress is measured on the dev questions (or the training questions) against the real corpus; the last
    epoch is kept, since the supervised epochs that follow do the selecting.
    """
    contexts, examples = ict_examples(documents, config)
    echo(f"Inverse Cloze Task: {len(examples)} pseudo-questions from {len(documents)} passages")
    ict_config = dataclasses.replace(
        config,
        epochs=config.ict_epochs,
        hard_negatives=0,
        folds=1,
        fold=None,
        keep_epochs=False,
        lr=config.ict_lr or (config.learning_rate if config.model else DEFAULT_ICT_LR_BOOTSTRAP),
    )
    trainer = Trainer(
        encoder,
        contexts,
        examples,
        list(dev_questions or questions)[:2000],
        ict_config,
        output / "ict",
        echo=echo,
        eval_documents=documents,
    )
    trainer.run(resume=resume)
    return trainer.encoder


def _check_gold(questions: Sequence[Question], config: TrainConfig) -> None:
    """The questions that select epochs must have the gold data the selection metric needs."""
    has_answers, has_docs = any(q.answers for q in questions), any(q.doc_ids for q in questions)
    needed = {"answer": has_answers, "doc": has_docs, "auto": has_answers or has_docs}[config.hit]
    if not needed:
        what = {"answer": "answers", "doc": "gold document ids", "auto": "answers or gold document ids"}[config.hit]
        raise DataError(f"the questions that select the best epoch have no {what}; give --dev-questions with them")


def prepare_output(output: Path, resume: bool) -> None:
    if output.exists() and not output.is_dir():
        raise UsageError(f"output {output} exists and is not a directory")
    if output.exists() and any(output.iterdir()):
        if not resume:
            raise UsageError(
                f"output directory {output} is not empty; pass --resume to continue it or choose another"
            )
        # --resume writes report.json and checkpoints into the directory: it must be a training's, not a stranger's.
        ours = ("report.json", "last", "ict", "best", "fold-1", ".last.old-*")
        if not any(any(output.glob(name)) for name in ours):
            raise UsageError(
                f"output directory {output} is not an odqa training output (no report.json, last/ or fold-1/); "
                "refusing to resume into it"
            )
    output.mkdir(parents=True, exist_ok=True)


def copy_dir_atomic(source: Path, target: Path) -> None:
    with atomic_directory(target) as tmp:  # locked, swapped in whole, leftovers of a killed copy removed
        shutil.copytree(source, tmp, dirs_exist_ok=True)


def recover_last_checkpoint(last: Path, echo: Callable[[str], None]) -> None:
    """Before resuming: a run killed between the two renames that replace ``last/`` left the previous checkpoint
    in ``.last.old-*`` and no ``last/``. Put it back; where that is not ours to do (a name without the writer's
    pid), say so rather than silently start over."""
    restored = recover_interrupted_write(last)
    if restored is not None:
        echo(f"restored {last} from {restored.name}, left by a checkpoint write that was interrupted")
    if not last.exists():
        left = sorted(last.parent.glob(f".{last.name}.old-*"))
        if left:
            raise UsageError(
                f"{last} is missing, but {left[-1]} holds the checkpoint an interrupted write moved aside; rename "
                f"it to {last} to resume from it, or delete it to start over"
            )


def train_dpr(
    documents: Sequence[Document],
    questions: Sequence[Question],
    config: TrainConfig,
    output: str | Path,
    *,
    dev_questions: Sequence[Question] | None = None,
    resume: bool = False,
    echo: Callable[[str], None] = stderr_echo,
    on_epoch: Callable[..., dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Train a DPR bi-encoder; returns the report (also written to ``output/report.json``).

    Without ``dev_questions`` (and with one fold) a seeded ``dev_fraction`` of the training questions, grouped by
    gold document, is held out for epoch selection. With ``folds > 1`` each fold's held-out questions select its
    epochs, ``dev_questions`` (if any) are reported for every fold as ``test``, and ``best/`` is the best fold's.
    With ``config.fold = k`` only fold ``k`` of those is trained, directly into ``output`` (a one-fold run's
    layout). ``on_epoch(fold, epoch, encoder)`` may return extra metrics to record with each epoch (benchmarks use
    it).
    """
    config.validate()
    output = Path(output)
    if not documents:
        raise DataError("cannot train on an empty corpus")
    if not questions:
        raise DataError("no training questions")
    # Everything that can be wrong with the input is checked before the slow parts start.
    _check_gold(questions if dev_questions is None or config.folds > 1 else dev_questions, config)
    fold_members = group_folds(questions, config.folds, config.seed) if config.folds > 1 else []
    select_k = int(config.select.partition("@")[2])
    if select_k > len(documents):
        raise UsageError(
            f"select {config.select} ranks the top {select_k} passages but the corpus has {len(documents)}; "
            f"choose a smaller cut-off (e.g. --select acc@{min(len(documents), 5)})"
        )
    # One training per output at a time: a second one into the same directory is told so (see output_lock).
    with output_lock(output):
        prepare_output(output, resume)
        initial = initial_encoder(documents, config)
        initial.check_max_length(config.query_max_length)
        initial.check_max_length(config.passage_max_length)
        examples_all = build_examples(documents, questions, config, echo)
        echo(f"{len(examples_all)} training examples ({examples_all.skipped} questions without a positive skipped)")
        if config.ict_epochs:
            initial = pretrain_ict(initial, documents, questions, config, output, dev_questions, resume, echo)

        if config.folds == 1 or config.fold is not None:
            test: Sequence[Question] = ()
            if config.fold is not None:
                held = fold_members[config.fold - 1]
                echo(f"fold {config.fold}/{config.folds}: {len(held)} held-out questions")
                test, dev_questions = dev_questions or (), [questions[i] for i in held]
                train_idx = np.setdiff1d(np.arange(len(questions)), held)
            elif dev_questions is None:
                held = group_folds(questions, max(2, round(1 / config.dev_fraction)), config.seed)[0]
                dev_questions = [questions[i] for i in held]
                train_idx = np.setdiff1d(np.arange(len(questions)), held)
                echo(f"no dev questions given: holding out {len(held)} training questions for epoch selection")
            else:
                train_idx = np.arange(len(questions))
            fold = config.fold or 1
            trainer = Trainer(
                _fresh(initial),
                documents,
                _subset(examples_all, train_idx),
                dev_questions,
                config,
                output,
                test=test,
                echo=echo,
                on_epoch=(lambda e, enc: on_epoch(fold, e, enc)) if on_epoch else None,
            )
            return trainer.run(resume=resume)

        fold_reports = []
        for f, held in enumerate(fold_members, 1):
            fold_dir = output / f"fold-{f}"
            previous = fold_dir / "report.json"
            if resume and previous.is_file() and json.loads(previous.read_text()).get("done"):
                echo(f"fold {f}/{config.folds}: already done")
                fold_reports.append(json.loads(previous.read_text()))
                continue
            echo(f"fold {f}/{config.folds}: {len(held)} held-out questions")
            train_idx = np.setdiff1d(np.arange(len(questions)), held)
            trainer = Trainer(
                _fresh(initial),
                documents,
                _subset(examples_all, train_idx),
                [questions[i] for i in held],
                config,
                fold_dir,
                test=dev_questions or (),
                echo=echo,
                on_epoch=(lambda e, enc, f=f: on_epoch(f, e, enc)) if on_epoch else None,
            )
            fold_reports.append(trainer.run(resume=resume))
        return finish_folds(output, config, fold_reports)


def _subset(examples: Examples, question_idx: np.ndarray) -> Examples:
    rows = np.flatnonzero(np.isin(examples.source, question_idx))
    return Examples(
        [examples.questions[i] for i in rows],
        examples.positives[rows],
        examples.negatives[rows],
        examples.source[rows],
        examples.skipped,
    )


def _fresh(encoder: BiEncoder) -> BiEncoder:
    """An independent copy of the initial encoder (every fold starts from the same weights)."""
    copied = copy.deepcopy(encoder)
    copied.source, copied.fingerprint = encoder.source, encoder.fingerprint
    return copied


def finish_folds(output: Path, config: TrainConfig, fold_reports: list[dict[str, Any]]) -> dict[str, Any]:
    best_metrics = [r["best"]["metric"] for r in fold_reports]
    best_fold = int(np.argmax(best_metrics)) + 1
    copy_dir_atomic(output / f"fold-{best_fold}" / "best", output / "best")
    if config.keep_folds == "best":
        for f in range(1, len(fold_reports) + 1):
            for sub in ("best", "last"):
                if f != best_fold or sub == "last":
                    shutil.rmtree(output / f"fold-{f}" / sub, ignore_errors=True)
    report = {
        "config": config.to_json(),
        "folds": [
            {"fold": f, "best_epoch": r["best"]["epoch"], "metric": r["best"]["metric"], "epochs": r["epochs"]}
            for f, r in enumerate(fold_reports, 1)
        ],
        "metric_mean": float(np.mean(best_metrics)),
        "metric_std": float(np.std(best_metrics)),
        "best_fold": best_fold,
        "best": {"fold": best_fold, **fold_reports[best_fold - 1]["best"]},
        "done": True,
    }
    atomic_write_text(output / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
    return report
