"""``odqa serve --engine ray``: the same FastAPI app (:func:`odqa_serve.app.create_app`) as a Ray Serve deployment.

Each of the ``replicas`` replicas builds its own pipeline, in its constructor (so the deployment is up only once
every replica holds its pipeline, and a pipeline that cannot be built fails the deployment instead of a replica
answering 503 for ever), and runs the app with its own micro-batcher and queue. Ray Serve's proxy listens on
``host:port`` and spreads the requests over the replicas; each replica admits up to its queue plus one batch at once
(``max_ongoing_requests``), so that the app's own load shedding (503 with Retry-After) applies, not Ray's.

Ray connects as the scale-out engine does (:func:`odqa_core.shards.connect_ray`): ``ray_address`` names a running
cluster (``ray start --head`` prints it; refused in one line when it does not answer), or a local instance is
started. On a cluster of several machines the pipeline's files (``--index-dir``, models, corpus) must be at the same
paths on every node, and odqa with its plugins installed there. Ray Serve is the ``odqa-serve[ray]`` extra.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from odqa_core.errors import OdqaError, UsageError
from odqa_core.pipeline import Pipeline
from odqa_core.shards import connect_ray
from odqa_serve.app import ServeSettings, create_app

#: The Ray Serve application's name; its route prefix is ``/``.
APP_NAME = "odqa"
#: CPUs each replica asks Ray for: one, where its pipeline's batches run.
REPLICA_CPUS = 1


def _serve() -> Any:
    try:
        from ray import serve
    except ImportError as exc:
        raise UsageError(f"--engine ray needs Ray Serve: pip install 'odqa-serve[ray]' ({exc})") from None
    return serve


class OdqaReplica:
    """One replica: the pipeline built once, in the constructor, then the app around it (Ray Serve calls
    ``__serve_build_asgi_app__`` after the constructor, on the replica). The replica works in ``cwd``, the
    directory ``odqa serve`` ran in, so that relative paths (``--index-dir``, ``--corpus``, models) mean there
    what they mean on the command line (a Ray worker starts elsewhere; a replica is a process of its own)."""

    def __init__(self, pipeline_factory: Callable[[], Pipeline], settings: ServeSettings, cwd: str) -> None:
        os.chdir(cwd)
        self.pipeline = pipeline_factory()
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        pipeline = self.pipeline
        return create_app(lambda: pipeline, self.settings)


def deploy(
    pipeline_factory: Callable[[], Pipeline],
    settings: ServeSettings,
    *,
    replicas: int,
    ray_address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Deploy ``replicas`` replicas of the app on Ray Serve, its proxy on ``host:port``; returns once every
    replica has built its pipeline. ``pipeline_factory`` runs on the replicas: Ray serializes it (a module-level
    function, or a ``functools.partial`` of one with plain settings)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise UsageError(f"--replicas must be at least 1, got {replicas!r}")
    serve = _serve()
    ray = connect_ray(ray_address)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if replicas * REPLICA_CPUS > cpus:  # Ray would wait for ever for CPUs that never come
        where = f"the Ray cluster at {ray_address}" if ray_address else "the local Ray instance"
        raise UsageError(f"--replicas {replicas} needs {replicas * REPLICA_CPUS} CPUs; {where} has {cpus}")
    ingress = serve.ingress()(OdqaReplica)
    deployment = serve.deployment(
        ingress,
        name="odqa",
        num_replicas=replicas,
        max_ongoing_requests=settings.max_queue + settings.max_batch,
        ray_actor_options={"num_cpus": REPLICA_CPUS},
    )
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(deployment.bind(pipeline_factory, settings, os.getcwd()), name=APP_NAME, route_prefix="/")
    except (RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        shutdown()
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        fallback = lines[-1] if lines else type(exc).__name__
        cause = next((line for line in reversed(lines) if "Error" in line), fallback)
        raise OdqaError(f"Ray Serve could not deploy the pipeline: {cause}") from None


def shutdown() -> None:
    """Remove the deployment and stop Ray Serve (each replica finishes the requests it holds first)."""
    try:
        from ray import serve

        serve.shutdown()
    except Exception:  # noqa: BLE001 - nothing left to stop, or Ray already gone
        pass


def serve_forever(
    pipeline_factory: Callable[[], Pipeline],
    settings: ServeSettings,
    *,
    replicas: int,
    ray_address: str | None,
    host: str,
    port: int,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """``odqa serve --engine ray``: deploy, then wait until SIGTERM or Ctrl-C, then shut Ray Serve down (a signal
    during the deployment stops it as soon as it is done)."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        deploy(pipeline_factory, settings, replicas=replicas, ray_address=ray_address, host=host, port=port)
        for sig in signals:  # again: ray.init installs its own SIGTERM handler, which aborts the process
            signal.signal(sig, lambda *_: stop.set())
        if on_ready is not None and not stop.is_set():
            on_ready()
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutdown()
