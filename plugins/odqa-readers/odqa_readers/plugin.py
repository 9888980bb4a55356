"""The ``readers`` odqa plugin: registers the ``extractive`` and ``generative`` readers, their trainers and
``odqa train reader``.

Everything is registered by reference (see :mod:`odqa_core.hookspecs`): loading the plugin imports only this module
and :mod:`odqa_readers.demo`; numpy, torch and transformers load when a reader, a trainer or the command is used.
"""

from __future__ import annotations

from pathlib import Path

import odqa_core
from odqa_core.plugins import lazy_command
from odqa_readers.demo import provide_demo_models


def sample_model(reader: str) -> Path:
    """``model=sample``: the bundled sample's demo reader (:func:`odqa_readers.sample.sample_model`), imported here
    on first use. The base class only holds the hook; the demo models come from odqa_readers.sample, which trains
    them with odqa_readers.training, which builds on the base class."""
    from odqa_readers.sample import sample_model

    return sample_model(reader)


provide_demo_models(sample_model)


@odqa_core.hookimpl
def register_readers(register):
    register("odqa_readers.extractive:ExtractiveReader", name="extractive")
    register("odqa_readers.generative:GenerativeReader", name="generative")


@odqa_core.hookimpl
def register_trainers(register):
    register("odqa_readers.trainers:ExtractiveTrainer", name="extractive")
    register("odqa_readers.trainers:GenerativeTrainer", name="generative")


@odqa_core.hookimpl
def register_commands(cli):
    summary = (
        "Train a reader: span (extractive) or seq2seq (generative), EM/F1 on the dev questions after every epoch."
    )
    cli.commands["train"].add_command(lazy_command("odqa_readers.cli:train_reader", name="reader", help=summary))
