"""Reader training: examples from gold (and retrieved) passages, one loop for every reader, k-fold, best kept.

The loop drives any :class:`~odqa_readers.base.TransformerReader` through its three hooks (features, collate,
loss). After every epoch the reader reads the dev questions given their gold passages and EM/F1 are computed with
the official KorQuAD 1.0 (character F1) or SQuAD v1.1 (token F1) definitions; the best epoch is kept as a
checkpoint store (``best/``: safetensors + manifest with checksums), the history goes to ``report.json``. With
``keep_epochs`` every epoch's checkpoint is kept too (``epoch-N/``); with ``folds > 1`` and ``fold = k`` only fold k
is trained, laid out as a one-fold run directly in the output directory.

Retrieved-passage training (the competition mentors' recipe): with ``retrieved = N`` every training question's top
N passages from any retriever or fuser (by name) are added to its gold passage. A retrieved passage holding an
answer string is labelled with that span; one without it is labelled no-answer (the extractive reader's [CLS]
target, the generative reader's empty answer), so the reader learns to read what the retriever really returns.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from odqa_transformers.config import TrainingConfig

from odqa_core import plugins
from odqa_core.errors import DataError, UsageError
from odqa_core.outputs import atomic_write_text, output_lock
from odqa_core.qa_metrics import METRICS
from odqa_core.types import Document, Question, RankedResults
from odqa_readers.base import ReaderExample, TransformerReader, gold_results
from odqa_readers.reports import best_answer_metrics, training_report

SELECT = ("f1", "exact_match")
#: ``--model lexical``: train the extractive reader's lexical span scorer (:mod:`odqa_readers.lexical`).
LEXICAL = "lexical"
DEFAULT_LR_PRETRAINED = 5e-5
DEFAULT_LR_BOOTSTRAP = 5e-4


@dataclass
class ReaderTrainConfig(TrainingConfig):
    """Everything that defines a reader training run (``odqa train reader --help`` documents each field): the
    settings every training has (:class:`odqa_transformers.config.TrainingConfig`; its ``model`` may also be a DPR
    checkpoint, whose passage encoder starts an extractive reader) and the reader's own."""

    default_lr_pretrained = DEFAULT_LR_PRETRAINED
    default_lr_bootstrap = DEFAULT_LR_BOOTSTRAP

    reader: str = "extractive"
    #: The reader's own options (max_length, doc_stride, mode, ...), as ``-o`` gives them.
    reader_options: dict[str, Any] = field(default_factory=dict)
    metric: str = "korquad"
    select: str = "f1"
    #: Retrieved passages per training question added to its gold passage (0: gold passages only).
    retrieved: int = 0
    retrievers: list[str] = field(default_factory=lambda: ["bm25"])
    fuser: str | None = None
    #: ``[stage.]key`` options of the retrieval pipeline (``dpr.model``, ``cross.lam``).
    retrieval_options: dict[str, Any] = field(default_factory=dict)
    #: Synthetic cloze questions per corpus passage added to the training examples (:func:`cloze_examples`).
    cloze: int = 0
    #: Trim each training answer span that ends in a Korean particle (조사: 세종대왕이 → 세종대왕) to the span without
    #: it, by the ``strip-particles`` postprocessor's rules (odqa-postprocess).
    strip_answer_particles: bool = False
    #: With ``model = "lexical"``: the lexical span scorer's settings (:class:`odqa_readers.lexical.LexicalSettings`:
    #: features, l2, max_iter, max_words, hash_bits).
    lexical_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> ReaderTrainConfig:
        self.check_common()
        for name in ("retrieved", "cloze"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"{name} must be 0 or a positive integer, got {value!r}")
        if not isinstance(self.strip_answer_particles, bool):
            raise UsageError(f"strip_answer_particles must be true or false, got {self.strip_answer_particles!r}")
        if self.metric not in METRICS:
            raise UsageError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.select not in SELECT:
            raise UsageError(f"select must be one of {', '.join(SELECT)}, got {self.select!r}")
        cls = plugins.get_component_class("reader", self.reader)
        if not issubclass(cls, TransformerReader):
            raise UsageError(f"reader {self.reader!r} is not a trainable transformer reader")
        for key in ("model", "device", "precision"):
            if key in self.reader_options:
                raise UsageError(f"give the reader's {key} with --{key}, not as a reader option")
        cls.from_options(self.reader_options)  # unknown or invalid reader options fail before anything runs
        if self.model == LEXICAL:
            from odqa_readers.lexical import LexicalSettings

            if self.reader != "extractive":
                raise UsageError(f"model {LEXICAL!r} is a model of the extractive reader, not of {self.reader!r}")
            LexicalSettings.from_options(dict(self.lexical_options), self.reader_options.get("include_title"))
        elif self.lexical_options:
            raise UsageError(f"lexical_options apply to --model {LEXICAL} only")
        return self


# --- examples -----------------------------------------------------------------------------------------------------


def _answer_in(text: str, question: Question) -> tuple[str, int] | None:
    """The first of the question's answers found in ``text`` and its offset."""
    for answer in question.answers:
        if answer:
            at = text.find(answer)
            if at >= 0:
                return answer, at
    return None


def reader_examples(
    documents: Sequence[Document], questions: Sequence[Question], retrieved: RankedResults | None = None
) -> tuple[list[ReaderExample], list[int]]:
    """Training examples and, for each, the index of its question.

    The gold passage of a question is every passage of its gold documents (``doc_ids`` against ``source_ids``)
    that holds an answer; a recorded ``answer_start`` is used when it points at the answer in that passage, else
    the answer's first occurrence. With ``retrieved``, each retrieved passage that is not already a gold passage
    is added, labelled with the answer's first occurrence when it holds one, else no-answer. Questions with no
    gold passage holding an answer contribute only their retrieved passages.
    """
    by_source: dict[str, list[int]] = {}
    for row, doc in enumerate(documents):
        for source in doc.source_ids:
            by_source.setdefault(source, []).append(row)
    examples: list[ReaderExample] = []
    owners: list[int] = []
    for qi, q in enumerate(questions):
        gold_rows: set[int] = set()
        for row in dict.fromkeys(r for d in q.doc_ids for r in by_source.get(d, ())):
            doc = documents[row]
            found = None
            for answer, start in zip(q.answers, q.answer_starts):
                if answer and doc.text[start : start + len(answer)] == answer:
                    found = (answer, start)
                    break
            found = found or _answer_in(doc.text, q)
            if found is not None:
                gold_rows.add(row)
                examples.append(ReaderExample(q, doc, found[0], found[1]))
                owners.append(qi)
        if retrieved is None:
            continue
        for row in retrieved.indices[qi].tolist():
            if row < 0 or row in gold_rows:
                continue
            doc = documents[row]
            found = _answer_in(doc.text, q)
            examples.append(ReaderExample(q, doc, *found) if found else ReaderExample(q, doc))
            owners.append(qi)
    return examples, owners


#: Cloze answer candidates, all entity-like: a number with its counter (1996년, 330만 명 → 330만, 8,849), a Korean
#: noun before a case particle (돼지국밥과 → 돼지국밥), an English capitalised name not starting its sentence.
_CLOZE_NUMBER = re.compile(
    r"(?<![0-9A-Za-z_.,])\d(?:[\d,.]*\d)?(?:만|억|천)?여?(?:년|월|일|명|개|세|회|위|층|권|종|곳|차|번|배|%|km|m|kg)?"
)
_CLOZE_NOUN = re.compile(
    r"(?<![\w])([\uac00-\ud7a3A-Za-z0-9]{2,}?)(?:에서|으로|을|를|의|에|과|와|로|이|가)(?=[\s,.]|$)"
)
#: Words of the sentence kept on each side of a cloze question's blank.
CLOZE_CONTEXT = 6
_CLOZE_NAME = re.compile(r"(?<=\s)[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)*")


def cloze_examples(documents: Sequence[Document], per_passage: int, seed: int) -> list[ReaderExample]:
    """Synthetic cloze questions (unsupervised QA, Lewis et al. 2019): a sentence of a passage with one span
    replaced by a question word (무엇 / what) asks for that span, read from the whole passage.

    A bootstrap reader trained from random weights on a few hundred questions learns little; cloze questions
    teach it the core skill — find the sentence the question words come from, answer with what is missing there —
    from the corpus alone. They are training examples like any other (``cloze`` passages × ``per_passage``).
    """
    rng = np.random.default_rng([seed, 11])
    out: list[ReaderExample] = []
    for d, doc in enumerate(documents):
        sentences = [(m.start(), m.group()) for m in re.finditer(r"[^.!?。]+[.!?。]?", doc.text) if m.group().strip()]
        candidates = []
        for offset, sentence in sentences:
            if len(sentence.split()) < 4:
                continue
            for pattern, group in ((_CLOZE_NUMBER, 0), (_CLOZE_NOUN, 1), (_CLOZE_NAME, 0)):
                for m in pattern.finditer(sentence):
                    candidates.append((offset, sentence, m.start(group), m.group(group)))
        if not candidates:
            continue
        for c in rng.permutation(len(candidates))[:per_passage].tolist():
            offset, sentence, at, span = candidates[c]
            korean = re.search(r"[\uac00-\ud7a3]", sentence) is not None
            wh = ("몇" if span[0].isdigit() else "무엇") if korean else ("how many" if span[0].isdigit() else "what")
            # The blank and at most CLOZE_CONTEXT words either side: real questions are short, and a long one
            # would not leave a reader's window room for the passage.
            rest = sentence[at + len(span) :]
            after = rest.split()
            blank = wh + after.pop(0) if after and not rest[0].isspace() else wh  # a particle stays on the blank
            words = [*sentence[:at].split()[-CLOZE_CONTEXT:], blank, *after[:CLOZE_CONTEXT]]
            question = " ".join(words)
            q = Question(f"cloze-{d}-{c}", question, (span,), (offset + at,), (doc.id,), {"cloze": True})
            out.append(ReaderExample(q, doc, span, offset + at))
    return out


def strip_answer_particles(examples: Sequence[ReaderExample]) -> tuple[list[ReaderExample], int]:
    """The examples with every answer span that ends in a Korean particle trimmed to the span without it, and how
    many were trimmed.

    Only the end moves: the start stays, so a trimmed answer is still the exact passage slice
    ``text[start:start + len(answer)]``. The question keeps its gold answers (evaluation is unchanged); an example
    whose answer is no longer one of them is one this trimmed. The trimming is the ``strip-particles``
    postprocessor's (odqa-postprocess), created through the registry like any other component.
    """
    from odqa_core.types import Prediction

    stripper = plugins.create("postprocessor", "strip-particles", {})
    out: list[ReaderExample] = []
    trimmed = 0
    for example in examples:
        answer = stripped = example.answer
        if answer:
            stripped = stripper.process(example.question, [Prediction(example.question.id, answer)])[0].answer
        if stripped != answer:
            trimmed += 1
            example = dataclasses.replace(example, answer=stripped)
        out.append(example)
    return out, trimmed


def retrieve_for_training(
    documents: Sequence[Document], questions: Sequence[Question], config: ReaderTrainConfig
) -> RankedResults:
    """Each training question's top ``config.retrieved`` passages from the configured retrievers / fuser."""
    from odqa_core.pipeline import Pipeline
    from odqa_core.spec import PipelineSpec

    retrieval = {"retrievers": config.retrievers, "fuser": config.fuser, "options": config.retrieval_options}
    pipeline = Pipeline.from_spec(PipelineSpec.from_settings({**retrieval, "top_k": config.retrieved}, sample=False))
    pipeline.index(documents)
    return pipeline.retrieve(questions)


# --- the loop -------------------------------------------------------------------------------------------------------


def evaluate_reader(
    reader: TransformerReader, questions: Sequence[Question], results: RankedResults, metric: str
) -> dict[str, Any]:
    """EM / F1 (percent) of the reader's best answer per question."""
    reader.network.eval()
    return best_answer_metrics(reader.read, questions, results, metric)


class ReaderTrainer:
    """Trains one reader on one list of examples, evaluating on ``dev`` (gold passages) after every epoch."""

    def __init__(
        self,
        reader: TransformerReader,
        examples: Sequence[ReaderExample],
        dev: Sequence[Question],
        documents: Sequence[Document],
        config: ReaderTrainConfig,
        output: Path,
        *,
        test: Sequence[Question] = (),
        echo: Callable[[str], None],
    ) -> None:
        self.reader, self.examples, self.config, self.output, self.echo = reader, examples, config, output, echo
        self.dev, self.test = list(dev), list(test)
        self.dev_results = gold_results(self.dev, documents)
        self.test_results = gold_results(self.test, documents) if self.test else None

    def run(self) -> dict[str, Any]:
        import torch
        from odqa_transformers.loop import Stepper

        config, reader = self.config, self.reader
        features = reader.training_features(self.examples)
        if not features:
            raise DataError("no training features: no example has a passage to read")
        network, device, precision = reader.network, reader.torch_device, reader.run_precision
        n = len(features)
        micro_per_epoch = math.ceil(n / config.batch_size)
        steps = Stepper.for_config(list(network.named_parameters()), config, precision, micro_per_epoch)
        state: dict[str, Any] = {"step": 0, "history": [], "best": None}
        self.echo(
            f"{len(self.examples)} examples → {n} features; {config.epochs} epochs of {micro_per_epoch} batches"
        )
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            order = np.random.default_rng([config.seed, epoch]).permutation(n)
            torch.manual_seed(config.seed * 1000 + epoch)
            network.train()

            def loss_of(micro: int, order=order) -> Any:
                rows = order[micro * config.batch_size : (micro + 1) * config.batch_size]
                return reader.training_loss(reader.collate([features[i] for i in rows]))

            losses = steps.run_epoch(
                loss_of, micro_per_epoch, state, device, precision, f"epoch {epoch}/{config.epochs}"
            )
            train_s = time.perf_counter() - started
            dev = evaluate_reader(reader, self.dev, self.dev_results, config.metric)
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "train_s": round(train_s, 2),
                "dev": {"exact_match": dev["exact_match"], "f1": dev["f1"]},
                "metric": dev[config.select],
            }
            if self.test_results is not None:
                test = evaluate_reader(reader, self.test, self.test_results, config.metric)
                row["test"] = {"exact_match": test["exact_match"], "f1": test["f1"]}
            row["eval_s"] = round(time.perf_counter() - started - train_s, 2)
            state["history"].append(row)
            improved = state["best"] is None or row["metric"] > state["best"]["metric"]
            params = {"epoch": epoch, "loss": row["loss"], "dev": row["dev"]}
            if improved:
                state["best"] = {"epoch": epoch, "metric": row["metric"]}
                reader.save(self.output / "best", params=params)
            if config.keep_epochs:
                reader.save(self.output / f"epoch-{epoch}", params=params)
            self._write_report(state, n, done=epoch == config.epochs)
            self.echo(
                f"epoch {epoch}: loss {row['loss']:.4f}, dev EM {row['dev']['exact_match']:.2f} "
                f"F1 {row['dev']['f1']:.2f}" + (" (best)" if improved else "")
            )
        return self._write_report(state, n, done=True)

    def _write_report(self, state: dict[str, Any], n_features: int, done: bool) -> dict[str, Any]:
        report = training_report(
            self.config,
            self.examples,
            self.dev,
            self.test,
            state["history"],
            state["best"],
            done,
            n_features=n_features,
        )
        atomic_write_text(self.output / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
        return report


# --- entry point ----------------------------------------------------------------------------------------------------


def initial_reader(documents: Sequence[Document], config: ReaderTrainConfig) -> TransformerReader:
    """The reader to train: from ``config.model`` (HF model or checkpoint) or bootstrapped on the corpus."""
    cls = plugins.get_component_class("reader", config.reader)
    options = {**config.reader_options, "device": config.device, "precision": config.precision}
    if config.model:
        from odqa_transformers import encoder_checkpoint, hf

        model_dir = hf.resolve_model_dir(config.model)
        if encoder_checkpoint.is_dpr_checkpoint(model_dir):
            tokenizer, encoder = encoder_checkpoint.load_passage_encoder(model_dir)  # checksums verified
            return cls.from_encoder(tokenizer, encoder, config.seed, **options)
        reader = cls.from_options({**options, "model": config.model})
        reader.warm_up()
        return reader
    texts = [f"{d.title} {d.text}" if d.title else d.text for d in documents]  # as DPR's: one cached tokenizer
    return cls.bootstrap(texts, config.bootstrap_size, config.vocab_size, config.seed, **options)


def train_reader(
    documents: Sequence[Document],
    questions: Sequence[Question],
    config: ReaderTrainConfig,
    output: str | Path,
    *,
    dev_questions: Sequence[Question] | None = None,
    retrieved: RankedResults | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train a reader; returns the report (also in ``output/report.json``); the best checkpoint is ``output/best``.

    Without ``dev_questions`` (and one fold) a seeded ``dev_fraction`` of the training questions, grouped by gold
    document, selects the best epoch. With ``folds > 1`` each fold's held-out questions select its epochs,
    ``dev_questions`` are reported for every fold as ``test``, and ``best/`` is the best fold's; with
    ``config.fold = k`` only fold ``k`` is trained, directly into ``output`` (a one-fold run's layout). ``retrieved``
    (else ``config.retrieved`` passages from the configured retrieval) adds retrieved passages to the examples.
    With ``config.keep_epochs`` every epoch's checkpoint is kept as ``epoch-N/`` too.
    """
    from odqa_transformers.loop import finish_folds, group_folds, prepare_output

    from odqa_core.progress import stderr_echo

    echo = echo or stderr_echo
    config.validate()
    output = Path(output)
    if not documents:
        raise DataError("cannot train a reader on an empty corpus")
    if not any(q.answers for q in questions):
        raise DataError("the training questions have no answers; a reader trains on answer spans")
    if dev_questions is not None and not any(q.answers for q in dev_questions):
        raise DataError("the dev questions have no answers; EM/F1 selects the best epoch")
    questions = [q for q in questions if q.answers]
    fold_members = group_folds(questions, config.folds, config.seed) if config.folds > 1 else []
    # One training per output at a time: a second one into the same directory is told so (see output_lock).
    with output_lock(output):
        prepare_output(output, resume=False)
        # The model first: one that cannot be loaded is reported before passages are retrieved or examples built.
        initial = initial_reader(documents, config) if config.model != LEXICAL else None
        if retrieved is None and config.retrieved:
            source = config.fuser or config.retrievers
            echo(f"retrieving {config.retrieved} passages per training question with {source}")
            retrieved = retrieve_for_training(documents, questions, config)
        examples, owners = reader_examples(documents, questions, retrieved)
        owner = np.asarray(owners, np.int64)
        answered = np.unique(owner[[e.has_answer for e in examples]]) if examples else owner
        echo(
            f"{len(examples)} examples ({sum(not e.has_answer for e in examples)} no-answer) for "
            f"{len(answered)} of {len(questions)} questions"
        )
        cloze = cloze_examples(documents, config.cloze, config.seed) if config.cloze else []
        if cloze:
            echo(f"{len(cloze)} synthetic cloze questions from {len(documents)} passages")
        if config.strip_answer_particles:
            examples, trimmed = strip_answer_particles(examples)
            cloze, trimmed_cloze = strip_answer_particles(cloze)
            answers = sum(e.has_answer for e in examples) + len(cloze)
            echo(f"{trimmed + trimmed_cloze} of {answers} answer spans end in a particle: trimmed")

        def train_part(train_idx: np.ndarray, dev: Sequence[Question], out: Path, test: Sequence[Question]) -> dict:
            keep = np.isin(owner, train_idx)
            part = [e for e, k in zip(examples, keep.tolist()) if k] + cloze
            if initial is None:
                from odqa_readers.lexical import LexicalTrainer

                return LexicalTrainer(
                    part, dev, documents, config, out, test=test, echo=echo, questions=questions, retrieved=retrieved
                ).run()
            return ReaderTrainer(
                copy.deepcopy(initial), part, dev, documents, config, out, test=test, echo=echo
            ).run()

        if config.fold is not None:
            held = fold_members[config.fold - 1]
            echo(f"fold {config.fold}/{config.folds}: {len(held)} held-out questions")
            train_idx = np.setdiff1d(np.arange(len(questions)), held)
            return train_part(train_idx, [questions[i] for i in held], output, dev_questions or ())

        if config.folds == 1:
            if dev_questions is None:
                groups = len({q.doc_ids[0] if q.doc_ids else q.id for q in questions})
                if groups < 2:
                    raise DataError("all training questions share one gold document; give --dev-questions")
                held = group_folds(questions, min(groups, max(2, round(1 / config.dev_fraction))), config.seed)[0]
                echo(f"no dev questions given: holding out {len(held)} training questions for epoch selection")
                dev_questions = [questions[i] for i in held]
                train_idx = np.setdiff1d(np.arange(len(questions)), held)
            else:
                train_idx = np.arange(len(questions))
            return train_part(train_idx, [q for q in dev_questions if q.answers], output, ())

        reports = []
        for f, held in enumerate(fold_members, 1):
            echo(f"fold {f}/{config.folds}: {len(held)} held-out questions")
            train_idx = np.setdiff1d(np.arange(len(questions)), held)
            reports.append(
                train_part(train_idx, [questions[i] for i in held], output / f"fold-{f}", dev_questions or ())
            )
        return finish_folds(output, config, reports)


def parse_reader_config(values: Mapping[str, Any]) -> ReaderTrainConfig:
    """A config from a mapping of field names (unknown names are a one-line error listing the valid ones)."""
    valid = {f.name for f in dataclasses.fields(ReaderTrainConfig)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise UsageError(
            f"unknown reader training setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
        )
    return ReaderTrainConfig(**values)
