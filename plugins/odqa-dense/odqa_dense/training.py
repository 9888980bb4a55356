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

Under torch DDP (``odqa train dpr --nproc N`` or ``torchrun -m odqa_dense``) the batch size is per rank and the
question and passage vectors are all-gathered, so N ranks train like one process with N times the batch; rank 0
evaluates and writes everything above (:mod:`odqa_dense.distributed`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from odqa_transformers import hf
from odqa_transformers.config import TrainingConfig
from odqa_transformers.loop import (
    TRAINING_STATE,
    Stepper,
    finish_folds,
    group_folds,
    load_training_state,
    prepare_output,
    recover_last_checkpoint,
    save_training_state,
)

from odqa_core import plugins
from odqa_core.errors import DataError, IndexFormatError, UsageError
from odqa_core.evaluation import evaluate_retrieval, hits_from_results, normalize_for_match
from odqa_core.outputs import atomic_write_text, output_lock
from odqa_core.pipeline import search_in_batches
from odqa_core.progress import stderr_echo
from odqa_core.storage import open_store
from odqa_core.types import Document, Question, RankedResults
from odqa_dense.encoder import BiEncoder, check_encoders, check_pooling, passage_texts
from odqa_dense.vectors import VectorIndex

HITS = ("auto", "answer", "doc")
#: Learning rates used when none is given: fine-tuning a pretrained encoder vs. training a bootstrap one.
DEFAULT_LR_PRETRAINED = 2e-5
DEFAULT_LR_BOOTSTRAP = 1e-4
#: Inverse Cloze Task on a bootstrap model: a higher rate, since it starts from random weights.
DEFAULT_ICT_LR_BOOTSTRAP = 5e-4
#: ICT epochs run by default before fine-tuning a bootstrap model (none for a pretrained one).
DEFAULT_ICT_EPOCHS_BOOTSTRAP = 3


@dataclass
class TrainConfig(TrainingConfig):
    """Everything that defines a DPR training run (``odqa train dpr --help`` documents each field): the settings
    every training has (:class:`odqa_transformers.config.TrainingConfig`) and DPR's own."""

    default_lr_pretrained = DEFAULT_LR_PRETRAINED
    default_lr_bootstrap = DEFAULT_LR_BOOTSTRAP

    encoders: str = "shared"
    #: None: ``cls`` for a pretrained model (DPR's choice), ``mean`` for a bootstrap one, which learns much faster
    #: from random weights (benchmarks/RESULTS.md).
    pooling: str | None = None
    include_title: bool = True
    hard_negatives: int = 1
    negative_retriever: str = "bm25"
    negative_options: dict[str, Any] = field(default_factory=dict)
    negative_depth: int = 30
    query_max_length: int = 64
    passage_max_length: int = 256
    max_grad_norm: float = 2.0
    eval_ks: tuple[int, ...] = (1, 5, 20, 100)
    select: str = "acc@20"
    hit: str = "auto"
    eval_batch_size: int = 128
    #: Inverse Cloze Task epochs over the corpus before the supervised ones (None: 3 for a bootstrap model, else 0).
    ict_epochs: int | None = None
    ict_samples: int = 2
    ict_keep_span: float = 0.1
    #: ICT learning rate (default: ``lr``'s default for the model).
    ict_lr: float | None = None
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
        self.check_common(("negative_depth", "eval_batch_size"))
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
        return self

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


class BiEncoderTrainingLoop:
    """Trains one bi-encoder on one set of examples, evaluating on ``dev`` after every epoch: the training loop of
    :func:`train_dpr` (the ``dpr`` :class:`odqa_core.interfaces.Trainer` is
    :class:`odqa_dense.trainers.DPRTrainer`)."""

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
        #: The encoder(s) as one module (in DDP under several ranks) that :meth:`_loss` runs: :meth:`bind_towers`.
        self._towers: Any = None

    def bind_towers(self) -> Any:
        """Wrap the encoder's trainable modules as the one module :meth:`_loss` runs — in DistributedDataParallel
        where there are several ranks (rank 0's weights are broadcast to every rank now)."""
        from odqa_dense import distributed

        self._towers = distributed.wrap_ddp(distributed.towers(self.encoder))
        return self._towers

    def _passage_rows(self, indices: np.ndarray) -> list[list[int]]:
        missing = [int(i) for i in np.unique(indices) if int(i) not in self._passage_ids]
        if missing:
            texts = passage_texts([self.documents[i] for i in missing], self.config.include_title)
            for i, ids in zip(missing, self.encoder.tokenize(texts, self.config.passage_max_length)):
                self._passage_ids[i] = ids
        return [self._passage_ids[int(i)] for i in indices]

    def run(self, resume: bool = False) -> dict[str, Any]:
        """Train every epoch not done yet. Under several ranks (:mod:`odqa_dense.distributed`) every rank runs
        this; rank 0 alone reads ``last/`` to resume, evaluates and writes, the others follow its decisions."""
        import torch

        from odqa_dense import distributed

        config = self.config
        last = self.output / "last"

        def resumable() -> bool:
            if resume:
                recover_last_checkpoint(last, self.echo)
            resuming = resume and (last / "manifest.json").is_file()
            if resuming:  # the stopped run's tokenizer and weights, not a fresh initial model
                self.encoder = self._load_last(last)
            return resuming

        resuming = distributed.broadcast_flag(bool(distributed.on_main(resumable)))
        device = hf.resolve_device(config.device)
        precision = hf.resolve_precision(config.precision, device)
        encoder = self.encoder.to(device)
        n = len(self.examples)
        ranks = distributed.world_size()
        micro_per_epoch = math.ceil(n / (config.batch_size * ranks))
        heads = encoder.head_parameters()
        own_rates = [(heads, config.head_lr)] if heads and config.head_lr is not None else []
        self.bind_towers()
        steps = Stepper.for_config(self._named_parameters(), config, precision, micro_per_epoch, own_rates)
        steps.gradient_scale = ranks
        optimizer = steps.optimizer
        q_rows = encoder.tokenize(self.examples.questions, config.query_max_length)

        state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best": None, "config": config.digest()}
        if resuming:
            loaded = distributed.on_main(lambda: load_training_state(last, optimizer))
            if loaded is not None:
                state = loaded
            state["epoch"], state["step"] = distributed.broadcast_ints([state["epoch"], state["step"]])
            distributed.sync_optimizer_state(optimizer)
            self.echo(f"resuming {self.output} after epoch {state['epoch']}")

        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            started = time.perf_counter()
            order = np.random.default_rng([config.seed, epoch]).permutation(n)
            batches = distributed.global_batches(order, config.batch_size, ranks)
            torch.manual_seed(config.seed * 1000 + epoch)
            encoder.train()

            def loss_of(micro: int, batches=batches) -> Any:
                return self._loss(batches[micro], q_rows)

            losses = steps.run_epoch(
                loss_of, micro_per_epoch, state, device, precision, f"epoch {epoch}/{config.epochs}"
            )
            train_s = time.perf_counter() - started
            distributed.on_main(self._finish_epoch, epoch, losses, train_s, started, state, precision, optimizer)
            state["epoch"] = epoch
        return self._write_report(state)

    def _finish_epoch(
        self,
        epoch: int,
        losses: list[float],
        train_s: float,
        started: float,
        state: dict[str, Any],
        precision: str,
        optimizer: Any,
    ) -> None:
        """Rank 0's part of an epoch: evaluate, record, write ``best/``, ``epoch-N/``, ``last/`` and the report."""
        config, encoder, last = self.config, self.encoder, self.output / "last"
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

    def _named_parameters(self) -> list[tuple[str, Any]]:
        return [(f"{i}.{n}", p) for i, m in enumerate(self.encoder.modules()) for n, p in m.named_parameters()]

    def _loss(self, batch: np.ndarray, q_rows: list[list[int]]) -> Any:
        """DPR's loss of one global batch (every rank's examples, :func:`odqa_dense.distributed.global_batches`):
        this rank encodes its slice, the question and passage vectors of all ranks are gathered (gradients flow
        through the local part) and every question is scored against every rank's positives and hard negatives."""
        import torch

        from odqa_dense import distributed

        ex = self.examples
        local = distributed.local_part(batch)
        local_passages = np.concatenate([ex.positives[local], ex.negatives[local].reshape(-1)])
        q_ids, q_mask = self.encoder.pad([q_rows[i] for i in local])
        p_ids, p_mask = self.encoder.pad(self._passage_rows(local_passages))
        device = self.encoder.device
        q_local, p_local = self._towers(q_ids.to(device), q_mask.to(device), p_ids.to(device), p_mask.to(device))
        q = distributed.gather_with_grad(q_local)
        # Positives first, then hard negatives, each in rank order: the candidate order of one process's batch.
        p = torch.cat(
            [distributed.gather_with_grad(p_local[: len(local)]), distributed.gather_with_grad(p_local[len(local) :])]
        )
        positives = ex.positives[batch]
        candidates = np.concatenate([positives, ex.negatives[batch].reshape(-1)])
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
                save_training_state(writer.root, optimizer, state)

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
        from odqa_dense import distributed

        if distributed.is_main():  # the other ranks' history is empty: rank 0's report is the run's
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
    from odqa_transformers.bootstrap import bootstrap_encoder

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
    trainer = BiEncoderTrainingLoop(
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

    Launched as one rank of several (``torchrun`` or ``odqa train dpr --nproc``: ``WORLD_SIZE`` > 1 in the
    environment), it joins the process group and trains with DDP (:mod:`odqa_dense.distributed`): every rank
    prepares the same seeded data, rank 0 alone locks, writes and reports.
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
    from odqa_dense import distributed

    distributed.init_from_environment(config.device)
    if not distributed.is_main():
        echo = _silent
    # One training per output at a time: a second one into the same directory is told so (see output_lock).
    with contextlib.ExitStack() as claimed:

        def claim_output() -> None:  # rank 0's: the other ranks never write
            claimed.enter_context(output_lock(output))
            prepare_output(output, resume)

        distributed.on_main(claim_output)
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
            trainer = BiEncoderTrainingLoop(
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
            done = distributed.on_main(
                lambda previous=previous: (
                    resume and previous.is_file() and json.loads(previous.read_text()).get("done")
                )
            )
            if distributed.broadcast_flag(bool(done)):  # rank 0 reads the output; the others follow
                echo(f"fold {f}/{config.folds}: already done")
                fold_reports.append(json.loads(previous.read_text()) if distributed.is_main() else {})
                continue
            echo(f"fold {f}/{config.folds}: {len(held)} held-out questions")
            train_idx = np.setdiff1d(np.arange(len(questions)), held)
            trainer = BiEncoderTrainingLoop(
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
        return distributed.on_main(lambda: finish_folds(output, config, fold_reports)) or {}


def _silent(message: str) -> None:
    """The echo of ranks other than 0: one rank tells what the run does."""


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
