"""Progress bars (tqdm) with one switch for the whole project.

``ODQA_PROGRESS=0`` hides every bar, ``ODQA_PROGRESS=1`` forces them on; unset, bars show only on a terminal.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def progress_disabled() -> bool | None:
    """tqdm's ``disable`` argument for the current environment."""
    value = os.environ.get("ODQA_PROGRESS", "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return True
    if value in ("1", "true", "yes", "on"):
        return False
    return None


def progress(total: int | None = None, desc: str = "", unit: str = "it", **kwargs: Any) -> Any:
    """A tqdm bar honouring ``ODQA_PROGRESS``; use as a context manager and call ``update(n)``."""
    from tqdm.auto import tqdm

    # ``disable=True`` from the caller (a bar nested in another) wins; otherwise the environment decides.
    disable = kwargs.pop("disable", False) or progress_disabled()
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)


def stderr_echo(message: str) -> None:
    """Print a status line to stderr, flushed (training and sweep logs; stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)
