"""The Ray engine of sharded indexes (:mod:`odqa_core.shards`): shard builds on Ray actors that keep each shard
from its map step to its store, one actor per shard for search. Ray is the optional ``odqa[ray]`` extra, imported
only here and only when ``--engine ray`` is asked for.

``ray_address`` names an existing cluster (``ray start --head`` prints it); without one, ``ray.init()`` starts a
local one. An address that does not answer is refused at once with a one-line error naming it (Ray itself would
keep retrying for a minute or more).
"""

from __future__ import annotations

import socket
import time
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


def task_resources(retriever: Any, cluster_resources: Mapping[str, float]) -> dict[str, float]:
    """What one shard build asks Ray for: the retriever's ``ray_resources(cluster_resources)`` where it has that
    hook (a bi-encoder asks for a whole GPU where the cluster has GPUs), else one CPU."""
    hook = getattr(retriever, "ray_resources", None)
    return dict(hook(cluster_resources)) if hook is not None else {"num_cpus": 1}


def cluster_cpus(ray: Any) -> int:
    """The CPUs of the connected cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class ShardBuilders:
    """The Ray side of :func:`odqa_core.shards.build_sharded_index`: ``workers`` actors (default: one per CPU of the
    cluster; never more than the shards or the cluster's CPUs, since each holds one CPU for the whole build and one
    that cannot be placed would wait for ever), actor ``j`` owning the shards ``i % workers == j`` from their map step
    to their store. A shard's documents are sent once, with its map step, and analysed once (the actor keeps the
    analysis for the index step); the merged statistics are put in the object store once for every actor."""

    def __init__(
        self,
        builder: type,
        packer: Callable[[Sequence[Any]], Any],
        factory: type,
        config: Mapping[str, Any],
        workers: int | None,
        n_shards: int,
        address: str | None,
    ) -> None:
        self.ray = ray = init(address)
        self.packer = packer
        # One CPU per actor, or one whole GPU for a retriever that encodes with a model on a cluster with GPUs
        # (its ray_resources hook): then one actor per GPU.
        resources = task_resources(factory.from_options(dict(config)), ray.cluster_resources())
        slots = int(ray.cluster_resources().get("GPU", 0)) if resources.get("num_gpus") else cluster_cpus(ray)
        slots = max(1, slots)
        self.n_shards = n_shards
        n_actors = min(workers or slots, slots, n_shards)
        actor = ray.remote(**resources, max_restarts=0, max_task_retries=0)(builder)
        self.actors = [actor.remote(factory, dict(config)) for _ in range(n_actors)]

    def pack(self, documents: Sequence[Any]) -> Any:
        """A shard's documents in the form they travel in (:class:`odqa_core.shards._PackedDocuments`)."""
        return self.packer(documents)

    def share(self, value: Any) -> Any:
        """``value`` (the merged statistics, an argument of every shard's index step) in the object store, once."""
        return self.ray.put(value)

    def run(self, calls: Sequence[tuple[int, str, tuple[Any, ...]]]) -> list[Any]:
        """Each ``(shard, method, args)`` on the actor owning the shard (an actor runs its calls in order)."""
        ray = self.ray
        refs = [
            getattr(self.actors[shard % len(self.actors)], method).remote(shard, *args)
            for shard, method, args in calls
        ]
        results: list[Any] = [None] * len(refs)
        pending = {ref: position for position, ref in enumerate(refs)}
        while pending:  # as they finish, so that the first failure is reported at once
            done, _ = ray.wait(list(pending), num_returns=1)
            position = pending.pop(done[0])
            try:
                results[position] = ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:  # the shard's own code raised: bad input or a bug
                cause = getattr(exc, "cause", None)
                if isinstance(cause, OdqaError):
                    raise cause from None
                last = str(exc).strip().splitlines()[-1]
                raise OdqaError(f"shard {calls[position][0]} of {self.n_shards} failed on Ray: {last}") from None
            except (ray.exceptions.RayError, ConnectionError) as exc:  # its worker died, or the cluster went away
                raise OdqaError(
                    f"shard {calls[position][0]} of {self.n_shards} failed: its Ray worker "
                    f"({self.actors[calls[position][0] % len(self.actors)]._actor_id.hex()[:12]}) was lost while "
                    f"building it ({_first_line(exc)}); nothing was written, run the build again"
                ) from None
        return results

    def close(self) -> None:
        """Stop the actors (at once: after a failure, a survivor must not write into a directory being removed) and
        wait until they are gone."""
        ray = self.ray
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        # ray.kill is asynchronous: an actor may still answer (and write) for a moment. A call on a killed actor
        # fails once it is dead, so ask until it does -- one answer is not proof of death.
        deadline = time.monotonic() + 30
        for actor in self.actors:
            while time.monotonic() < deadline:
                try:
                    ray.get(actor.__ray_ready__.remote(), timeout=max(0.1, deadline - time.monotonic()))
                except ray.exceptions.GetTimeoutError:
                    break  # the deadline: give up waiting
                except Exception:
                    break  # dead, as asked
                time.sleep(0.05)
        self.actors = []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


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
        self.scores_prepared = self.prepares and hasattr(cls, "score_prepared")
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
