"""Runs the cells of a grid: each trains the models it needs, indexes the corpus with each retriever, retrieves,
reads, evaluates, and adds one row to ``results.csv``.

Resume. ``results.csv`` is rewritten atomically after each cell, and running the same grid again skips every cell
whose key is in the file, so an interrupted sweep continues with the cell it was in (redone from its start,
reusing any model or index already complete). Adding axis values and re-running computes only the new cells.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from odqa_core import data
from odqa_core.errors import UsageError
from odqa_core.interfaces import EpochCheckpoint
from odqa_core.outputs import atomic_write_text
from odqa_core.pipeline import Pipeline, run_pipeline
from odqa_core.progress import progress, stderr_echo
from odqa_core.spec import DataSpec
from odqa_core.types import Document, Question
from odqa_experiments.caches import MODEL_MANIFEST, CorpusCache, IndexCache, ModelCache, utc_now
from odqa_experiments.grid import Grid, create_trainer, option_text, trainer_class
from odqa_experiments.planning import Cell, ModelPlan, plan_cells
from odqa_experiments.reports import SweepReport, best_row, duration, format_value, time_left


class SweepRunner:
    """Runs the cells of a grid that ``results.csv`` does not have yet."""

    def __init__(self, grid: Grid, echo: Callable[[str], None] = stderr_echo) -> None:
        self.grid = grid
        self.echo = echo
        self.data = CorpusCache()
        self.models = ModelCache(grid.cache_dir / "models")
        self.indexes = IndexCache(grid.cache_dir / "indexes", shards=grid.shards)
        self.cells = plan_cells(grid, self.data)
        self.report = SweepReport(grid, self.cells, self.models, echo)

    def metric(self) -> str:
        return self.report.metric

    def best(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        return best_row(rows, self.metric())

    def grid_rows(self) -> list[dict[str, Any]]:
        return self.report.grid_rows()

    def pending(self) -> list[Cell]:
        done = {row["cell"] for row in self.report.rows}
        return [c for c in self.cells if c.key not in done]

    def model_dir(self, plan: ModelPlan) -> Path:
        return self.models.directory(plan.trainer, plan.key)

    def describe(self) -> list[dict[str, Any]]:
        """Each cell: its axis values, whether it is done, and the models it trains or reuses (``--dry-run``)."""
        done = {row["cell"] for row in self.report.rows}
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

    def train(self, plan: ModelPlan, source: DataSpec) -> list[EpochCheckpoint]:
        """The checkpoints of the model ``plan`` names, trained over the corpus of ``source``: from the model
        cache, or trained now."""

        def train_into(output: Path) -> Sequence[EpochCheckpoint]:
            documents = self.data.corpus(source)
            questions = self.data.questions(plan.questions, data.sample_train_questions_path)
            dev = self.data.questions(plan.dev_questions, data.sample_questions_path) if plan.dev_questions else None
            self.echo(
                f"training {plan.trainer} on {len(questions)} questions of {plan.questions.describe()} "
                f"({', '.join(f'{k}={option_text(v)}' for k, v in plan.settings.items()) or 'defaults'}) → "
                f"{self.model_dir(plan)}"
            )
            trainer = create_trainer(plan.trainer, plan.settings, f"[train.{plan.trainer}]")
            return trainer.train(documents, questions, output, dev_questions=dev)

        record = {
            "settings": plan.settings,
            "questions": plan.questions.to_json(),
            "dev_questions": plan.dev_questions.to_json() if plan.dev_questions else None,
        }
        return self.models.checkpoints(plan.trainer, plan.key, train_into, record)

    @staticmethod
    def choose(plan: ModelPlan, checkpoints: Sequence[EpochCheckpoint]) -> EpochCheckpoint:
        epoch = plan.epoch if plan.epoch is not None else checkpoints[-1].epoch
        upto = [c for c in checkpoints if c.epoch <= epoch]
        if not upto or upto[-1].epoch != epoch:
            raise UsageError(f"the {plan.trainer} run has no checkpoint of epoch {epoch}")
        if plan.checkpoint == "last":
            return upto[-1]
        return max(upto, key=lambda c: c.dev_metric)  # the first best, as the trainers' own best/

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        started = time.perf_counter()
        source = cell.spec.data
        row: dict[str, Any] = {"cell": cell.key, **{k: option_text(v) for k, v in cell.values.items()}}
        train_s = 0.0
        trained = 0
        models: dict[str, str] = {}  # stage.option → the checkpoint chosen
        for plan in cell.models:
            t0 = time.perf_counter()
            trained += not self.models.is_trained(plan.trainer, plan.key)
            chosen = self.choose(plan, self.train(plan, source))
            train_s += time.perf_counter() - t0
            models[plan.model_option] = str(chosen.path)
            epochs_option = trainer_class(plan.trainer).epochs_option
            if epochs_option:
                row[f"{plan.trainer}.trained_epochs"] = plan.settings.get(epochs_option, "")
            row[f"{plan.trainer}.epoch"] = chosen.epoch
            row[f"{plan.trainer}.dev_metric"] = round(chosen.dev_metric, 6)
        spec = cell.run_spec(models)
        pipeline = Pipeline.from_spec(spec)
        if pipeline.reader is not None:
            pipeline.reader.warm_up()
        documents = self.data.corpus(source)
        questions = self.data.questions(self.grid.questions, data.sample_questions_path)
        t0 = time.perf_counter()
        self.indexes.index(pipeline, self.data.corpus_id(source), documents)
        index_s = time.perf_counter() - t0
        cell_dir = self.grid.output_dir / "cells" / cell.key
        summary = run_pipeline(pipeline, documents, questions, cell_dir, save_indexes=False, index=False)
        atomic_write_text(
            cell_dir / "cell.json",
            json.dumps(
                {"cell": cell.index, "values": cell.values, "settings": spec.to_settings()},
                ensure_ascii=False,
                indent=1,
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
            row.update(self.read_gold(pipeline, documents, questions, cell_dir))
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
                "finished": utc_now(),
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
        qa = evaluate_predictions(predictions, questions, pipeline.spec.metric)
        text = json.dumps(predictions, ensure_ascii=False, indent=1)
        atomic_write_text(cell_dir / "gold_predictions.json", text)
        return {
            "gold_exact_match": "" if qa.exact_match is None else round(qa.exact_match, 4),
            "gold_f1": "" if qa.f1 is None else round(qa.f1, 4),
            "gold_read_s": round(time.perf_counter() - t0, 2),
        }

    def run(self) -> list[dict[str, Any]]:
        """Run the pending cells, writing the outputs after each; returns the rows of this grid's cells."""
        self.grid.output_dir.mkdir(parents=True, exist_ok=True)
        pending = self.pending()
        total = len(self.cells)
        done = total - len(pending)
        if done:
            self.echo(f"{done} of {total} cells already in {self.report.path}; running the other {len(pending)}")
        if self.report.relabelled:
            self.report.save_rows()
        evaluating: list[float] = []  # seconds per cell without its training
        training: list[float] = []  # seconds per model trained
        with progress(total, "sweep", "cell", initial=done) as bar:
            for i, cell in enumerate(pending):
                row = self.run_cell(cell)
                self.report.add(row)
                evaluating.append(float(row["cell_s"]) - float(row["train_s"]))
                if row["trained"]:
                    training.append(float(row["train_s"]) / row["trained"])
                done += 1
                bar.update(1)
                eta = ""
                if done < total:
                    eta = f"; about {duration(time_left(pending[i + 1 :], evaluating, training, self.models))} left"
                metric = self.metric()
                self.echo(
                    f"[{done}/{total}] {cell.label()} → {metric} {format_value(row.get(metric))} in "
                    f"{row['cell_s']:.1f} s (train {row['train_s']:.1f}, index {row['index_s']:.1f}, retrieve "
                    f"{row['retrieve_s']:.1f}"
                    + (f", read {row['read_s']:.1f}" if row["read_s"] != "" else "")
                    + f"){eta}"
                )
        if not pending:
            self.report.write()
        return self.grid_rows()
