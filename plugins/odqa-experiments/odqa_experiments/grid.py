"""The grid file of ``odqa sweep``: read, checked key by key, and the cells' axis values.

A grid file is TOML with five tables (relative paths are relative to the grid file)::

    [sweep]                          # how the sweep runs; every key optional
    output_dir = "sweep-dpr"         # results.csv, results.md, plots, best.toml, cells/ (default: sweep-<file
                                     # stem> in the current directory)
    cache_dir = "cache"              # trained models and built indexes (default: <output_dir>/cache); sweeps
                                     # that share one reuse each other's models and indexes
    metric = "acc@20"                # ranks the cells: acc@K, mrr@K, recall@K, or exact_match / f1 with a reader
    hit = "answer"                   # retrieval hits: doc (gold document) or answer (answer string in passage)
    share_epochs = false             # one training run for cells that differ only in epochs (planning.py)
    plots = true
    read_gold = false                # also read each question's gold passage: gold_exact_match, gold_f1 columns
    shards = 1                       # build each index as N shards (`odqa index --shards N`): same metrics, for
                                     # corpora one index cannot hold

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
axes' product. Everything that can be checked without running is checked here, so a typo fails in a second, not
after an hour.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odqa_core import plugins
from odqa_core.errors import OdqaError, UsageError
from odqa_core.interfaces import Trainer
from odqa_core.spec import PIPELINE_KEYS, check_pipeline_settings, check_type, read_toml
from odqa_core.types import Question

SWEEP_KEYS: dict[str, tuple[type, ...]] = {
    "output_dir": (str,),
    "cache_dir": (str,),
    "metric": (str,),
    "hit": (str,),
    "share_epochs": (bool,),
    "plots": (bool,),
    "read_gold": (bool,),
    "shards": (int,),
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


@dataclass(frozen=True)
class QuestionSource:
    """A questions file and an optional article range (:func:`select_articles`); ``path`` None is the bundled
    sample (its evaluation or training questions)."""

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
    #: Shards of every index the sweep builds (1: a single index).
    shards: int = 1

    @property
    def dimensions(self) -> dict[str, list[Any]]:
        """What varies from cell to cell, as the columns of the results: the variants' names, then the axes."""
        return {VARIANT: list(self.variants), **self.axes} if self.variants else dict(self.axes)


def grid_cells(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the axes, first axis slowest."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def option_text(value: Any) -> str:
    """An option value as ``-o key=VALUE`` takes it: JSON, except strings that read back as themselves."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, ensure_ascii=False)


def select_articles(questions: Sequence[Question], articles: str, label: str = "questions") -> list[Question]:
    """The questions of a range of articles of a SQuAD-layout file, by article index in file order, as a Python
    slice: ``":100"`` (the first 100), ``"100:"`` (from the 101st on), ``"10:20"``.

    The KorQuAD benchmark split (train on the first 100 articles, evaluate on the last 40) is
    ``select_articles(qs, ":100")`` / ``select_articles(qs, "100:")``.
    """
    start_text, sep, stop_text = articles.partition(":")
    try:
        if not sep or ":" in stop_text:
            raise ValueError
        start = int(start_text) if start_text.strip() else None
        stop = int(stop_text) if stop_text.strip() else None
    except ValueError:
        raise UsageError(f"articles must be a range like ':100', '100:' or '10:20', got {articles!r}") from None
    if not questions:
        return []
    if any("article" not in q.metadata for q in questions):
        raise UsageError(
            f"{label}: articles selects questions of a SQuAD/KorQuAD JSON file by article; these have none"
        )
    count = max(q.metadata["article"] for q in questions) + 1
    chosen = set(range(count)[slice(start, stop)])
    return [q for q in questions if q.metadata["article"] in chosen]


def trainer_class(name: str) -> type[Trainer]:
    return plugins.get_component_class("trainer", name)  # type: ignore[return-value]


def create_trainer(name: str, settings: Mapping[str, Any], label: str) -> Trainer:
    """The trainer ``name`` with ``settings``; a bad setting is a one-line error starting with ``label``."""
    try:
        return plugins.create("trainer", name, dict(settings))
    except (OdqaError, TypeError) as exc:
        raise UsageError(f"{label}: {exc}") from None


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
                select_articles([], articles)  # checks the range's form
            except UsageError as exc:
                raise UsageError(f"{where}.{exc}") from None
        return QuestionSource(_resolve(value["path"], base), articles)
    raise UsageError(f"{where} must be a path or a table {{path = ..., articles = ...}}, got {value!r}")


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: [{key}] must be a table, got {value!r}")
    return value


@dataclass(frozen=True)
class _Fixed:
    """What a grid file fixes (as read so far), against which an axis or a variant value is checked."""

    pipeline: dict[str, Any]
    train: dict[str, dict[str, Any]]
    train_data: dict[str, dict[str, Any]]
    axes: dict[str, list[Any]]
    base: Path

    def trainer_axes_at_first(self, name: str) -> dict[str, Any]:
        """Trainer ``name``'s settings that are axes, each at its first value (``checkpoint`` is the sweep's)."""
        firsts = {k.split(".", 2)[2]: v[0] for k, v in self.axes.items() if k.startswith(f"train.{name}.")}
        firsts.pop("checkpoint", None)
        return firsts


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
    shards = sweep.get("shards", 1)
    if isinstance(shards, bool) or shards < 1:
        raise UsageError(f"{where}: sweep.shards must be an integer >= 1, got {shards!r}")
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
    if isinstance(pipeline.get("corpus"), str):
        pipeline["corpus"] = _resolve(pipeline["corpus"], base)

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
        if f"{name}.{trainer_class(name).model_option}" in pipeline["options"]:
            raise UsageError(
                f"{where}: pipeline.options.{name}.{trainer_class(name).model_option} is set, but [train.{name}] "
                "trains that model; give one of them"
            )
        train[name] = settings
        train_data[name] = extra

    axes_raw = _table(raw, "axes", where)
    axes: dict[str, list[Any]] = {}
    fixed = _Fixed(pipeline, train, train_data, axes, base)
    for key, values in axes_raw.items():
        label = f'{where}: axes."{key}"'
        if not isinstance(values, list) or not values:
            raise UsageError(f"{label} must be a non-empty list of values, got {values!r}")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            raise UsageError(f"{label} lists a value twice: {values!r}")
        axes[key] = [_check_axis_value(key, v, label, fixed) for v in values]

    for name, settings in train.items():  # the fixed settings with each axis at its first value
        create_trainer(name, {**settings, **fixed.trainer_axes_at_first(name)}, f"{where}: [train.{name}]")
    variants = _read_variants(raw, where, fixed)
    if sweep.get("metric") in GOLD_METRICS and not sweep.get("read_gold"):
        raise UsageError(f"{where}: sweep.metric {sweep['metric']} needs sweep.read_gold = true")
    return Grid(
        path=path,
        output_dir=out,
        cache_dir=cache,
        metric=sweep.get("metric"),
        hit=sweep.get("hit"),
        share_epochs=sweep.get("share_epochs", False),
        plots=sweep.get("plots", True),
        pipeline=pipeline,
        questions=questions,
        train=train,
        train_data=train_data,
        axes=axes,
        variants=variants,
        read_gold=sweep.get("read_gold", False),
        shards=shards,
    )


def _read_variants(raw: Mapping[str, Any], where: str, fixed: _Fixed) -> dict[str, dict[str, Any]]:
    """The ``[variants]`` table, checked: each a table of axis keys (none of them an axis) and their values."""
    variants: dict[str, dict[str, Any]] = {}
    for name, table in _table(raw, "variants", where).items():
        label = f"{where}: variants.{name}"
        if not isinstance(table, dict):
            raise UsageError(f'{label} must be a table of settings ({{"train.extractive.cloze" = 1}}), got {table!r}')
        checked: dict[str, Any] = {}
        for key, value in table.items():
            if key in fixed.axes:
                raise UsageError(f'{label}: "{key}" is also an axis; give it in one place')
            checked[key] = _check_axis_value(key, value, f'{label}."{key}"', fixed, replaces_fixed=True)
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


def _check_axis_value(key: str, value: Any, label: str, fixed: _Fixed, *, replaces_fixed: bool = False) -> Any:
    """The axis value, checked as far as it can be alone (its key exists, its type, the trainer accepts it).

    ``replaces_fixed`` (a variant's value): the key may also be fixed, and the value replaces the fixed one.
    """
    section, _, rest = key.partition(".")
    shapes = "pipeline.<setting>, pipeline.options.<stage>.<option> or train.<component>.<setting>"
    if section == "pipeline" and rest.startswith("options."):
        stage, _, option = rest[len("options.") :].partition(".")
        if not stage or not option:
            raise UsageError(f"{label}: name the stage and the option (pipeline.options.<stage>.<option>)")
        if f"{stage}.{option}" in fixed.pipeline["options"] and not replaces_fixed:
            raise UsageError(f"{label}: also fixed in [pipeline.options.{stage}]; give it in one place")
        if stage in fixed.train and option == trainer_class(stage).model_option:
            raise UsageError(f"{label}: [train.{stage}] trains that model; vary its training settings instead")
        return value
    if section == "pipeline":
        if rest not in PIPELINE_KEYS or rest in FIXED_ONLY:
            valid = [k for k in PIPELINE_KEYS if k not in FIXED_ONLY]
            raise UsageError(f"{label}: unknown pipeline setting {rest!r}; axes may vary {', '.join(valid)}")
        if rest in fixed.pipeline and rest != "options" and not replaces_fixed:
            raise UsageError(f"{label}: also fixed in [pipeline]; give it in one place")
        checked = check_pipeline_settings({rest: value}, label)[rest]
        if rest == "corpus":
            checked = _resolve(checked, fixed.base)
        return checked
    if section == "train":
        name, _, setting = rest.partition(".")
        if name not in fixed.train:
            raise UsageError(f"{label}: there is no [train.{name}] table; add one to train {name!r}")
        if not setting:
            raise UsageError(f"{label}: name the setting (train.{name}.<setting>)")
        if setting == "checkpoint":
            return _check_checkpoint(value, label)
        if setting in TRAIN_KEYS:
            raise UsageError(f"{label}: train.{name}.{setting} cannot vary; run a sweep per value")
        if setting in fixed.train_data[name] or (setting in fixed.train[name] and not replaces_fixed):
            raise UsageError(f"{label}: also fixed in [train.{name}]; give it in one place")
        if setting not in trainer_class(name).option_names():
            valid = ", ".join([*trainer_class(name).option_names(), "checkpoint"])
            raise UsageError(f"{label}: unknown setting {setting!r} of trainer {name!r}; valid: {valid}")
        others = fixed.trainer_axes_at_first(name)
        create_trainer(name, {**fixed.train[name], **others, setting: value}, f"{label} = {option_text(value)}")
        return value
    raise UsageError(f"{label}: an axis key is {shapes}")
