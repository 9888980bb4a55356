"""Option values from the command line (``-o key=value``), pipeline files and grids, and the checks every component
runs on them, with one wording: ``"<owner>: option 'name' must be <what>, got <value>"``.

A component validates its options in its constructor or ``from_options`` with these, so that a wrong value is one
:class:`~odqa_core.errors.UsageError` line naming the component and the option::

    from odqa_core import options

    class MyRetriever(Retriever):
        def __init__(self, k1=1.2, pooling="mean"):
            self.k1 = options.number(self.name, "k1", k1, minimum=0)
            self.pooling = options.choice(self.name, "pooling", pooling, ("mean", "cls"))
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import click

from odqa_core.errors import UsageError

__all__ = [
    "CORPUS_OPTIONS",
    "PIPELINE_OPTIONS",
    "SETTING_PARAMS",
    "INDEX_DIRS_OPTION",
    "STAGE_OPTION",
    "boolean",
    "check_finite_options",
    "choice",
    "corpus_options",
    "flag_setting",
    "integer",
    "number",
    "parse_ks",
    "parse_options",
    "pipeline_options",
    "positive_int",
    "probability",
]


def _refuse(owner: str, name: str, what: str, value: Any) -> UsageError:
    return UsageError(f"{owner + ': ' if owner else ''}option {name!r} must be {what}, got {value!r}")


def integer(owner: str, name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (a bool is not one) within ``[minimum, maximum]`` where given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(owner, name, "an integer", value)
    if minimum is not None and value < minimum:
        raise _refuse(owner, name, f"an integer >= {minimum}", value)
    if maximum is not None and value > maximum:
        raise _refuse(owner, name, f"an integer <= {maximum}", value)
    return value


def positive_int(owner: str, name: str, value: Any) -> int:
    """``value`` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _refuse(owner, name, "a positive integer", value)
    return value


def number(owner: str, name: str, value: Any, minimum: float | None = None, maximum: float | None = None) -> float:
    """``value`` as a finite float (ints accepted, bools not) within ``[minimum, maximum]`` where given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _refuse(owner, name, "a finite number", value)
    if minimum is not None and value < minimum:
        raise _refuse(owner, name, f"a number >= {minimum:g}", value)
    if maximum is not None and value > maximum:
        raise _refuse(owner, name, f"a number <= {maximum:g}", value)
    return float(value)


def probability(owner: str, name: str, value: Any) -> float:
    """``value`` as a float in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise _refuse(owner, name, "a number from 0 to 1", value)
    return float(value)


def choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise _refuse(owner, name, f"one of {', '.join(choices)}", value)
    return value


def boolean(owner: str, name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0/1 or a string)."""
    if not isinstance(value, bool):
        raise _refuse(owner, name, "true or false", value)
    return value


def check_finite_options(options: Mapping[str, Any], where: str = "") -> None:
    """Refuse a NaN or infinite number in option values (nested lists and tables included), naming the option.

    JSON (``-o k1=Infinity``) and TOML (``k1 = inf``) both spell them, and no option means them: they only
    turn every score into NaN downstream.
    """

    def bad(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return value
        items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
        return next((found for found in map(bad, items) if found is not None), None)

    for key, value in options.items():
        found = bad(value)
        if found is not None:
            raise UsageError(
                f"{where + ': ' if where else ''}option {key!r} must be a finite number, got "
                f"{json.dumps(found)}{'' if found is value else f' in {json.dumps(value)}'}"
            )


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["k1=1.2", "analyzer=kiwi", "tags=[\\"NNG\\"]"]`` → dict; values are JSON when they parse as JSON.

    A non-finite number (``Infinity``, ``-Infinity``, ``NaN``, ``1e999``) is refused, anywhere in the value.
    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"option {pair!r} is not of the form key=value")
        try:
            parsed[key.strip()] = json.loads(value)
        except ValueError:
            parsed[key.strip()] = value
    check_finite_options(parsed)
    return parsed


def parse_ks(value: str, flag: str = "--k") -> tuple[int, ...]:
    """``"1,5,20"`` → ``(1, 5, 20)``: evaluation cut-offs given on the command line."""
    try:
        ks = tuple(int(k) for k in value.split(",") if k.strip())
    except ValueError:
        raise UsageError(f"{flag} expects comma-separated integers, got {value!r}") from None
    if not ks or min(ks) < 1:
        raise UsageError(f"{flag} expects positive integers, got {value!r}")
    return ks


# --- the pipeline options of the command line -----------------------------------------------------------------------
# 'odqa run' and 'odqa ask' take them, and so do plugin commands that build a pipeline the same way (odqa-serve's
# 'odqa serve'): one definition, so that a pipeline is described alike everywhere. Turning their values into pipeline
# settings (a --config file's, overridden by the flags given) is odqa_core.spec.command_line_settings.

#: How a corpus is cut into passages ('odqa index', the pipeline options).
CORPUS_OPTIONS = [
    click.option("--split-words", type=int, default=None, help="Split documents into passages of N words."),
    click.option("--stride", type=int, default=None, help="Words between passage starts (default: N, no overlap)."),
    click.option(
        "--dedupe/--no-dedupe", default=True, show_default=True, help="Merge documents with identical text."
    ),
]

#: ``--index-dir`` of the commands that answer with stored indexes instead of indexing the corpus at start
#: (``odqa ask``, ``odqa serve``): repeatable, one per retriever of a fuser.
INDEX_DIRS_OPTION = click.option(
    "--index-dir",
    "index_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Search this stored index (from 'odqa index', or an 'odqa run' output's index/<retriever>) instead of "
    "indexing the corpus first; repeat it for a fuser.",
)

#: ``-o [STAGE.]KEY=VALUE``: a component option (parsed by :func:`parse_options`).
STAGE_OPTION = click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="[STAGE.]KEY=VALUE",
    help="Component option (JSON value); prefix with a stage name (cross.lam=1.5, dpr.device=cuda) when there are "
    "several. Unprefixed options go to the first retriever named.",
)

#: The options that describe a pipeline (and the keys of a --config pipeline file).
PIPELINE_OPTIONS = [
    click.option(
        "--config",
        "config_path",
        default=None,
        type=click.Path(dir_okay=False),
        help="Pipeline file (TOML): the settings below by name; options given on the command line override it.",
    ),
    click.option(
        "--retriever",
        "retriever_names",
        multiple=True,
        help="Retriever name (repeatable). With --fuser, the fuser's own retrievers fill in the rest.",
    ),
    click.option("--fuser", default=None, help="Fuser combining the retrievers: cross, rrf, sequential, ..."),
    click.option("--reader", default=None, help="Reader extracting or generating answers: extractive, generative."),
    click.option(
        "--post", default="", help="Comma-separated postprocessors, applied in order (clean,strip-particles)."
    ),
    click.option("--corpus", default=None, help="Corpus (default: the bundled sample)."),
    click.option(
        "--top-k", type=int, default=100, show_default=True, help="Hits retrieved (and evaluated) per question."
    ),
    click.option(
        "--reader-top-k",
        type=int,
        default=10,
        show_default=True,
        help="Passages the reader reads per question: the best of the --top-k retrieved.",
    ),
    click.option("--n-best", type=int, default=5, show_default=True, help="Answers kept per question."),
    click.option("--batch-size", type=int, default=1024, show_default=True, help="Questions per retrieval call."),
    click.option("--analyzer", default=None, help="Analyzer for the sparse retriever(s)."),
    click.option("--analyzer-option", "analyzer_options", multiple=True, metavar="KEY=VALUE"),
    STAGE_OPTION,
    *CORPUS_OPTIONS,
]

#: Each pipeline-file key and the pipeline option that gives it ('odqa ask' has all but the run's questions,
#: output directory, k's and metric).
SETTING_PARAMS = {
    "retrievers": "retriever_names",
    **{key: key for key in ("fuser", "reader", "post", "corpus", "questions", "output_dir", "top_k", "n_best")},
    **{key: key for key in ("reader_top_k", "ks", "metric", "batch_size", "analyzer", "analyzer_options")},
    **{key: key for key in ("split_words", "stride", "dedupe", "options")},
}


def corpus_options(func):
    """Add :data:`CORPUS_OPTIONS` to a click command."""
    for option in reversed(CORPUS_OPTIONS):
        func = option(func)
    return func


def pipeline_options(func):
    """Add :data:`PIPELINE_OPTIONS` to a click command: the options that describe a pipeline, shared by 'odqa run',
    'odqa ask' and plugin commands such as 'odqa serve' (a --config file's keys)."""
    for option in reversed(PIPELINE_OPTIONS):
        func = option(func)
    return func


def flag_setting(key: str, value: Any) -> Any:
    """A pipeline option's value as the setting ``key`` of a pipeline file."""
    if key in ("options", "analyzer_options"):
        return parse_options(value)
    if key == "post":
        return [name.strip() for name in value.split(",") if name.strip()]
    if key == "ks":
        return list(parse_ks(value))
    return list(value) if key == "retrievers" else value
