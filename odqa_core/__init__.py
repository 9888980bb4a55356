"""odqa: open-domain question answering with pluggable retrievers, fusers, readers and postprocessors."""

from odqa_core.errors import (
    DataError,
    IndexFormatError,
    OdqaError,
    OutputInUseError,
    PluginError,
    UnknownComponentError,
    UsageError,
)
from odqa_core.hookspecs import hookimpl
from odqa_core.interfaces import (
    Analyzer,
    Component,
    EpochCheckpoint,
    Fuser,
    Postprocessor,
    Reader,
    Retriever,
    Trainer,
)
from odqa_core.types import Document, Prediction, Question, RankedResults

__version__ = "0.1.0"

#: The modules a plugin may import (``odqa_core.<name>``): the stable API, documented in docs/plugins.md. Every other
#: module of the package starts with an underscore (``_cli``, ``_runs``, ``_answers``) and may change at any time.
PUBLIC_MODULES: tuple[str, ...] = (
    "data",
    "errors",
    "evaluation",
    "hookspecs",
    "interfaces",
    "options",
    "outputs",
    "pipeline",
    "plugins",
    "progress",
    "qa_metrics",
    "shards",
    "spec",
    "storage",
    "testing",
    "types",
)

__all__ = [
    "Analyzer",
    "Component",
    "DataError",
    "Document",
    "EpochCheckpoint",
    "Fuser",
    "IndexFormatError",
    "OdqaError",
    "OutputInUseError",
    "PUBLIC_MODULES",
    "PluginError",
    "Postprocessor",
    "Prediction",
    "Question",
    "RankedResults",
    "Reader",
    "Retriever",
    "Trainer",
    "UnknownComponentError",
    "UsageError",
    "__version__",
    "hookimpl",
]
