"""Micro-batching: concurrent questions answered together, with one batched retrieve and one batched read.

Requests put their questions in a bounded queue (:meth:`MicroBatcher.submit`; a full queue refuses them at once,
the server answers 503). One loop takes the questions waiting — as soon as ``max_batch`` are there, or
``max_wait_ms`` after the first arrived — groups them by their settings (``top_k``, ``reader_top_k``, ``n_best``,
read or retrieve only) and hands each group to :meth:`Engine.answer <odqa_serve.engine.Engine.answer>` on a single
worker thread, so that the event loop keeps accepting requests while the pipeline computes, and the pipeline, which
is not thread-safe, computes one batch at a time.

A batch that fails is answered again question by question, so that a question the pipeline cannot answer fails
alone (its request gets a 500) and the others get their answers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from odqa_serve.engine import Engine, Result, Settings


class Overloaded(Exception):
    """The queue is full: the request is refused now (503 with Retry-After) rather than answered late."""


@dataclass
class _Job:
    text: str
    settings: Settings
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the batcher did, for ``/v1/health``: how many engine calls answered how many questions each."""

    batches: int = 0
    questions: int = 0
    largest_batch: int = 0
    batch_sizes: collections.Counter = field(default_factory=collections.Counter)
    failed_batches: int = 0
    shed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "questions": self.questions,
            "largest_batch": self.largest_batch,
            "batch_sizes": {str(size): count for size, count in sorted(self.batch_sizes.items())},
            "failed_batches": self.failed_batches,
            "shed": self.shed,
        }


class MicroBatcher:
    """Gathers questions for up to ``max_wait_ms`` or ``max_batch`` questions; at most ``max_queue`` wait."""

    def __init__(self, max_batch: int, max_wait_ms: float, max_queue: int) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self.stats = BatchStats()
        self.engine: Engine | None = None
        self._queue: collections.deque[_Job] = collections.deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="odqa-serve-pipeline")
        self._stats_lock = threading.Lock()
        self._loop_task: asyncio.Task | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def run_in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on the pipeline's worker thread (building and warming the pipeline too)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def start(self, engine: Engine) -> None:
        self.engine = engine
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="odqa-serve-batcher")

    async def stop(self) -> None:
        """Stop taking batches (the server has drained its requests by then) and let the worker finish."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for job in self._queue:
            if not job.future.done():
                job.future.cancel()
        self._queue.clear()
        self._executor.shutdown(wait=True)

    def submit(self, texts: Sequence[str], settings: Sequence[Settings]) -> list[asyncio.Future]:
        """Queue questions (all or none); their futures resolve to :class:`~odqa_serve.engine.Result`. Raises
        :class:`Overloaded` when they do not fit in the queue."""
        if len(self._queue) + len(texts) > self.max_queue:
            self.stats.shed += 1
            raise Overloaded(f"{len(self._queue)} questions are waiting (--max-queue {self.max_queue})")
        loop = asyncio.get_running_loop()
        futures = []
        for text, setting in zip(texts, settings):
            future = loop.create_future()
            self._queue.append(_Job(text, setting, future))
            futures.append(future)
        self._arrived.set()
        return futures

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.max_wait_s
            while len(self._queue) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
                    break
            jobs = []
            while self._queue and len(jobs) < self.max_batch:
                job = self._queue.popleft()
                if not job.future.done():  # a request that timed out while it waited is not answered
                    jobs.append(job)
            groups: dict[Settings, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.settings, []).append(job)
            for settings, group in groups.items():
                outcomes = await self.run_in_worker(self._answer, [job.text for job in group], settings)
                for job, outcome in zip(group, outcomes):
                    if job.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        job.future.set_exception(outcome)
                    else:
                        job.future.set_result(outcome)

    def _answer(self, texts: list[str], settings: Settings) -> list[Result | BaseException]:
        """One batched answer; if it fails, each question alone (only the failing ones get their error)."""
        assert self.engine is not None
        try:
            results: list[Result | BaseException] = list(self.engine.answer(texts, settings))
        except Exception as exc:
            if len(texts) == 1:
                self._count(1, failed=True)
                return [exc]
            self._count(len(texts), failed=True)
            return [self._answer([text], settings)[0] for text in texts]
        self._count(len(texts))
        return results

    def _count(self, size: int, failed: bool = False) -> None:
        with self._stats_lock:
            stats = self.stats
            if failed:
                stats.failed_batches += 1
                return
            stats.batches += 1
            stats.questions += size
            stats.largest_batch = max(stats.largest_batch, size)
            stats.batch_sizes[size] += 1
