"""Progress on long work, with one switch for the whole project.

On a terminal (or in Jupyter), :func:`progress` is a tqdm bar. Without one (stderr is a file, a pipe, a CI log,
``nohup``), a bar would either be hidden or fill the log with carriage returns, and a run of an hour would say
nothing: there it is a :class:`StatusLine` instead, which prints one plain line every :data:`STATUS_INTERVAL`
seconds while the work lasts (``reading: 1,234/5,774 passages, 3m12s elapsed, ~10m left``) and a last line when
work that printed one ends.

Environment:

- ``ODQA_PROGRESS=0`` silences both (no bar, no line); ``ODQA_PROGRESS=1`` forces the tqdm bar even without a
  terminal; unset, the bar on a terminal, status lines otherwise;
- ``ODQA_PROGRESS_INTERVAL`` sets the seconds between status lines (default 30).

Timing: where a run's time goes: its stages, with model training done inside them counted apart.

A pipeline stage may train a model on the way (the bundled sample's demo DPR is trained when the corpus is indexed,
the demo reader when the reader loads its model): code that trains wraps the work in :func:`training`, and a
:class:`StageTimer` moves that time from the stage it happened in to ``train_s``. So ``summary.json`` says how long
indexing, retrieval and reading took by themselves, and how long the training triggered by the run took.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from odqa_core.errors import UsageError

#: Seconds between two status lines when there is no terminal (``ODQA_PROGRESS_INTERVAL`` overrides it).
STATUS_INTERVAL = 30.0


def progress_disabled() -> bool | None:
    """tqdm's ``disable`` argument for the current environment (None: decided by whether stderr is a terminal)."""
    value = os.environ.get("ODQA_PROGRESS", "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return True
    if value in ("1", "true", "yes", "on"):
        return False
    return None


def status_interval() -> float:
    """Seconds between status lines: ``ODQA_PROGRESS_INTERVAL``, else :data:`STATUS_INTERVAL`."""
    raw = os.environ.get("ODQA_PROGRESS_INTERVAL", "").strip()
    if not raw:
        return STATUS_INTERVAL
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"ODQA_PROGRESS_INTERVAL must be a positive number of seconds, got {raw!r}")
    return seconds


def _shows_bars() -> bool:
    """Whether a bar can be drawn: stderr is a terminal, or this is a Jupyter kernel (tqdm.auto's widget)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def progress(total: int | None = None, desc: str = "", unit: str = "it", **kwargs: Any) -> Any:
    """A progress display honouring ``ODQA_PROGRESS`` (see the module docstring); use as a context manager and call
    ``update(n)`` (and ``set_postfix`` / ``set_postfix_str`` for counts beside the main one).

    A tqdm bar on a terminal, a :class:`StatusLine` without one; ``disable=True`` from the caller (a bar nested in
    another) silences both.
    """
    from tqdm.auto import tqdm

    forced = progress_disabled()
    if kwargs.pop("disable", False) or forced is True:
        return tqdm(total=total, desc=desc, unit=unit, disable=True, **kwargs)
    if forced is None and not _shows_bars():
        return StatusLine(total, desc, unit, interval=status_interval(), initial=kwargs.get("initial", 0))
    return tqdm(total=total, desc=desc, unit=unit, disable=False, dynamic_ncols=True, **kwargs)


def stderr_echo(message: str) -> None:
    """Print a status line to stderr, flushed (training and sweep logs; stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def format_duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``2h05m``: a duration as a status line shows it."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _count(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _plural(unit: str) -> str:
    """``passage`` → ``passages``, ``batch`` → ``batches``, ``query`` → ``queries``; abbreviations (``q``, ``it``)
    stay as they are."""
    if len(unit) <= 2 or unit.endswith("s"):
        return unit
    if unit.endswith(("x", "ch", "sh")):
        return unit + "es"
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "i", "o", "u"):
        return unit[:-1] + "ies"
    return unit + "s"


class StatusLine:
    """A progress counter without a bar: one line on stderr (description, count of total, the postfix, time
    elapsed and an estimate of the time left) once ``interval`` seconds have passed since the start or the last
    line — printed by :meth:`update` when the work moves on, else by a background thread, so a long step is never
    silent; on :meth:`close`, work that printed a line prints a last one. Work shorter than ``interval`` prints
    nothing.

    The subset of tqdm's interface that odqa uses: ``n``, ``total``, ``update``, ``set_postfix``,
    ``set_postfix_str``, ``set_description``, ``refresh``, ``close`` and the context manager. The thread holds only a
    weak reference, so a counter dropped without :meth:`close` stops printing once it is collected.
    """

    def __init__(
        self,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        *,
        interval: float = STATUS_INTERVAL,
        initial: float = 0,
        clock: Any = time.monotonic,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.postfix = ""
        self.interval = interval
        self._clock = clock
        self._start = self._last = clock()
        self._lines = 0
        self._closed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # The thread wakes at most 20 times a second: a tiny interval (tests) is kept by update() instead.
        self._thread = threading.Thread(
            target=_print_periodically, args=(weakref.ref(self), self._stop, max(interval, 0.05)), daemon=True
        )
        weakref.finalize(self, self._stop.set)
        self._thread.start()

    # --- tqdm's interface ---------------------------------------------------------------------------------------

    def update(self, n: float = 1) -> None:
        self.n += n
        self.emit_if_due()

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """Nothing to redraw: the next line shows the current state."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        if self._lines:  # a log that said the work was under way also says that it ended
            self._print(self.line(final=True))

    def __enter__(self) -> StatusLine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the line -----------------------------------------------------------------------------------------------

    def line(self, final: bool = False) -> str:
        """What the next status line says (``final``: the last one, when the work ended)."""
        elapsed = self._clock() - self._start
        count = _count(self.n) + (f"/{_count(self.total)}" if self.total is not None else "")
        parts = [f"{self.desc or 'working'}: {count} {_plural(self.unit)}"]
        if self.postfix:
            parts.append(self.postfix)
        if final:
            parts.append(f"done in {format_duration(elapsed)}")
        else:
            parts.append(f"{format_duration(elapsed)} elapsed")
            if self.total and 0 < self.n < self.total and elapsed > 0:
                parts.append(f"~{format_duration(elapsed * (self.total - self.n) / self.n)} left")
        return ", ".join(parts)

    def emit_if_due(self) -> None:
        """Print the current status line if ``interval`` seconds have passed since the last one (or the start)."""
        if self._clock() - self._last >= self.interval and not self._closed:
            self._print(self.line())

    def _print(self, text: str) -> None:
        with self._lock:
            self._last = self._clock()
            self._lines += 1
            print(text, file=sys.stderr, flush=True)


def _print_periodically(ref: weakref.ref[StatusLine], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        status = ref()
        if status is None:
            return
        try:
            status.emit_if_due()
        except (OSError, ValueError):  # stderr closed or gone: the work goes on without its log
            return
        del status


# --- timing ---------------------------------------------------------------------------------------------------------

_lock = threading.Lock()
_trained_seconds = 0.0
_depth = 0


@contextlib.contextmanager
def training() -> Iterator[None]:
    """Count the block's wall time as model training (a block inside another counts once, in the outer one)."""
    global _depth, _trained_seconds
    with _lock:
        _depth += 1
        outer = _depth == 1
    start = time.perf_counter()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if outer:
                _trained_seconds += time.perf_counter() - start


def training_seconds() -> float:
    """Seconds spent in :func:`training` blocks by this process so far (finished blocks only)."""
    return _trained_seconds


class StageTimer:
    """Seconds per stage (``index_s``, ``retrieve_s``, ``read_s``, ...), a stage entered twice adding up, and
    ``train_s``: the training done inside the stages (:func:`training`), not counted in them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"train_s": 0.0}

    @contextlib.contextmanager
    def stage(self, key: str) -> Iterator[None]:
        start, trained = time.perf_counter(), training_seconds()
        try:
            yield
        finally:
            trained = training_seconds() - trained
            elapsed = time.perf_counter() - start
            self.seconds[key] = self.seconds.get(key, 0.0) + max(elapsed - trained, 0.0)
            self.seconds["train_s"] += trained

    def as_dict(self, digits: int = 3) -> dict[str, float]:
        return {key: round(value, digits) for key, value in self.seconds.items()}
