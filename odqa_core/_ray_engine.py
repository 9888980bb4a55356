"""The Ray engine of sharded indexes (:mod:`odqa_core.shards`): shard builds as Ray tasks, one actor per shard for
search. Ray is the optional ``odqa[ray]`` extra, imported only here and only when ``--engine ray`` is asked for.

``ray_address`` names an existing cluster (``ray start --head`` prints it); without one, ``ray.init()`` starts a
local one. An address that does not answer is refused at once with a one-line error naming it (Ray itself would
keep retrying for a minute or more).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from odqa_core.errors import OdqaError, UsageError

#: Seconds to wait for a cluster's address to accept a connection before calling it unreachable.
CONNECT_TIMEOUT = 5.0


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'odqa[ray]'") from None
    return ray


def _check_reachable(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) that accepts a TCP connection, else a one-line UsageError."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.1:6379, or ray://HOST:10001)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise UsageError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def init(address: str | None) -> Any:
    """Ray, connected: to ``address``, or to a local instance started now (kept for the rest of the process)."""
    ray = _ray()
    if address is not None and address != "auto":
        _check_reachable(address)  # also when connected already: the user named this cluster
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot start or reach {where}: {first}") from None
    return ray


def gather(refs: Sequence[Any]) -> list[Any]:
    """The results of Ray tasks or actor calls, in order; a failure is raised as the odqa error it was (bad input
    found by a worker) or as one line naming what failed (a worker that died)."""
    ray = _ray()
    try:
        return ray.get(list(refs))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, OdqaError):
            raise cause from None
        raise OdqaError(f"a Ray task failed: {str(exc).strip().splitlines()[-1]}") from None
    except (ray.exceptions.RayError, ConnectionError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OdqaError(f"a Ray worker was lost: {message}") from None


def task_runner(address: str | None) -> Callable[[Any, list[tuple[Any, ...]], int], list[Any]]:
    """A ``run(function, calls, workers)`` of :func:`odqa_core.shards.build_sharded_index` that runs each call as a
    Ray task (one CPU each; Ray schedules them on the cluster's workers)."""
    ray = init(address)

    def run(function: Any, calls: list[tuple[Any, ...]], workers: int) -> list[Any]:
        remote = ray.remote(num_cpus=1, max_retries=0)(function)
        return gather([remote.remote(*call) for call in calls])

    return run


class _ShardServer:
    """A Ray actor holding one shard's retriever, loaded once."""

    def __init__(self, name: str, path: str, options: Mapping[str, Any] | None, answer: Callable[..., Any]) -> None:
        from odqa_core import plugins

        #: ``answer(retriever, method, *args)``: the shard's answer as plain arrays (odqa_core.shards decides)
        self.answer = answer
        self.retriever = plugins.get_component_class("retriever", name).load(path, options)
        self.retriever.warm_up()

    def n_documents(self) -> int:
        return len(self.retriever.documents)

    def call(self, method: str, *args: Any) -> Any:
        return self.answer(self.retriever, method, *args)


class RayShard:
    """The driver's handle on a shard served by a :class:`_ShardServer` actor; its document table is read here."""

    def __init__(self, cls: type, actor: Any, path: Path) -> None:
        self.cls = cls
        self.actor = actor
        self.prepares = hasattr(cls, "prepare_queries")
        self._path = path
        self._documents: list[Any] | None = None

    @property
    def documents(self) -> list[Any]:
        if self._documents is None:
            from odqa_core.storage import open_store

            self._documents = open_store(self._path, kind="retriever", verify=False).load_documents()
        return self._documents

    def submit(self, method: str, *args: Any) -> Any:
        return self.actor.call.remote(method, *args)

    def call(self, method: str, *args: Any) -> Any:
        return gather([self.submit(method, *args)])[0]


def shard_actors(
    cls: type,
    dirs: Sequence[Path],
    options: Mapping[str, Any] | None,
    address: str | None,
    answer: Callable[..., Any],
) -> list[RayShard]:
    """One actor per shard, each loading its shard (checked as any load checks it) before this returns."""
    ray = init(address)
    server = ray.remote(num_cpus=0)(_ShardServer)
    actors = [server.remote(cls.name, str(path), dict(options) if options else None, answer) for path in dirs]
    gather([actor.n_documents.remote() for actor in actors])  # a shard that fails to load fails now
    return [RayShard(cls, actor, path) for actor, path in zip(actors, dirs)]
