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
