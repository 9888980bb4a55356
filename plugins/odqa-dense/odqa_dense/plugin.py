"""The ``dense`` odqa plugin: registers the ``dpr`` retriever, its ``dpr`` trainer and ``odqa train dpr``.

Registration imports only numpy and odqa_core; torch, transformers and faiss load when a model or index is used.
"""

from __future__ import annotations

import odqa_core


@odqa_core.hookimpl
def register_retrievers(register):
    from odqa_dense.retriever import DPRRetriever

    register(DPRRetriever)


@odqa_core.hookimpl
def register_trainers(register):
    from odqa_dense.trainers import DPRTrainer

    register(DPRTrainer)


@odqa_core.hookimpl
def register_commands(cli):
    from odqa_dense.cli import train_dpr

    cli.commands["train"].add_command(train_dpr, name="dpr")
