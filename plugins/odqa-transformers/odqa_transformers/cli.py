"""Command-line options and steps the ``odqa train`` commands of the transformer plugins share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click


def one_model_options(func):
    """``--fold`` and ``--keep-epochs``, shared by ``odqa train dpr`` and ``odqa train reader``."""
    func = click.option(
        "--keep-epochs",
        is_flag=True,
        help="Also keep every epoch's checkpoint as OUTPUT/epoch-N/ (best/ as always).",
    )(func)
    return click.option(
        "--fold",
        type=int,
        default=None,
        help="With --folds K: train only fold N (1-K), directly into --output (its held-out questions select the "
        "epoch; --dev-questions are reported as test).",
    )(func)


def run_options(func):
    """``--seed``, ``--device`` and ``--precision`` of the training loop, shared by the ``odqa train`` commands."""
    func = click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
        default="auto",
        show_default=True,
        help="auto: bf16 on a GPU that has it, fp32 on CPU.",
    )(func)
    func = click.option(
        "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True
    )(func)
    return click.option("--seed", type=int, default=42, show_default=True)(func)


def training_data(
    corpus: str | None, questions: str | None, dev_questions: str | None, split_words: int | None, stride: int | None
) -> tuple[list[Any], list[Any], list[Any] | None]:
    """``(documents, training questions, dev questions)`` of an ``odqa train`` command's files: the bundled
    sample's corpus and training set where none is given; no dev questions (None) where none are given."""
    from odqa_core import data

    documents = data.load_corpus(corpus or data.sample_corpus_path(), split_words=split_words, stride=stride)
    train_questions = data.load_questions(questions or data.sample_train_questions_path())
    dev = data.load_questions(dev_questions) if dev_questions else None
    return documents, train_questions, dev


def echo_best(report: Mapping[str, Any], output: str, select: str, metric_format: str) -> None:
    """Print a training's best epoch: a JSON line on stdout, a sentence on stderr (metric in ``metric_format``)."""
    import json

    best = report["best"]
    where = f"fold {best['fold']}, " if "fold" in best else ""
    click.echo(json.dumps({"output": output, "best": best, "select": select}, ensure_ascii=False))
    metric = format(best["metric"], metric_format)
    click.echo(f"best: {where}epoch {best['epoch']}, dev {select} = {metric} → {output}/best", err=True)
