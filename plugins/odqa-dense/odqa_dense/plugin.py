"""The ``dense`` odqa plugin: registers the ``dpr`` retriever, its ``dpr`` trainer and ``odqa train dpr``.

Everything is registered by reference (see :mod:`odqa_core.hookspecs`): loading the plugin imports only this module;
numpy, torch, transformers and faiss load when the retriever, the trainer or the command is used.
"""

from __future__ import annotations

import odqa_core
from odqa_core.plugins import lazy_command


@odqa_core.hookimpl
def register_retrievers(register):
    register("odqa_dense.retriever:DPRRetriever", name="dpr")


@odqa_core.hookimpl
def register_trainers(register):
    register("odqa_dense.trainers:DPRTrainer", name="dpr")


@odqa_core.hookimpl
def register_commands(cli):
    summary = (
        "Train a DPR bi-encoder: in-batch + hard negatives, top-k evaluation after every epoch, best epoch kept."
    )
    cli.commands["train"].add_command(lazy_command("odqa_dense.cli:train_dpr", name="dpr", help=summary))
