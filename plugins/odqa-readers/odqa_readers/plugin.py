"""The ``readers`` odqa plugin: registers the ``extractive`` and ``generative`` readers, their trainers and
``odqa train reader``.

Registration imports only odqa_core and this package's light modules; torch and transformers load on first use.
"""

from __future__ import annotations

import odqa_core
from odqa_readers.base import provide_demo_models
from odqa_readers.sample import sample_model

# ``model=sample``: the bundled sample's demo readers. The base class only holds the hook; the demo models come from
# odqa_readers.sample, which trains them with odqa_readers.training, which builds on the base class.
provide_demo_models(sample_model)


@odqa_core.hookimpl
def register_readers(register):
    from odqa_readers.extractive import ExtractiveReader
    from odqa_readers.generative import GenerativeReader

    register(ExtractiveReader)
    register(GenerativeReader)


@odqa_core.hookimpl
def register_trainers(register):
    from odqa_readers.trainers import ExtractiveTrainer, GenerativeTrainer

    register(ExtractiveTrainer)
    register(GenerativeTrainer)


@odqa_core.hookimpl
def register_commands(cli):
    from odqa_readers.cli import train_reader

    cli.commands["train"].add_command(train_reader, name="reader")
