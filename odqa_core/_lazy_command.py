"""A click command that imports its module only when it is used (made by :func:`odqa_core.plugins.lazy_command`).

A plugin's commands are added to ``odqa`` at every start, ``odqa --help`` included; a command module that imports
numpy or torch at the top would slow every one of them. The :class:`LazyCommand` holds the command's name and the
first paragraph of its help (what a group's command list shows), and hands everything else to the real command,
imported on first need: ``odqa <command> ...`` and ``odqa <command> --help`` import it, ``odqa --help`` does not.
It is click's "lazy subcommands" pattern, with the short help known in advance so that listing costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from odqa_core.errors import PluginError


class LazyCommand(click.Command):
    """Stands for the click command ``reference`` (``"package.module:command"``) until it is needed."""

    def __init__(self, reference: str, *, name: str, help: str) -> None:
        super().__init__(name=name, help=help)
        self.reference = reference
        self._command: click.Command | None = None

    def load(self) -> click.Command:
        """The real command, imported once; a reference that cannot be imported, or that names something other than
        a click command, is a :class:`PluginError` (the CLI prints it as one ``Error:`` line)."""
        if self._command is None:
            module_name, _, path = self.reference.partition(":")
            try:
                command: Any = importlib.import_module(module_name)
                for attribute in path.split("."):
                    command = getattr(command, attribute)
            except (Exception, SystemExit) as exc:
                detail = " ".join(f"{type(exc).__name__}: {exc}".split())
                raise PluginError(f"command {self.name!r} ({self.reference}) cannot be imported: {detail}") from None
            if not isinstance(command, click.Command):
                raise PluginError(
                    f"command {self.name!r}: {self.reference} is {type(command).__name__!s}, not a click command"
                )
            self._command = command
        return self._command

    # Parsing, invoking and the command's own help go to the real command: make_context builds the real command's
    # context (so ctx.command is the real one and a group invokes it), the rest serve callers that ask directly.
    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        return self.load().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self.load().invoke(ctx)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.load().get_params(ctx)

    def get_usage(self, ctx: click.Context) -> str:
        return self.load().get_usage(ctx)

    def get_help(self, ctx: click.Context) -> str:
        return self.load().get_help(ctx)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.load().format_help(ctx, formatter)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return self.load().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        return self.load().shell_complete(ctx, incomplete)

    def to_info_dict(self, ctx: click.Context) -> dict[str, Any]:
        return self.load().to_info_dict(ctx)
