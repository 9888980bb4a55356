"""The FastAPI application: the JSON API, the web page, errors, the access log and the request body limit.

:func:`create_app` takes a *pipeline factory* (a function returning a built :class:`~odqa_core.pipeline.Pipeline`)
and :class:`ServeSettings`, and returns a plain FastAPI app: ``odqa serve`` runs it with uvicorn, and any other ASGI
host can run the same object — Ray Serve wraps it with ``serve.ingress(app)``, each replica calling the factory
once. The factory runs at the app's start-up, on the pipeline's worker thread, followed by one warm-up question;
``/v1/health`` says ``ready`` only then, and questions asked before get a 503 with ``Retry-After``.

Errors are JSON ``{"error": "<one line>"}``; a request the validation refused also has ``detail``, its errors field
by field (the field named in ``error`` too). Every response carries an ``X-Request-ID``, and each request is one
line of the ``odqa_serve.access`` log: id, method, path, status, milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from odqa_core.errors import UsageError
from odqa_core.pipeline import Pipeline
from odqa_serve import schemas
from odqa_serve.batching import MicroBatcher, Overloaded
from odqa_serve.engine import Engine, Result, Settings

access_log = logging.getLogger("odqa_serve.access")
log = logging.getLogger("odqa_serve.app")

#: Asked once at start-up, so that the first user's question does not pay for lazy loading.
WARM_UP_QUESTION = "warm up"


@dataclass(frozen=True)
class ServeSettings:
    """The server's limits and batching (``odqa serve``'s options of the same names)."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256
    request_timeout_s: float = 30.0
    max_question_chars: int = 1000
    max_body_bytes: int = 256 * 1024
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "max_question_chars", "max_body_bytes", "retry_after_s"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("max_wait_ms", "request_timeout_s"):
            value = getattr(self, name)
            if not 0 <= value < float("inf"):
                raise UsageError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.request_timeout_s == 0:
            raise UsageError("--request-timeout-s must be more than 0")


class _State:
    """The app's moving parts, created at start-up."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.batcher: MicroBatcher | None = None
        self.engine: Engine | None = None
        self.failure: str | None = None  # the pipeline could not be built or warmed up


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def create_app(pipeline_factory: Callable[[], Pipeline], settings: ServeSettings | None = None) -> FastAPI:
    """The serving app of the pipeline ``pipeline_factory()`` builds (called once, at start-up)."""
    settings = settings or ServeSettings()
    state = _State(settings)

    def build() -> Engine:
        engine = Engine(pipeline_factory())
        engine.answer([WARM_UP_QUESTION], engine.defaults)
        return engine

    async def warm_up(batcher: MicroBatcher) -> None:
        try:
            engine = await batcher.run_in_worker(build)
        except Exception as exc:  # the server stays up to say so (/v1/health), and answers 503
            state.failure = one_line(exc)
            log.error("the pipeline could not start: %s", state.failure)
            return
        state.engine = engine
        batcher.start(engine)
        log.info("ready: the pipeline is built and warmed up")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = MicroBatcher(settings.max_batch, settings.max_wait_ms, settings.max_queue)
        state.batcher = batcher
        starting = asyncio.get_running_loop().create_task(warm_up(batcher))
        try:
            yield
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await batcher.stop()

    app = FastAPI(
        title="odqa",
        summary="Open-domain question answering: ask a question, get an answer from the corpus.",
        lifespan=lifespan,
        responses={
            422: {"model": schemas.Error, "description": "A bad request: the field is named."},
            503: {"model": schemas.Error, "description": "Warming up, or too many requests waiting."},
        },
    )
    app.state.odqa = state

    def ready() -> tuple[MicroBatcher, Engine]:
        if state.failure is not None:
            raise HTTPException(503, f"the pipeline could not start: {state.failure}")
        if state.engine is None or state.batcher is None:
            retry = {"Retry-After": str(settings.retry_after_s)}
            raise HTTPException(503, "the pipeline is warming up", headers=retry)
        return state.batcher, state.engine

    def check_length(text: str, loc: list[Any]) -> None:
        if len(text) > settings.max_question_chars:
            message = f"the question is longer than {settings.max_question_chars} characters ({len(text)})"
            raise RequestValidationError([{"loc": loc, "msg": message, "type": "too_long", "input": None}])

    async def answer(texts: list[str], all_settings: list[Settings]) -> list[Result]:
        batcher, _ = ready()
        try:
            futures = batcher.submit(texts, all_settings)
        except Overloaded as exc:
            headers = {"Retry-After": str(settings.retry_after_s)}
            raise HTTPException(503, f"the server is busy: {exc}; retry later", headers=headers) from None
        try:
            return await asyncio.wait_for(asyncio.gather(*futures), settings.request_timeout_s)
        except asyncio.TimeoutError:
            for future in futures:
                future.cancel()
            message = f"no answer within {settings.request_timeout_s:g} s (--request-timeout-s)"
            raise HTTPException(504, message) from None
        except Exception as exc:
            log.error("the pipeline failed: %s", one_line(exc), exc_info=exc)
            raise HTTPException(500, f"the pipeline failed on this question: {one_line(exc)}") from None

    def ask_response(result: Result, total_ms: float) -> schemas.AskResponse:
        nbest = result.nbest
        return schemas.AskResponse(
            question=result.question,
            answer=(nbest[0]["text"] if nbest else "") if nbest is not None else None,
            score=nbest[0]["score"] if nbest else None,
            nbest=[schemas.Answer(**entry) for entry in nbest or []],
            passages=[schemas.Passage(**p) for p in result.passages],
            timings_ms=schemas.Timings(retrieve=result.retrieve_ms, read=result.read_ms, total=total_ms),
        )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
        parts = []
        for error in errors:
            loc = [str(part) for part in error.get("loc", ())]
            if error.get("type") == "json_invalid":
                # the location is a character offset in the body, not a field
                offset = f" at character {loc[1]}" if len(loc) > 1 else ""
                parts.append(f"body: not valid JSON{offset}")
                continue
            field_name = ".".join(loc[1:] if len(loc) > 1 and loc[0] == "body" else loc) or "body"
            parts.append(f"{field_name}: {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(parts), "detail": errors}, 422)

    @app.post("/v1/ask", response_model=schemas.AskResponse, summary="Answer one question")
    async def ask(body: schemas.AskRequest) -> schemas.AskResponse:
        started = time.perf_counter()
        check_length(body.question, ["body", "question"])
        _, engine = ready()
        (result,) = await answer([body.question], [engine.settings(body.top_k, body.reader_top_k, body.n_best)])
        return ask_response(result, (time.perf_counter() - started) * 1000)

    @app.post("/v1/ask/batch", response_model=schemas.AskBatchResponse, summary="Answer several questions")
    async def ask_batch(body: schemas.AskBatchRequest) -> schemas.AskBatchResponse:
        started = time.perf_counter()
        if len(body.questions) > settings.max_queue:  # it could never be queued: not a 503 to retry
            message = f"at most {settings.max_queue} questions per request (--max-queue), got {len(body.questions)}"
            raise RequestValidationError([{"loc": ["body", "questions"], "msg": message, "type": "too_long"}])
        for i, item in enumerate(body.questions):
            check_length(item.question, ["body", "questions", i, "question"])
        _, engine = ready()
        all_settings = [engine.settings(q.top_k, q.reader_top_k, q.n_best) for q in body.questions]
        results = await answer([q.question for q in body.questions], all_settings)
        total = (time.perf_counter() - started) * 1000
        return schemas.AskBatchResponse(answers=[ask_response(r, total) for r in results])

    @app.post("/v1/retrieve", response_model=schemas.RetrieveResponse, summary="Retrieve passages (no reader)")
    async def retrieve(body: schemas.RetrieveRequest) -> schemas.RetrieveResponse:
        started = time.perf_counter()
        check_length(body.question, ["body", "question"])
        _, engine = ready()
        (result,) = await answer([body.question], [engine.settings(body.top_k, read=False)])
        timings = schemas.Timings(retrieve=result.retrieve_ms, read=0.0, total=(time.perf_counter() - started) * 1000)
        passages = [schemas.Passage(**p) for p in result.passages]
        return schemas.RetrieveResponse(question=result.question, passages=passages, timings_ms=timings)

    @app.get("/v1/health", summary="Ready after warm-up; the micro-batching counters")
    async def health() -> JSONResponse:
        batcher = state.batcher
        status = "failed" if state.failure else ("ready" if state.engine is not None else "starting")
        body = {
            "status": status,
            **({"error": state.failure} if state.failure else {}),
            "queued": batcher.queued if batcher else 0,
            "batching": batcher.stats.to_json() if batcher else None,
            "settings": asdict(settings),
        }
        return JSONResponse(body, 200 if status == "ready" else 503)

    @app.get("/v1/pipeline", summary="The resolved pipeline settings and the plugin versions")
    async def pipeline() -> JSONResponse:
        _, engine = ready()
        return JSONResponse(json.loads(json.dumps(engine.describe(), default=str)))

    page = resources.files("odqa_serve").joinpath("static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page.joinpath("index.html").read_text(encoding="utf-8"))

    static_types = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in static_types:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(page.joinpath(name).read_bytes(), media_type=static_types[name])

    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes)
    return app


class RequestLimits:
    """ASGI middleware around the app: the request body limit (413 past ``max_body_bytes``, declared or
    streamed), an ``X-Request-ID`` on every response, and one access-log line per request. Pure ASGI (no
    response buffering), added with ``app.add_middleware``: the app stays a FastAPI object."""

    def __init__(self, app: Callable, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        started = time.perf_counter()
        status = 500
        limit = self.max_body_bytes
        received = 0

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a body sent without a Content-Length, or longer than declared
                    raise HTTPException(413, self.too_large)
            return message

        try:
            declared = dict(scope.get("headers", [])).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await self._too_large(send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            access_log.info("%s %s %s %d %.1fms", request_id, scope["method"], scope["path"], status, elapsed)

    @property
    def too_large(self) -> str:
        return f"body: the request body is over {self.max_body_bytes} bytes (--max-body-bytes)"

    async def _too_large(self, send: Callable) -> None:
        body = json.dumps({"error": self.too_large})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
