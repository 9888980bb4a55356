"""Experiment sweeps: ``odqa sweep --config grid.toml`` runs a grid of pipeline and training settings.

A grid file is TOML with four tables (relative paths are relative to the grid file)::

    [sweep]                          # how the sweep runs; every key optional
    output_dir = "sweep-dpr"         # results.csv, results.md, plots, best.toml, cells/ (default: sweep-<file
                                     # stem> in the current directory)
    cache_dir = "cache"              # trained models and built indexes (default: <output_dir>/cache); sweeps
                                     # that share one reuse each other's models and indexes
    metric = "acc@20"                # ranks the cells: acc@K, mrr@K, recall@K, or exact_match / f1 with a reader
    hit = "answer"                   # retrieval hits: doc (gold document) or answer (answer string in passage)
    share_epochs = false             # see "Epochs" below
    plots = true
    read_gold = false                # also read each question's gold passage: gold_exact_match, gold_f1 columns

    [pipeline]                       # the fixed pipeline: the keys of an `odqa run --config` pipeline file
    retriever = "dpr"
    corpus = "corpus.json"
    split_words = 30
    questions = {path = "KorQuAD_v1.0_dev.json", articles = "100:"}   # or a plain path
    ks = [1, 5, 10, 20, 30, 100]
    [pipeline.options.dpr]
    batch_size = 128

    [train.dpr]                      # train the dpr retriever's model in every cell (a registered trainer)
    questions = {path = "KorQuAD_v1.0_dev.json", articles = ":100"}
    dev_questions = "dev.jsonl"      # optional: selects epochs (else the trainer holds training questions out)
    checkpoint = "best"              # best: the dev-selected epoch (≤ the cell's epochs); last: the cell's epoch
    bootstrap_size = "tiny"          # ... any setting of the trainer (`odqa train dpr` options by field name)

    [axes]                           # what varies: the grid is the cartesian product, first axis slowest
    "train.dpr.bootstrap_size" = ["micro", "tiny"]
    "train.dpr.epochs" = [1, 2, 3, 4, 5]
    "pipeline.options.cross.lam" = [0.5, 1.1, 2.0]
    "pipeline.reader_top_k" = [5, 10, 20, 30]

    [variants]                       # optional: named changes to the fixed settings, one cell (per axes cell)
    baseline = {}                    # each; for one-factor-at-a-time grids: a baseline and one change per variant
    title = {"train.dpr.reader_options" = {include_title = true}}

An axis key is ``pipeline.<setting>``, ``pipeline.options.<stage>.<option>`` or ``train.<component>.<setting>``;
a setting is either fixed or an axis, never both. A variant's keys are axis keys too; a variant replaces the fixed
value of its keys (never an axis's), and the cells are the variants (first, slowest; column ``variant``) times the
axes' product. Every cell is built (names, options, settings checked) before
anything runs, so a typo fails in a second, not after an hour.

What is reused. A cell trains the models its train sections name (and its pipeline uses), indexes the corpus with
each retriever, retrieves, reads, evaluates, and appends one row to ``results.csv``. Trained models go to
``<cache_dir>/models/<component>-<hash>`` and indexes to ``<cache_dir>/indexes/<retriever>-<hash>``, the hash
covering everything they are made from (settings, corpus file content and passage split, question files and
selection), so cells with identical settings share them, across sweeps too. A model is trained in a ``.partial-<pid>``
directory renamed when complete, so a killed training is started over, never half-used.

Resume. A cell's row is its key (a hash of everything the cell computes) plus its axis values and metrics;
``results.csv`` is rewritten atomically after each cell. Running the same grid again skips every cell whose key is
in the file, so an interrupted sweep continues with the cell it was in (which is redone from its start, reusing
any model or index already complete). Adding axis values and re-running computes only the new cells.

Epochs. By default every value of an epochs axis is its own training run, exactly what ``odqa train --epochs N``
does. With ``share_epochs = true``, cells that differ only in the epochs setting read the per-epoch checkpoints
of one run of the largest value: one run instead of one per value, but the learning-rate schedule is that of the
longest run (epoch 2 of a 5-epoch run has not decayed its rate as a 2-epoch run would). ``results.csv`` records
the epochs each row's model was trained for.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from odqa_core import data, plugins
from odqa_core.errors import OdqaError, UsageError
from odqa_core.interfaces import EpochCheckpoint, Retriever, Trainer
from odqa_core.pipeline import (
    PIPELINE_KEYS,
    Pipeline,
    RunConfig,
    check_pipeline_settings,
    check_type,
    read_toml,
    run_config,
    run_pipeline,
)
from odqa_core.progress import progress, stderr_echo
from odqa_core.storage import atomic_write_text, pid_alive
from odqa_core.tuning import grid_cells, option_text
from odqa_core.types import Document, Question

SWEEP_KEYS: dict[str, tuple[type, ...]] = {
    "output_dir": (str,),
    "cache_dir": (str,),
    "metric": (str,),
    "hit": (str,),
    "share_epochs": (bool,),
    "plots": (bool,),
    "read_gold": (bool,),
}
SECTIONS = ("sweep", "pipeline", "train", "axes", "variants")
#: Keys of a ``[train.<component>]`` table that are the sweep's, not the trainer's.
TRAIN_KEYS = ("questions", "dev_questions", "checkpoint")
CHECKPOINTS = ("best", "last")
#: Pipeline settings that cannot vary along an axis.
FIXED_ONLY = ("output_dir", "questions", "options", "retriever")
READER_METRICS = ("exact_match", "f1")
#: The reader's EM / F1 given each question's gold passage (``read_gold``).
GOLD_METRICS = ("gold_exact_match", "gold_f1")
#: The column (and pseudo-axis) naming a cell's variant.
VARIANT = "variant"
#: Axes whose values repeat one configuration (folds, seeds): results.md and the plots show their spread.
REPEAT_SUFFIXES = (".fold", ".seed")
MODEL_MANIFEST = "checkpoints.json"
MODEL_FORMAT = "odqa-sweep-model"
MODEL_FORMAT_VERSION = 1
RESULTS = "results.csv"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[
        :16
    ]


# --- the grid file --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionSource:
    """A questions file and an optional article range (:func:`odqa_core.data.select_articles`); ``path`` None is
    the bundled sample (its evaluation or training questions)."""

    path: str | None = None
    articles: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "articles": self.articles}

    def describe(self) -> str:
        where = self.path or "the bundled sample"
        return f"{where} (articles {self.articles})" if self.articles else where


@dataclass
class Grid:
    path: Path
    output_dir: Path
    cache_dir: Path
    metric: str | None
    hit: str | None
    share_epochs: bool
    plots: bool
    #: Fixed pipeline settings, checked (flat ``options``), without questions and output_dir.
    pipeline: dict[str, Any]
    questions: QuestionSource
    #: Per trainer: its fixed settings (trainer options) ...
    train: dict[str, dict[str, Any]]
    #: ... and the sweep's keys of its table (questions, dev_questions, checkpoint).
    train_data: dict[str, dict[str, Any]]
    axes: dict[str, list[Any]]
    #: Named changes to the fixed settings (axis key → value), in file order; empty: no variant column.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_gold: bool = False

    @property
    def dimensions(self) -> dict[str, list[Any]]:
        """What varies from cell to cell, as the columns of the results: the variants' names, then the axes."""
        return {VARIANT: list(self.variants), **self.axes} if self.variants else dict(self.axes)


def _resolve(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _question_source(value: Any, where: str, base: Path) -> QuestionSource:
    if isinstance(value, str):
        return QuestionSource(_resolve(value, base))
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"path", "articles"})
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]!r}; a questions table has path and articles")
        if not isinstance(value.get("path"), str):
            raise UsageError(f"{where}.path must be the questions file (a string), got {value.get('path')!r}")
        articles = value.get("articles")
        if articles is not None:
            if not isinstance(articles, str):
                raise UsageError(f"{where}.articles must be a range like ':100' or '100:', got {articles!r}")
            try:
                data.select_articles([], articles)  # checks the range's form
            except UsageError as exc:
                raise UsageError(f"{where}.{exc}") from None
        return QuestionSource(_resolve(value["path"], base), articles)
    raise UsageError(f"{where} must be a path or a table {{path = ..., articles = ...}}, got {value!r}")


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: [{key}] must be a table, got {value!r}")
    return value


def _resolve_paths(settings: dict[str, Any], base: Path) -> None:
    if isinstance(settings.get("corpus"), str):
        settings["corpus"] = _resolve(settings["corpus"], base)


def read_grid(path: str | Path, output_dir: str | Path | None = None) -> Grid:
    """A grid file, checked: every key known and of the right type; one-line errors naming the bad key."""
    path = Path(path)
    raw = read_toml(path, "grid file")
    base = path.resolve().parent
    where = str(path)
    for key in raw:
        if key not in SECTIONS:
            raise UsageError(f"{where}: unknown key {key!r}; a grid file has the tables {', '.join(SECTIONS)}")

    sweep = _table(raw, "sweep", where)
    for key, value in sweep.items():
        if key not in SWEEP_KEYS:
            raise UsageError(f"{where}: unknown key sweep.{key}; valid keys: {', '.join(SWEEP_KEYS)}")
        check_type(f"{where}: sweep.{key}", value, SWEEP_KEYS[key])
    if sweep.get("hit") not in (None, "doc", "answer"):
        raise UsageError(f"{where}: sweep.hit must be doc or answer, got {sweep['hit']!r}")
    if "metric" in sweep:
        _check_metric_name(sweep["metric"], f"{where}: sweep.metric")
    if output_dir is not None:
        out = Path(output_dir)
    elif "output_dir" in sweep:
        out = Path(_resolve(sweep["output_dir"], base))
    else:  # like `odqa run`'s odqa-output/: in the current directory
        out = Path(f"sweep-{path.stem}").resolve()
    cache = Path(_resolve(sweep["cache_dir"], base)) if "cache_dir" in sweep else out / "cache"

    pipeline_raw = dict(_table(raw, "pipeline", where))
    questions = QuestionSource()
    if "questions" in pipeline_raw:
        questions = _question_source(pipeline_raw.pop("questions"), f"{where}: pipeline.questions", base)
    if "output_dir" in pipeline_raw:
        raise UsageError(f"{where}: pipeline.output_dir: a sweep writes each cell under sweep.output_dir")
    pipeline = check_pipeline_settings(pipeline_raw, f"{where}: [pipeline]")
    _resolve_paths(pipeline, base)

    train: dict[str, dict[str, Any]] = {}
    train_data: dict[str, dict[str, Any]] = {}
    for name, table in _table(raw, "train", where).items():
        label = f"{where}: [train.{name}]"
        if not isinstance(table, dict):
            raise UsageError(f"{label} must be a table of training settings, got {table!r}")
        try:
            plugins.get_component_class("trainer", name)
        except OdqaError as exc:
            raise UsageError(f"{label}: {exc}") from None
        settings = {k: v for k, v in table.items() if k not in TRAIN_KEYS}
        extra: dict[str, Any] = {}
        for key in ("questions", "dev_questions"):
            if key in table:
                extra[key] = _question_source(table[key], f"{where}: train.{name}.{key}", base)
        if "checkpoint" in table:
            extra["checkpoint"] = _check_checkpoint(table["checkpoint"], f"{where}: train.{name}.checkpoint")
        if f"{name}.{_trainer_class(name).model_option}" in pipeline["options"]:
            raise UsageError(
                f"{where}: pipeline.options.{name}.{_trainer_class(name).model_option} is set, but [train.{name}] "
                "trains that model; give one of them"
            )
        train[name] = settings
        train_data[name] = extra

    axes_raw = _table(raw, "axes", where)
    axes: dict[str, list[Any]] = {}
    for key, values in axes_raw.items():
        label = f'{where}: axes."{key}"'
        if not isinstance(values, list) or not values:
            raise UsageError(f"{label} must be a non-empty list of values, got {values!r}")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            raise UsageError(f"{label} lists a value twice: {values!r}")
        axes[key] = [_check_axis_value(key, v, label, pipeline, train, train_data, axes, base) for v in values]

    for name, settings in train.items():  # the fixed settings with each axis at its first value
        firsts = {k.split(".", 2)[2]: v[0] for k, v in axes.items() if k.startswith(f"train.{name}.")}
        firsts.pop("checkpoint", None)
        _create_trainer(name, {**settings, **firsts}, f"{where}: [train.{name}]")
    variants = _read_variants(raw, where, pipeline, train, train_data, axes, base)
    if sweep.get("metric") in GOLD_METRICS and not sweep.get("read_gold"):
        raise UsageError(f"{where}: sweep.metric {sweep['metric']} needs sweep.read_gold = true")
    share = sweep.get("share_epochs", False)
    return Grid(
        path=path,
        output_dir=out,
        cache_dir=cache,
        metric=sweep.get("metric"),
        hit=sweep.get("hit"),
        share_epochs=share,
        plots=sweep.get("plots", True),
        pipeline=pipeline,
        questions=questions,
        train=train,
        train_data=train_data,
        axes=axes,
        variants=variants,
        read_gold=sweep.get("read_gold", False),
    )


def _read_variants(
    raw: Mapping[str, Any],
    where: str,
    pipeline: dict[str, Any],
    train: dict[str, dict[str, Any]],
    train_data: dict[str, dict[str, Any]],
    axes: dict[str, list[Any]],
    base: Path,
) -> dict[str, dict[str, Any]]:
    """The ``[variants]`` table, checked: each a table of axis keys (none of them an axis) and their values."""
    variants: dict[str, dict[str, Any]] = {}
    for name, table in _table(raw, "variants", where).items():
        label = f"{where}: variants.{name}"
        if not isinstance(table, dict):
            raise UsageError(f'{label} must be a table of settings ({{"train.extractive.cloze" = 1}}), got {table!r}')
        checked: dict[str, Any] = {}
        for key, value in table.items():
            if key in axes:
                raise UsageError(f'{label}: "{key}" is also an axis; give it in one place')
            checked[key] = _check_axis_value(
                key, value, f'{label}."{key}"', pipeline, train, train_data, axes, base, replaces_fixed=True
            )
        variants[name] = checked
    return variants


def _check_metric_name(metric: str, where: str) -> None:
    if metric in READER_METRICS or metric in GOLD_METRICS:
        return
    kind, _, cut = metric.partition("@")
    if kind not in ("acc", "mrr", "recall") or not cut.isdigit() or int(cut) < 1:
        raise UsageError(
            f"{where} must be acc@K, mrr@K, recall@K, exact_match, f1, gold_exact_match or gold_f1, got {metric!r}"
        )


def _check_checkpoint(value: Any, where: str) -> str:
    if value not in CHECKPOINTS:
        raise UsageError(f"{where} must be {' or '.join(CHECKPOINTS)}, got {value!r}")
    return value


def _trainer_class(name: str) -> type[Trainer]:
    return plugins.get_component_class("trainer", name)  # type: ignore[return-value]


def _create_trainer(name: str, settings: Mapping[str, Any], label: str) -> Trainer:
    try:
        return plugins.create("trainer", name, dict(settings))
    except OdqaError as exc:
        raise UsageError(f"{label}: {exc}") from None
    except TypeError as exc:
        raise UsageError(f"{label}: {exc}") from None


def _check_axis_value(
    key: str,
    value: Any,
    label: str,
    pipeline: dict[str, Any],
    train: dict[str, dict[str, Any]],
    train_data: dict[str, dict[str, Any]],
    axes: dict[str, list[Any]],
    base: Path,
    *,
    replaces_fixed: bool = False,
) -> Any:
    """The axis value, checked as far as it can be alone (its key exists, its type, the trainer accepts it).

    ``replaces_fixed`` (a variant's value): the key may also be fixed, and the value replaces the fixed one.
    """
    section, _, rest = key.partition(".")
    shapes = "pipeline.<setting>, pipeline.options.<stage>.<option> or train.<component>.<setting>"
    if section == "pipeline" and rest.startswith("options."):
        stage, _, option = rest[len("options.") :].partition(".")
        if not stage or not option:
            raise UsageError(f"{label}: name the stage and the option (pipeline.options.<stage>.<option>)")
        if f"{stage}.{option}" in pipeline["options"] and not replaces_fixed:
            raise UsageError(f"{label}: also fixed in [pipeline.options.{stage}]; give it in one place")
        if stage in train and option == _trainer_class(stage).model_option:
            raise UsageError(f"{label}: [train.{stage}] trains that model; vary its training settings instead")
        return value
    if section == "pipeline":
        if rest not in PIPELINE_KEYS or rest in FIXED_ONLY:
            valid = [k for k in PIPELINE_KEYS if k not in FIXED_ONLY]
            raise UsageError(f"{label}: unknown pipeline setting {rest!r}; axes may vary {', '.join(valid)}")
        if rest in pipeline and rest != "options" and not replaces_fixed:
            raise UsageError(f"{label}: also fixed in [pipeline]; give it in one place")
        checked = check_pipeline_settings({rest: value}, label)[rest]
        if rest == "corpus":
            checked = _resolve(checked, base)
        return checked
    if section == "train":
        name, _, setting = rest.partition(".")
        if name not in train:
            raise UsageError(f"{label}: there is no [train.{name}] table; add one to train {name!r}")
        if not setting:
            raise UsageError(f"{label}: name the setting (train.{name}.<setting>)")
        if setting == "checkpoint":
            return _check_checkpoint(value, label)
        if setting in TRAIN_KEYS:
            raise UsageError(f"{label}: train.{name}.{setting} cannot vary; run a sweep per value")
        if setting in train_data[name] or (setting in train[name] and not replaces_fixed):
            raise UsageError(f"{label}: also fixed in [train.{name}]; give it in one place")
        if setting not in _trainer_class(name).option_names():
            valid = ", ".join([*_trainer_class(name).option_names(), "checkpoint"])
            raise UsageError(f"{label}: unknown setting {setting!r} of trainer {name!r}; valid: {valid}")
        others = {k.split(".", 2)[2]: v[0] for k, v in axes.items() if k.startswith(f"train.{name}.")}
        others.pop("checkpoint", None)
        _create_trainer(name, {**train[name], **others, setting: value}, f"{label} = {option_text(value)}")
        return value
    raise UsageError(f"{label}: an axis key is {shapes}")


# --- cells ----------------------------------------------------------------------------------------------------------


@dataclass
class ModelPlan:
    """One training run a cell needs, and which of its epochs the cell uses."""

    trainer: str
    settings: dict[str, Any]
    questions: QuestionSource
    dev_questions: QuestionSource | None
    checkpoint: str
    #: The epoch whose checkpoint the cell reads (None: the run's last).
    epoch: int | None
    key: str = ""


@dataclass
class Cell:
    index: int
    values: dict[str, Any]
    settings: dict[str, Any]  # pipeline settings with the axis values applied
    config: RunConfig
    models: list[ModelPlan] = field(default_factory=list)
    key: str = ""

    def label(self) -> str:
        return cell_label(self.values)


def cell_label(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={option_text(v)}" for k, v in values.items()) or "(the fixed pipeline)"


class CorpusCache:
    """Corpora, questions and file fingerprints, each loaded once per sweep."""

    def __init__(self) -> None:
        self._fingerprints: dict[str, str] = {}
        self._corpora: dict[str, list[Document]] = {}
        self._questions: dict[str, list[Question]] = {}

    def fingerprint(self, path: str | None, sample: Callable[[], Path]) -> str:
        real = str(path or sample())
        if real not in self._fingerprints:
            h = hashlib.blake2b(digest_size=16)
            with open(real, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            self._fingerprints[real] = h.hexdigest()
        return self._fingerprints[real]

    def corpus_id(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "corpus": self.fingerprint(settings.get("corpus"), data.sample_corpus_path),
            "split_words": settings.get("split_words"),
            "stride": settings.get("stride"),
            "dedupe": settings.get("dedupe", True),
        }

    def questions_id(self, source: QuestionSource | None, sample: Callable[[], Path]) -> dict[str, Any] | None:
        if source is None:
            return None
        return {"questions": self.fingerprint(source.path, sample), "articles": source.articles}

    def corpus(self, settings: Mapping[str, Any]) -> list[Document]:
        key = json.dumps(self.corpus_id(settings), sort_keys=True)
        if key not in self._corpora:
            self._corpora[key] = data.load_corpus(
                settings.get("corpus") or data.sample_corpus_path(),
                split_words=settings.get("split_words"),
                stride=settings.get("stride"),
                dedupe=settings.get("dedupe", True),
            )
        return self._corpora[key]

    def questions(self, source: QuestionSource, sample: Callable[[], Path]) -> list[Question]:
        path = str(source.path or sample())
        if path not in self._questions:
            self._questions[path] = data.load_questions(path)
        questions = self._questions[path]
        return data.select_articles(questions, source.articles, path) if source.articles else questions


def _apply(grid: Grid, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, str]]:
    settings = copy.deepcopy(grid.pipeline)
    train = copy.deepcopy(grid.train)
    checkpoints = {name: extra.get("checkpoint", "best") for name, extra in grid.train_data.items()}
    changes = [(k, v) for k, v in values.items() if k != VARIANT]
    if VARIANT in values:  # the variant first: it replaces fixed settings, the axes set the rest
        changes = [*grid.variants[values[VARIANT]].items(), *changes]
    for key, value in changes:
        section, _, rest = key.partition(".")
        if section == "pipeline" and rest.startswith("options."):
            settings["options"][rest[len("options.") :]] = value
        elif section == "pipeline":
            settings[rest] = value
        else:
            name, _, setting = rest.partition(".")
            if setting == "checkpoint":
                checkpoints[name] = value
            else:
                train[name][setting] = value
    return settings, train, checkpoints


def _shared_epochs(grid: Grid, name: str) -> int | None:
    """The epochs of the one run that cells differing only in epochs share (``share_epochs``), else None."""
    option = _trainer_class(name).epochs_option
    axis = grid.axes.get(f"train.{name}.{option}") if option else None
    if not grid.share_epochs or not axis:
        return None
    return max(axis)


def plan_cells(grid: Grid, cache: CorpusCache) -> list[Cell]:
    """Every cell of the grid, built and checked (components created, no model loaded), with its key."""
    cells = []
    for index, values in enumerate(grid_cells(grid.dimensions) if grid.dimensions else [{}], 1):
        settings, train, checkpoints = _apply(grid, values)
        try:
            config = run_config(settings, sample="corpus" not in settings)
            stages = {("retriever", n) for n in config.retrievers} | (
                {("reader", config.reader)} if config.reader else set()
            )
            models = []
            for name, trainer_settings in train.items():
                cls = _trainer_class(name)
                if (cls.stage, name) not in stages:
                    continue
                extra = grid.train_data[name]
                if "corpus" in settings and "questions" not in extra:
                    raise UsageError(
                        f"[train.{name}] needs questions = ... (training questions) when the pipeline has a corpus"
                    )
                shared = _shared_epochs(grid, name)
                epoch = trainer_settings.get(cls.epochs_option) if cls.epochs_option else None
                run_settings = dict(trainer_settings)
                if shared is not None:
                    run_settings[cls.epochs_option] = shared
                _create_trainer(name, run_settings, f"[train.{name}]")
                models.append(
                    ModelPlan(
                        name,
                        run_settings,
                        extra.get("questions", QuestionSource()),
                        extra.get("dev_questions"),
                        checkpoints[name],
                        epoch,
                    )
                )
                settings["options"][f"{name}.{cls.model_option}"] = "(trained in the cell)"
            # Build the real run config with the trained models' slots filled, and create every component.
            config = run_config(settings, sample="corpus" not in settings)
            Pipeline.from_config(config)
        except OdqaError as exc:
            raise UsageError(f"{grid.path}: cell {index} ({cell_label(values)}): {exc}") from None
        cell = Cell(index, values, settings, config, models)
        for plan in models:
            plan.key = digest(
                {
                    "trainer": plan.trainer,
                    "settings": plan.settings,
                    "corpus": cache.corpus_id(settings),
                    "questions": cache.questions_id(plan.questions, data.sample_train_questions_path),
                    "dev_questions": cache.questions_id(plan.dev_questions, data.sample_questions_path),
                }
            )
        cell.key = digest(
            {
                "pipeline": {k: v for k, v in settings.items() if k != "options"},
                "options": config.options,
                "corpus": cache.corpus_id(settings),
                "questions": cache.questions_id(grid.questions, data.sample_questions_path),
                "models": [(p.trainer, p.key, p.epoch, p.checkpoint) for p in models],
                "hit": grid.hit,
                # Only when set, so the cells of grids that do not read gold passages keep their keys.
                **({"read_gold": True} if grid.read_gold else {}),
            }
        )
        cells.append(cell)
    unused = sorted(set(grid.train) - {p.trainer for c in cells for p in c.models})
    if unused:
        raise UsageError(
            f"{grid.path}: [train.{unused[0]}]: no cell's pipeline uses {unused[0]}; add it to the pipeline or "
            "remove the table"
        )
    return cells


# --- running --------------------------------------------------------------------------------------------------------


def read_results(path: Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv`` (empty when there is none); a file without a ``cell`` column is an error."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return []
        if "cell" not in reader.fieldnames:
            raise UsageError(f"{path} is not a sweep's results file (no 'cell' column); use another output_dir")
        return [row for row in reader if row.get("cell")]


def write_results(path: Path, rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> None:
    """All rows, columns ``first`` then the others in order of appearance, written atomically."""
    columns = list(dict.fromkeys([*first, *(k for row in rows for k in row)]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    atomic_write_text(path, buffer.getvalue())


def _load_checkpoints(target: Path) -> list[EpochCheckpoint]:
    manifest = json.loads((target / MODEL_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != MODEL_FORMAT or manifest.get("format_version") != MODEL_FORMAT_VERSION:
        raise UsageError(f"{target}: not a sweep model of format version {MODEL_FORMAT_VERSION}; delete it")
    out = []
    for row in manifest["epochs"]:
        path = target / row["path"]
        if Path(os.path.realpath(target)) not in Path(os.path.realpath(path)).parents:
            raise UsageError(f"{target}: checkpoint {row['path']!r} is not inside the model directory; delete it")
        if not path.exists():
            raise UsageError(f"{target}: checkpoint {row['path']} is missing; delete {target} to retrain")
        out.append(EpochCheckpoint(int(row["epoch"]), path, float(row["dev_metric"]), float(row["loss"])))
    return out


class SweepRunner:
    """Runs the cells of a grid that ``results.csv`` does not have yet."""

    def __init__(self, grid: Grid, echo: Callable[[str], None] = stderr_echo) -> None:
        self.grid = grid
        self.echo = echo
        self.data = CorpusCache()
        self.cells = plan_cells(grid, self.data)
        self.results_path = grid.output_dir / RESULTS
        self.rows = read_results(self.results_path)
        names = {c.key: c.values[VARIANT] for c in self.cells if VARIANT in c.values}
        #: Rows of a variant renamed since they ran: they take the name it has now (nothing is computed again).
        self.relabelled = 0
        for row in self.rows:
            if row["cell"] in names and row.get(VARIANT) != names[row["cell"]]:
                row[VARIANT] = names[row["cell"]]
                self.relabelled += 1
        self._loaded: dict[str, Retriever] = {}
        self.check_metric()

    @property
    def done_keys(self) -> set[str]:
        return {row["cell"] for row in self.rows}

    def pending(self) -> list[Cell]:
        done = self.done_keys
        return [c for c in self.cells if c.key not in done]

    def model_dir(self, plan: ModelPlan) -> Path:
        return self.grid.cache_dir / "models" / f"{plan.trainer}-{plan.key}"

    def describe(self) -> list[dict[str, Any]]:
        """Each cell: its axis values, whether it is done, and the models it trains or reuses (``--dry-run``)."""
        done = self.done_keys
        return [
            {
                "cell": c.index,
                "key": c.key,
                "values": c.values,
                "done": c.key in done,
                "models": [
                    {
                        "trainer": p.trainer,
                        "dir": str(self.model_dir(p)),
                        "cached": (self.model_dir(p) / MODEL_MANIFEST).is_file(),
                        "epoch": p.epoch,
                        "checkpoint": p.checkpoint,
                    }
                    for p in c.models
                ],
            }
            for c in self.cells
        ]

    # --- the stages of a cell ---

    def ensure_model(self, plan: ModelPlan, settings: Mapping[str, Any]) -> list[EpochCheckpoint]:
        target = self.model_dir(plan)
        if (target / MODEL_MANIFEST).is_file():
            return _load_checkpoints(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(f"{target.name}.partial-*"):
            if not _running_elsewhere(stale.name.rpartition("-")[2]):  # a training that was killed: start over
                shutil.rmtree(stale, ignore_errors=True)
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        documents = self.data.corpus(settings)
        questions = self.data.questions(plan.questions, data.sample_train_questions_path)
        dev = self.data.questions(plan.dev_questions, data.sample_questions_path) if plan.dev_questions else None
        self.echo(
            f"training {plan.trainer} on {len(questions)} questions of {plan.questions.describe()} "
            f"({', '.join(f'{k}={option_text(v)}' for k, v in plan.settings.items()) or 'defaults'}) → {target}"
        )
        started = time.perf_counter()
        trainer = _create_trainer(plan.trainer, plan.settings, f"[train.{plan.trainer}]")
        checkpoints = trainer.train(documents, questions, partial, dev_questions=dev)
        if not checkpoints:
            raise UsageError(f"trainer {plan.trainer!r} returned no checkpoints")
        rows = []
        for ckpt in checkpoints:
            try:
                relative = Path(ckpt.path).resolve().relative_to(partial.resolve())
            except ValueError:
                raise UsageError(
                    f"trainer {plan.trainer!r} saved a checkpoint outside its output: {ckpt.path}"
                ) from None
            rows.append(
                {"epoch": ckpt.epoch, "path": str(relative), "dev_metric": ckpt.dev_metric, "loss": ckpt.loss}
            )
        manifest = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "trainer": plan.trainer,
            "settings": plan.settings,
            "questions": plan.questions.to_json(),
            "dev_questions": plan.dev_questions.to_json() if plan.dev_questions else None,
            "epochs": rows,
            "train_s": round(time.perf_counter() - started, 2),
            "finished": _now(),
        }
        atomic_write_text(partial / MODEL_MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        try:
            partial.rename(target)
        except OSError:  # another sweep on the same cache finished the same model first: use that one
            if not (target / MODEL_MANIFEST).is_file():
                raise
            shutil.rmtree(partial, ignore_errors=True)
        return _load_checkpoints(target)

    @staticmethod
    def choose(plan: ModelPlan, checkpoints: Sequence[EpochCheckpoint]) -> EpochCheckpoint:
        epoch = plan.epoch if plan.epoch is not None else checkpoints[-1].epoch
        upto = [c for c in checkpoints if c.epoch <= epoch]
        if not upto or upto[-1].epoch != epoch:
            raise UsageError(f"the {plan.trainer} run has no checkpoint of epoch {epoch}")
        if plan.checkpoint == "last":
            return upto[-1]
        return max(upto, key=lambda c: c.dev_metric)  # the first best, as the trainers' own best/

    def index(self, pipeline: Pipeline, settings: Mapping[str, Any], documents: Sequence[Document]) -> None:
        """Index with every retriever the pipeline needs indexed, from the index cache when it was built before."""
        corpus_id = self.data.corpus_id(settings)
        used: dict[str, Retriever] = {}
        for i, retriever in enumerate(pipeline.retrievers):
            if pipeline.fuser is not None and pipeline.fuser.unindexed_ok(retriever, pipeline.retrievers):
                retriever.warm_up()
                continue
            key = digest({"retriever": retriever.name, "config": retriever.config(), "corpus": corpus_id})
            path = self.grid.cache_dir / "indexes" / f"{retriever.name}-{key}"
            if key in self._loaded:
                pipeline.retrievers[i] = self._loaded[key]
            elif (path / "manifest.json").is_file():
                loaded = type(retriever).load(path)
                loaded.warm_up()
                pipeline.retrievers[i] = loaded
            else:
                retriever.warm_up()
                retriever.index(documents)
                retriever.save(path)
            used[key] = pipeline.retrievers[i]
        self._loaded = used  # keep what this cell used for the next one, drop the rest
        if pipeline.fuser is not None:
            pipeline.fuser.check_ready(pipeline.retrievers)

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        started = time.perf_counter()
        settings = copy.deepcopy(cell.settings)
        row: dict[str, Any] = {"cell": cell.key, **{k: option_text(v) for k, v in cell.values.items()}}
        train_s = 0.0
        trained = 0
        for plan in cell.models:
            t0 = time.perf_counter()
            trained += not self._is_trained(plan)
            chosen = self.choose(plan, self.ensure_model(plan, settings))
            train_s += time.perf_counter() - t0
            settings["options"][f"{plan.trainer}.{_trainer_class(plan.trainer).model_option}"] = str(chosen.path)
            epochs_option = _trainer_class(plan.trainer).epochs_option
            if epochs_option:
                row[f"{plan.trainer}.trained_epochs"] = plan.settings.get(epochs_option, "")
            row[f"{plan.trainer}.epoch"] = chosen.epoch
            row[f"{plan.trainer}.dev_metric"] = round(chosen.dev_metric, 6)
        config = run_config(settings, sample="corpus" not in settings)
        pipeline = Pipeline.from_config(config)
        if pipeline.reader is not None:
            pipeline.reader.warm_up()
        documents = self.data.corpus(settings)
        questions = self.data.questions(self.grid.questions, data.sample_questions_path)
        t0 = time.perf_counter()
        self.index(pipeline, settings, documents)
        index_s = time.perf_counter() - t0
        summary = run_pipeline(
            pipeline, documents, questions, self.grid.output_dir / "cells" / cell.key, save_indexes=False, index=False
        )
        atomic_write_text(
            self.grid.output_dir / "cells" / cell.key / "cell.json",
            json.dumps(
                {"cell": cell.index, "values": cell.values, "settings": settings}, ensure_ascii=False, indent=1
            ),
        )
        report = summary["report"]
        hit = self.grid.hit or ("doc" if "doc" in report.metrics else "answer")
        if hit not in report.metrics:
            raise UsageError(
                f"the questions have no {'gold document ids' if hit == 'doc' else 'answers'} for hit {hit}"
            )
        for name, value in report.metrics[hit].items():
            row[name] = round(float(value), 6)
        qa = summary.get("qa_report")
        if qa is not None:
            row["exact_match"] = "" if qa.exact_match is None else round(qa.exact_match, 4)
            row["f1"] = "" if qa.f1 is None else round(qa.f1, 4)
        if self.grid.read_gold and pipeline.reader is not None:
            row.update(self.read_gold(pipeline, documents, questions, self.grid.output_dir / "cells" / cell.key))
        row["n_questions"] = len(questions)
        row["hit"] = hit
        timings = summary["timings"]
        row.update(
            {
                "trained": trained,
                "train_s": round(train_s, 2),
                "index_s": round(index_s, 2),
                "retrieve_s": timings.get("retrieve_s", 0.0),
                "read_s": timings.get("read_s", ""),
                "cell_s": round(time.perf_counter() - started, 2),
                "finished": _now(),
            }
        )
        return row

    def read_gold(
        self, pipeline: Pipeline, documents: Sequence[Document], questions: Sequence[Question], cell_dir: Path
    ) -> dict[str, Any]:
        """EM / F1 of the cell's reader (and postprocessors) given each question's gold passage instead of the
        retrieved ones: the reader's own accuracy, apart from retrieval's. The answers go to the cell's
        ``gold_predictions.json`` (as ``predictions.json``: question id → answer), for per-question comparisons."""
        from odqa_core.qa_metrics import evaluate_predictions

        t0 = time.perf_counter()
        nbest = pipeline.read(questions, data.gold_results(questions, documents))
        predictions = {q.id: (preds[0].answer if preds else "") for q, preds in zip(questions, nbest)}
        qa = evaluate_predictions(predictions, questions, pipeline.config.metric)
        text = json.dumps(predictions, ensure_ascii=False, indent=1)
        atomic_write_text(cell_dir / "gold_predictions.json", text)
        return {
            "gold_exact_match": "" if qa.exact_match is None else round(qa.exact_match, 4),
            "gold_f1": "" if qa.f1 is None else round(qa.f1, 4),
            "gold_read_s": round(time.perf_counter() - t0, 2),
        }

    def run(self) -> list[dict[str, Any]]:
        """Run the pending cells, writing the outputs after each; returns the rows of this grid's cells."""
        grid = self.grid
        grid.output_dir.mkdir(parents=True, exist_ok=True)
        pending = self.pending()
        total = len(self.cells)
        done = total - len(pending)
        if done:
            self.echo(f"{done} of {total} cells already in {self.results_path}; running the other {len(pending)}")
        first = ["cell", *grid.dimensions]
        if self.relabelled:
            write_results(self.results_path, self.rows, first)
        evaluating: list[float] = []  # seconds per cell without its training
        training: list[float] = []  # seconds per model trained
        with progress(total, "sweep", "cell", initial=done) as bar:
            for i, cell in enumerate(pending):
                row = self.run_cell(cell)
                self.rows.append(row)
                write_results(self.results_path, self.rows, first)
                self.write_reports()
                evaluating.append(float(row["cell_s"]) - float(row["train_s"]))
                if row["trained"]:
                    training.append(float(row["train_s"]) / row["trained"])
                done += 1
                bar.update(1)
                left = total - done
                eta = (
                    f"; about {_duration(self.time_left(pending[i + 1 :], evaluating, training))} left"
                    if left
                    else ""
                )
                metric = self.metric()
                self.echo(
                    f"[{done}/{total}] {cell.label()} → {metric} {_fmt(row.get(metric))} in {row['cell_s']:.1f} s "
                    f"(train {row['train_s']:.1f}, index {row['index_s']:.1f}, retrieve {row['retrieve_s']:.1f}"
                    + (f", read {row['read_s']:.1f}" if row["read_s"] != "" else "")
                    + f"){eta}"
                )
        if not pending:
            self.write_reports()
        return self.grid_rows()

    def time_left(self, cells: Sequence[Cell], evaluating: Sequence[float], training: Sequence[float]) -> float:
        """Seconds the ``cells`` will take: the mean cell without training each, plus the mean training per model
        they still have to train (each model once)."""
        untrained = {str(self.model_dir(p)) for c in cells for p in c.models if not self._is_trained(p)}
        per_model = sum(training) / len(training) if training else 0.0
        return len(cells) * sum(evaluating) / max(1, len(evaluating)) + len(untrained) * per_model

    def _is_trained(self, plan: ModelPlan) -> bool:
        return (self.model_dir(plan) / MODEL_MANIFEST).is_file()

    # --- outputs ---

    def grid_rows(self) -> list[dict[str, Any]]:
        """This grid's finished rows, in grid order (a results file may also hold rows of other grids)."""
        by_key = {row["cell"]: row for row in self.rows}
        return [_typed(by_key[c.key]) for c in self.cells if c.key in by_key]

    def metric(self) -> str:
        if self.grid.metric:
            return self.grid.metric
        if all(c.config.reader for c in self.cells):
            return "f1"
        ks = sorted(set.intersection(*(set(c.config.ks) for c in self.cells)))
        return f"acc@{20 if 20 in ks else max([k for k in ks if k <= 20] or ks)}"

    def check_metric(self) -> None:
        """The ranking metric is measured in every cell (its K among every cell's ks; a reader for EM/F1)."""
        metric = self.metric()
        where = f"{self.grid.path}: sweep.metric {metric}"
        for cell in self.cells:
            if metric in READER_METRICS or metric in GOLD_METRICS:
                if not cell.config.reader:
                    raise UsageError(f"{where} needs a reader, and cell {cell.index} ({cell.label()}) has none")
            elif int(metric.partition("@")[2]) not in cell.config.ks:
                raise UsageError(
                    f"{where}: cell {cell.index} ({cell.label()}) evaluates at ks {list(cell.config.ks)}; "
                    "add the cut-off to pipeline.ks"
                )

    def best(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        metric = self.metric()
        scored = [r for r in rows if isinstance(r.get(metric), (int, float)) and not math.isnan(r[metric])]
        if not scored:
            return None
        return dict(max(scored, key=lambda r: r[metric]))  # first of equals: grid order

    def write_reports(self) -> None:
        rows = self.grid_rows()
        plots: list[Path] = []
        if self.grid.plots and rows:
            from odqa_core.sweep_plots import plot_sweep

            plots = plot_sweep(rows, self, self.grid.output_dir)
        atomic_write_text(self.grid.output_dir / "results.md", self.markdown(rows, plots))
        best = self.best(rows)
        if best is not None:
            cell = next(c for c in self.cells if c.key == best["cell"])
            atomic_write_text(self.grid.output_dir / "best.toml", self.best_pipeline(cell))

    def metric_columns(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        metric = self.metric()
        ks = sorted({k for c in self.cells for k in c.config.ks})
        cols = [metric, *READER_METRICS, *GOLD_METRICS, *(f"acc@{k}" for k in ks), "mrr@10"]
        return [c for c in dict.fromkeys(cols) if any(c in r and r[c] != "" for r in rows)]

    def markdown(self, rows: Sequence[Mapping[str, Any]], plots: Sequence[Path]) -> str:
        grid = self.grid
        metric = self.metric()
        axes = list(grid.dimensions)
        extra = sorted({k for r in rows for k in r if k.endswith((".epoch", ".trained_epochs"))})
        cols = self.metric_columns(rows)
        lines = [
            f"# Sweep: {grid.path.name}",
            "",
            f"{len(rows)} of {len(self.cells)} cells done; ranked by {metric} (hit: {_hits(rows)}); "
            f"questions: {grid.questions.describe()}. Updated {_now()}.",
            "",
        ]
        best = self.best(rows)
        if best is not None:
            lines += [f"**Best**: {row_label(best, axes)} — {metric} = {_fmt(best[metric])} (`best.toml`)", ""]
        header = ["rank", *axes, *extra, *cols, "cell s"]
        ordered = sorted(rows, key=lambda r: -_num(r.get(metric)))
        table = [header] + [
            [
                str(i),
                *(str(r.get(a, "")) for a in axes),
                *(str(r.get(e, "")) for e in extra),
                *(_fmt(r.get(c)) for c in cols),
                _fmt(r.get("cell_s"), 1),
            ]
            for i, r in enumerate(ordered, 1)
        ]
        lines += _md_table(table)
        folds = [a for a in axes if a.endswith(REPEAT_SUFFIXES)]
        if folds and rows:
            over = folds[0].rsplit(".", 1)[-1] + "s"  # folds, seeds
            lines += ["", f"**Spread over {folds[0]}** ({metric}: mean ± std over {over}, n)", ""]
            lines += _md_table(
                [["setting", "mean", "std", "min", "max", "n"], *_fold_spread(rows, axes, folds[0], metric)]
            )
        if plots:
            lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
        pending = len(self.cells) - len(rows)
        if pending:
            lines += ["", f"{pending} cells not run yet: run the same `odqa sweep --config` again to continue."]
        return "\n".join(lines) + "\n"

    def best_pipeline(self, cell: Cell) -> str:
        """A pipeline file (``odqa run --config best.toml``) of the best cell, with its trained models."""
        settings = copy.deepcopy(cell.settings)
        row = next(r for r in self.rows if r["cell"] == cell.key)
        options = settings.pop("options")
        for plan in cell.models:
            option = f"{plan.trainer}.{_trainer_class(plan.trainer).model_option}"
            epoch = int(row[f"{plan.trainer}.epoch"])
            ckpt = next(c for c in _load_checkpoints(self.model_dir(plan)) if c.epoch == epoch)
            options[option] = str(ckpt.path)
        lines = [
            f"# The best cell of {self.grid.path.name} ({row_label(_typed(row), list(self.grid.dimensions))}):",
            f"# {self.metric()} = {row.get(self.metric())}. Run it with: odqa run --config best.toml",
        ]
        if self.grid.questions.articles:
            lines.append(f"# questions: {self.grid.questions.describe()} (select those articles yourself)")
        elif self.grid.questions.path:
            settings["questions"] = self.grid.questions.path
        for key, value in settings.items():
            if value is not None and key != "analyzer_options":
                lines.append(f"{key} = {_toml_value(value)}")
        stages: dict[str, dict[str, Any]] = {}
        for key, value in options.items():
            stage, _, option = key.partition(".")
            stages.setdefault(stage, {})[option] = value
        for stage, table in stages.items():
            lines += ["", f"[options.{stage}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        return "\n".join(lines) + "\n"


# --- small helpers --------------------------------------------------------------------------------------------------


def _running_elsewhere(pid: str) -> bool:
    """Whether ``pid`` is another live process (a sweep training into its own ``.partial-<pid>`` directory)."""
    return pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 90
        else f"{seconds / 60:.0f} min"
        if seconds < 5400
        else f"{seconds / 3600:.1f} h"
    )


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("-inf")


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def _typed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CSV row with its numbers as numbers (metric columns compare and plot)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str) and key != "cell":
            try:
                number = float(value)
            except ValueError:
                out[key] = value
                continue
            out[key] = (
                int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
            )
        else:
            out[key] = value
    return out


def row_label(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    return ", ".join(f"{a}={row.get(a)}" for a in axes) or "the fixed pipeline"


def _hits(rows: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(sorted({str(r.get("hit")) for r in rows})) or "-"


def _md_table(rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return out


def _fold_spread(rows: Sequence[Mapping[str, Any]], axes: Sequence[str], fold: str, metric: str) -> list[list[str]]:
    import numpy as np

    groups: dict[str, list[float]] = {}
    for row in rows:
        others = [a for a in axes if a != fold]
        groups.setdefault(row_label(row, others), []).append(_num(row.get(metric)))
    out = []
    for label, values in groups.items():
        v = np.array([x for x in values if math.isfinite(x)])
        if len(v):
            out.append([label, f"{v.mean():.4f}", f"{v.std():.4f}", f"{v.min():.4f}", f"{v.max():.4f}", str(len(v))])
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise UsageError(f"cannot write {value!r} to a pipeline file")
