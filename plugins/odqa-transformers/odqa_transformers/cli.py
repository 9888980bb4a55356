"""Command-line options the ``odqa train`` commands of the transformer plugins share."""

from __future__ import annotations

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
