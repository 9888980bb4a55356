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

from odqa_core.errors import UsageError

__all__ = [
    "boolean",
    "check_finite_options",
    "choice",
    "integer",
    "number",
    "parse_ks",
    "parse_options",
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
