"""The cells of a grid, planned before anything runs: each cell's pipeline spec, the models it trains, its key.

Every cell's :class:`~odqa_core.spec.PipelineSpec` is made (names, options, settings checked, components created
without loading a model) and every trainer created, so a bad cell fails before the first one runs. A stage whose
model the cell trains is given no model option: the runner gives it the checkpoint it chose
(:meth:`PipelineSpec.with_options <odqa_core.spec.PipelineSpec.with_options>`). A cell's key hashes everything the
cell computes: ``results.csv`` rows are found again by it, so a rerun skips the finished cells.

Epochs. By default every value of an epochs axis is its own training run, exactly what ``odqa train --epochs N``
does. With ``share_epochs = true``, cells that differ only in the epochs setting read the per-epoch checkpoints
of one run of the largest value: one run instead of one per value, but the learning-rate schedule is that of the
longest run (epoch 2 of a 5-epoch run has not decayed its rate as a 2-epoch run would). ``results.csv`` records
the epochs each row's model was trained for.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from odqa_core import data
from odqa_core.errors import OdqaError, UsageError
from odqa_core.spec import PipelineSpec
from odqa_experiments.caches import CorpusCache, digest
from odqa_experiments.grid import (
    VARIANT,
    Grid,
    QuestionSource,
    create_trainer,
    grid_cells,
    option_text,
    trainer_class,
)

#: What a cell's key records as the model option of a stage the cell trains: the model itself is in the key's
#: ``models`` (the training run's key, epoch and checkpoint choice). The words are those the keys always hashed,
#: so that the ``results.csv`` rows of earlier sweeps keep matching their cells.
TRAINED_MODEL_IN_KEY = "(trained in the cell)"


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

    @property
    def model_option(self) -> str:
        """The ``stage.option`` that takes the trained checkpoint (``dpr.model``)."""
        return f"{self.trainer}.{trainer_class(self.trainer).model_option}"


@dataclass
class Cell:
    index: int
    values: dict[str, Any]
    #: The cell's pipeline, checked; the stages of :attr:`models` get their model when the cell runs.
    spec: PipelineSpec
    models: list[ModelPlan] = field(default_factory=list)
    key: str = ""

    def label(self) -> str:
        return cell_label(self.values)

    def run_spec(self, models: Mapping[str, str]) -> PipelineSpec:
        """The spec the cell runs: its own with the checkpoints its trained stages take (``{"dpr.model": path}``,
        checked anew); without any, its own, whose components were created when it was planned."""
        return self.spec.with_options(models) if models else self.spec


def cell_label(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={option_text(v)}" for k, v in values.items()) or "(the fixed pipeline)"


def apply_values(
    grid: Grid, values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, str]]:
    """The fixed settings with a cell's variant and axis values applied: pipeline settings, each trainer's
    settings, each trainer's checkpoint choice."""
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
    option = trainer_class(name).epochs_option
    axis = grid.axes.get(f"train.{name}.{option}") if option else None
    if not grid.share_epochs or not axis:
        return None
    return max(axis)


def _model_plans(
    grid: Grid, spec: PipelineSpec, train: Mapping[str, Mapping[str, Any]], checkpoints: Mapping[str, str]
) -> list[ModelPlan]:
    """The training runs of the trainers whose stage is in the cell's pipeline, each trainer created (checked)."""
    stages = set(spec.stages)
    models = []
    for name, trainer_settings in train.items():
        cls = trainer_class(name)
        if (cls.stage, name) not in stages:
            continue
        extra = grid.train_data[name]
        if spec.data.corpus is not None and "questions" not in extra:
            raise UsageError(
                f"[train.{name}] needs questions = ... (training questions) when the pipeline has a corpus"
            )
        shared = _shared_epochs(grid, name)
        epoch = trainer_settings.get(cls.epochs_option) if cls.epochs_option else None
        run_settings = dict(trainer_settings)
        if shared is not None:
            run_settings[cls.epochs_option] = shared
        create_trainer(name, run_settings, f"[train.{name}]")
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
    return models


def plan_cells(grid: Grid, cache: CorpusCache) -> list[Cell]:
    """Every cell of the grid, checked (components created, no model loaded), with its key."""
    cells = []
    for index, values in enumerate(grid_cells(grid.dimensions) if grid.dimensions else [{}], 1):
        settings, train, checkpoints = apply_values(grid, values)
        try:
            # No corpus: the bundled sample, whose demo defaults the stages get (a trained stage's model too,
            # until the runner gives it the trained one).
            spec = PipelineSpec.from_settings(settings)
            models = _model_plans(grid, spec, train, checkpoints)
        except OdqaError as exc:
            raise UsageError(f"{grid.path}: cell {index} ({cell_label(values)}): {exc}") from None
        cell = Cell(index, values, spec, models)
        corpus = cache.corpus_id(spec.data)
        for plan in models:
            plan.key = digest(
                {
                    "trainer": plan.trainer,
                    "settings": plan.settings,
                    "corpus": corpus,
                    "questions": cache.questions_id(plan.questions, data.sample_train_questions_path),
                    "dev_questions": cache.questions_id(plan.dev_questions, data.sample_questions_path),
                }
            )
        options = {stage: opts.thaw() for stage, opts in spec.options}
        for plan in models:
            stage, _, option = plan.model_option.partition(".")
            options[stage][option] = TRAINED_MODEL_IN_KEY
        cell.key = digest(
            {
                "pipeline": {k: v for k, v in settings.items() if k != "options"},
                "options": options,
                "corpus": corpus,
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
