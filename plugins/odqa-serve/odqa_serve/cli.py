"""``odqa serve``: the pipeline of ``odqa run``'s options (or a pipeline file) behind HTTP, with uvicorn."""

from __future__ import annotations

import logging
import socket
import sys

import click

from odqa_core.errors import UsageError
from odqa_core.options import INDEX_DIRS_OPTION, pipeline_options


@click.command()
@pipeline_options
@INDEX_DIRS_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on (0: any free port).")
@click.option(
    "--max-batch", type=int, default=32, show_default=True, help="Most questions answered in one batched call."
)
@click.option(
    "--max-wait-ms",
    type=float,
    default=5.0,
    show_default=True,
    help="How long the first question of a batch waits for others (0: answer what is there at once).",
)
@click.option(
    "--max-queue",
    type=int,
    default=256,
    show_default=True,
    help="Most questions waiting; past it requests get 503 with Retry-After.",
)
@click.option(
    "--request-timeout-s", type=float, default=30.0, show_default=True, help="A request unanswered by then gets 504."
)
@click.option("--max-question-chars", type=int, default=1000, show_default=True, help="Longest question accepted.")
@click.option(
    "--max-body-bytes", type=int, default=256 * 1024, show_default=True, help="Largest request body accepted."
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process (uvicorn); ray: a Ray Serve deployment of --replicas replicas, each holding the "
    "pipeline (the odqa-serve[ray] extra).",
)
@click.option("--replicas", type=int, default=1, show_default=True, help="With --engine ray: replicas to run.")
@click.option(
    "--ray-address",
    default=None,
    help="With --engine ray: a running Ray cluster (HOST:PORT, as 'ray start --head' prints); default: start a "
    "local one.",
)
@click.pass_context
def serve(ctx, config_path, index_dirs, host, port, engine, replicas, ray_address, **params):
    """Serve a pipeline over HTTP: a JSON API with micro-batching and a question-answering web page.

    The pipeline is given as for 'odqa run' and 'odqa ask' (the same options and --config files); its indexes and
    models load once, at start, and the corpus (default: the bundled sample) is indexed then unless --index-dir
    gives stored indexes. Open http://HOST:PORT/ for the page, /docs for the API (POST /v1/ask, /v1/ask/batch,
    /v1/retrieve; GET /v1/health, /v1/pipeline).

    Concurrent questions are answered together, by one batched retrieve and one batched read: a batch closes when
    --max-batch questions wait or --max-wait-ms after its first. SIGTERM or Ctrl-C stops taking requests, answers
    those in flight, then exits. Each request is one line on stderr (id, method, path, status, milliseconds).

    \b
    Examples:
      odqa serve --retriever bm25 --reader extractive                  # the bundled sample, on 127.0.0.1:8000
      odqa serve --config pipeline.toml --host 0.0.0.0 --port 8080
      odqa serve --index-dir idx/bm25 --reader extractive -o extractive.model=runs/reader/best --max-batch 64
      curl -s localhost:8000/v1/ask -H 'content-type: application/json' -d '{"question": "훈민정음이 반포된 해는?"}'
    """
    from odqa_core.spec import command_line_settings

    serve_params = {name: params.pop(name) for name in list(params) if name in _SERVE_PARAMS}
    settings = command_line_settings(ctx, config_path, params)
    from odqa_serve.app import ServeSettings

    serve_settings = ServeSettings(**serve_params)
    if engine == "ray":
        _serve_on_ray(settings, index_dirs, serve_settings, host, port, replicas, ray_address)
        return
    if replicas != 1 or ray_address is not None:
        raise UsageError("--replicas and --ray-address need --engine ray")
    listener = _listen(host, port)  # an address in use fails now, before the pipeline is built
    try:
        _serve(settings, index_dirs, serve_settings, listener)
    finally:
        listener.close()


_SERVE_PARAMS = ("max_batch", "max_wait_ms", "max_queue", "request_timeout_s", "max_question_chars", "max_body_bytes")


def _listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r} is not an address to listen on: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    listener.set_inheritable(True)
    return listener


def _serve(settings: dict, index_dirs: tuple[str, ...], serve_settings, listener: socket.socket) -> None:
    import uvicorn

    from odqa_serve.app import create_app
    from odqa_serve.engine import build_pipeline

    pipeline = build_pipeline(settings, index_dirs)
    app = create_app(lambda: pipeline, serve_settings)
    _configure_logging()
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"odqa serve: http://{shown}:{port}/ (API: /docs); SIGTERM or Ctrl-C stops", err=True)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=None)
    uvicorn.Server(config).run(sockets=[listener])


def _serve_on_ray(
    settings: dict,
    index_dirs: tuple[str, ...],
    serve_settings,
    host: str,
    port: int,
    replicas: int,
    ray_address: str | None,
) -> None:
    """``--engine ray``: the pipeline checked here, then built by each replica (odqa_serve.ray_serve)."""
    import functools

    from odqa_core.spec import PipelineSpec
    from odqa_serve.engine import build_pipeline
    from odqa_serve.ray_serve import serve_forever

    if replicas < 1:
        raise UsageError(f"--replicas must be at least 1, got {replicas}")
    PipelineSpec.from_settings(settings, index_dirs=index_dirs)  # bad names or options fail before Ray starts
    _listen(host, port).close()  # an address in use fails now; Ray Serve's proxy listens there
    shown = f"[{host}]" if ":" in host else host

    def ready() -> None:
        shown_url = f"http://{shown}:{port}/"
        click.echo(f"odqa serve: {shown_url} on Ray Serve, {replicas} replica(s); SIGTERM or Ctrl-C stops", err=True)

    factory = functools.partial(build_pipeline, settings, tuple(index_dirs))
    serve_forever(
        factory, serve_settings, replicas=replicas, ray_address=ray_address, host=host, port=port, on_ready=ready
    )


def _configure_logging() -> None:
    """uvicorn's and the app's logs (the access log included) as lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("uvicorn", "odqa_serve"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
