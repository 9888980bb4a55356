"""The ``serve`` odqa plugin: adds the command ``odqa serve`` (no components).

The command is added by reference (:func:`odqa_core.plugins.lazy_command`): its module, and with it FastAPI,
uvicorn and the pipeline's libraries, is imported when ``odqa serve`` runs or shows its own help, not for
``odqa --help`` or ``odqa plugins``.
"""

from __future__ import annotations

import odqa_core
from odqa_core.plugins import lazy_command


@odqa_core.hookimpl
def register_commands(cli):
    summary = "Serve a pipeline over HTTP: a JSON API with micro-batching and a question-answering web page."
    cli.add_command(lazy_command("odqa_serve.cli:serve", name="serve", help=summary))
