"""Errors the CLI turns into one-line messages.

Every error a user can cause with bad input is an ``OdqaError``; anything else reaching the CLI is a bug and keeps
its traceback.
"""

from __future__ import annotations


class OdqaError(Exception):
    """Base class for user-facing errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(OdqaError):
    """A bad option, option value or configuration."""

    exit_code = 2


class UnknownComponentError(UsageError):
    """A component name that no installed plugin registers."""


class PluginError(OdqaError):
    """A plugin that cannot be loaded or registers something invalid (e.g. a duplicate name)."""


class DataError(OdqaError):
    """Input data that is missing, unreadable or malformed."""


class IndexFormatError(OdqaError):
    """A stored index or checkpoint that is missing, of another format version, truncated or corrupted."""


class OutputInUseError(OdqaError):
    """An output (an index, a run directory) that another odqa process is writing at this moment."""
