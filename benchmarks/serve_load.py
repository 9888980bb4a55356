"""Load test of ``odqa serve`` on loopback (issue 19): throughput, latency, shedding and memory under concurrency.

Question answered: "how many questions a second does ``odqa serve`` answer on this machine, how long does each wait,
does micro-batching pay, does the server shed load cleanly when overloaded, and is every answer it gives under load
the answer of a single request?"

The script talks to 127.0.0.1 only (any other host is refused). It starts ``odqa serve`` itself in a subprocess on a
free port for each scenario (or, with ``--url``, drives one already running with the sample's questions on the
endpoint ``--endpoint``; no RSS then), waits for ``GET /v1/health``, then:

1. Reference: every question of the pool asked once, one request at a time (a micro-batch of one), and the answer
   kept: ``/v1/ask``'s ``answer``, ``/v1/retrieve``'s list of passage ``doc_id``. With ``--check-run``, the
   ``/v1/ask`` references are also compared with ``odqa run``'s ``predictions.json`` for the same questions and
   pipeline flags.
2. For each concurrency of ``--concurrency`` (closed loop: that many asyncio clients, each sending its next request
   when the previous one is answered; each its own httpx client and connection, opened with an untimed
   ``GET /v1/health`` before the clock starts), at most ``--requests`` requests within ``--time-limit-s``: answered
   requests/s, p50/p95/p99 latency of the answered ones, errors by status (503 sheds apart), answers that differ
   from the reference (mismatches), and the server's peak RSS (psutil if installed, else ``/proc/PID/status``
   VmRSS, sampled every 50 ms).

Scenarios: datasets (the bundled sample's 107 evaluation questions; KorQuAD 1.0 dev, its documents split into
30-word passages as ../shared/data/korquad/README.md's passage level, the first ``--korquad-questions`` questions,
skipped when the file is absent) × pipelines (``bm25``: BM25 alone on ``/v1/retrieve``; ``bm25+extractive``: BM25
then the extractive reader on ``/v1/ask``; on the sample the reader is the demo model, on KorQuAD
``--korquad-reader-model``) × modes (``batched``: the server's micro-batching defaults; ``unbatched``:
``--max-batch 1``). Every server gets ``--max-queue`` above the largest concurrency, so that no level is over the
queue limit (any error there is a failure), and ``--request-timeout-s`` (``--server-timeout-s``) above the wait of the
last of 128 clients when batching is off, so that a slow level shows as latency rather than as 504s.

Overload (``--overload``): BM25 + extractive on the sample with ``--max-queue Q --max-batch B``
(``--overload-queue``, ``--overload-batch``) and 2·Q clients that resend at once on a 503 (they ignore Retry-After:
the worst case). Reported: the 503s, their latency and whether each had a Retry-After header, ``/v1/health`` polled
every 100 ms meanwhile (its statuses and worst latency), the server's RSS after warm-up and at its peak, and the
mismatches of the answered requests.

Targets (issue 19): at 32 clients, micro-batching ≥ 3× the throughput of ``--max-batch 1`` for BM25 + extractive
on CPU; zero errors below the queue limit; under overload fast 503s with Retry-After, health OK, bounded RSS, every
answered request correct. The client runs on the same machine as the server and shares its cores.

Results go to ``--out`` (scratch): ``serve_load.json``, ``serve_load.md``, each server's log, and the demo models
(``ODQA_CACHE_DIR``, unless set).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    REPO,
    benchmark_parser,
    markdown_header,
    markdown_table,
    require_korquad,
    run_header,
    show_markdown,
    write_json,
)

LOOPBACK = "127.0.0.1"
ENDPOINTS = {"bm25": "/v1/retrieve", "bm25+extractive": "/v1/ask"}
#: KorQuAD's BM25 (the best sparse setting of korquad_retrieval.py: lucene over character bigrams) on 30-word
#: passages, as the KorQuAD benchmarks run it.
KORQUAD_BM25 = [
    "--split-words",
    "30",
    "--analyzer",
    "char-ngram",
    "--analyzer-option",
    "n=2",
    "-o",
    "bm25.variant=lucene",
]
KORQUAD_LEXICAL = "/tmp/odqa-bench/lexical/korquad-fit100/lexical-r0/best"


# --------------------------------------------------------------------------------------------------------- server


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash, refused unless it is http on 127.0.0.1: this load generator must never
    be pointed at another machine."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.path not in ("", "/"):
        raise SystemExit(f"--url must be http://{LOOPBACK}:PORT (loopback only), got {url!r}")
    return url.rstrip("/")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    """The resident set size of process ``pid`` in MiB (None once it is gone)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return psutil.Process(pid).memory_info().rss / 2**20
        except psutil.Error:
            return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RssSampler:
    """The peak RSS of a process while a block runs, sampled every ``interval`` seconds in a thread."""

    def __init__(self, pid: int | None, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            value = rss_mb(self.pid) if self.pid else None
            if value is not None:
                self.peak = value if self.peak is None else max(self.peak, value)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Server:
    """``odqa serve ARGS --host 127.0.0.1 --port P`` in a subprocess (its log in ``log``), ready once
    ``/v1/health`` answers 200; stopped with SIGTERM (the drain) on exit."""

    def __init__(self, args: Sequence[str], log: Path, start_timeout_s: float) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.command = [str(Path(sys.executable).with_name("odqa")), "serve", *args]
        self.command += ["--host", LOOPBACK, "--port", str(self.port)]
        self.log = log
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def __enter__(self) -> Server:
        import httpx

        self.log.parent.mkdir(parents=True, exist_ok=True)
        log = self.log.open("wb")
        env = {**os.environ, "ODQA_PROGRESS": "0"}
        started = time.perf_counter()
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        log.close()
        deadline = started + self.start_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while True:
                if self.process.poll() is not None:
                    tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
                    raise SystemExit(f"odqa serve exited with {self.process.returncode}:\n" + "\n".join(tail))
                try:
                    if client.get(self.url + "/v1/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    self.__exit__()
                    raise SystemExit(f"odqa serve was not healthy after {self.start_timeout_s:.0f} s: {self.log}")
                time.sleep(0.2)
        self.start_s = time.perf_counter() - started
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ----------------------------------------------------------------------------------------------------------- load


def answer_key(endpoint: str, body: dict[str, Any]) -> Any:
    """What must equal the single-request answer: the answer text, or the retrieved passages' ids in order."""
    if endpoint == "/v1/ask":
        return body.get("answer")
    return [p.get("doc_id") for p in body.get("passages", [])]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


async def reference_answers(url: str, endpoint: str, questions: Sequence[str]) -> tuple[list[Any], Counter]:
    """Each question asked alone, one after the other: the answers every loaded request is compared with."""
    import httpx

    answers: list[Any] = []
    failures: Counter = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        for text in questions:
            response = await client.post(endpoint, json={"question": text})
            if response.status_code == 200:
                answers.append(answer_key(endpoint, response.json()))
            else:
                answers.append(None)
                failures[response.status_code] += 1
    return answers, failures


async def load_level(
    url: str,
    endpoint: str,
    questions: Sequence[str],
    reference: Sequence[Any],
    concurrency: int,
    n_requests: int,
    time_limit_s: float,
    request_timeout_s: float,
    poll_health: bool = False,
) -> dict[str, Any]:
    """``concurrency`` closed-loop clients sending at most ``n_requests`` requests (question ``i % len``) until
    ``time_limit_s``; what they saw."""
    import httpx

    # One client (one connection) per virtual user: a single httpx client shared by 128 tasks spends more time in
    # its connection pool than the server spends answering (measured: /v1/health at 97/s shared, 1,000/s apart).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    statuses: Counter = Counter()
    ok_latencies: list[float] = []
    shed_latencies: list[float] = []
    shed_without_retry_after = 0
    mismatches: list[dict[str, Any]] = []
    health: Counter = Counter()
    health_latencies: list[float] = []
    sent = 0
    connected = 0
    started = deadline = 0.0
    go = asyncio.Event()
    finished = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal sent, shed_without_retry_after, connected, started, deadline
        # One untimed request first: every client holds an open connection before the clock starts, so that a level
        # measures answering, not TCP connection setup (the clients' first requests would otherwise be most of it).
        with contextlib.suppress(httpx.HTTPError):
            await client.get("/v1/health")
        connected += 1
        if connected == concurrency:
            started = time.perf_counter()
            deadline = started + time_limit_s
            go.set()
        await go.wait()
        while sent < n_requests and time.perf_counter() < deadline:
            i = sent % len(questions)
            sent += 1
            t0 = time.perf_counter()
            try:
                response = await client.post(endpoint, json={"question": questions[i]})
            except httpx.HTTPError as exc:
                statuses[f"client {type(exc).__name__}"] += 1
                continue
            latency = time.perf_counter() - t0
            statuses[response.status_code] += 1
            if response.status_code == 200:
                ok_latencies.append(latency)
                got = answer_key(endpoint, response.json())
                if reference[i] is not None and got != reference[i]:
                    mismatches.append({"question": questions[i], "expected": reference[i], "got": got})
            elif response.status_code == 503:
                shed_latencies.append(latency)
                shed_without_retry_after += "retry-after" not in response.headers

    async def health_loop() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            while not finished.is_set():
                t0 = time.perf_counter()
                try:
                    health[(await client.get("/v1/health")).status_code] += 1
                except httpx.HTTPError as exc:
                    health[f"client {type(exc).__name__}"] += 1
                health_latencies.append(time.perf_counter() - t0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), 0.1)

    poller = asyncio.create_task(health_loop()) if poll_health else None
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=request_timeout_s, limits=limits))
            for _ in range(concurrency)
        ]
        await asyncio.gather(*(client_loop(client) for client in clients))
    wall = time.perf_counter() - started
    finished.set()
    if poller is not None:
        await poller
    ms = 1000.0
    result = {
        "concurrency": concurrency,
        "sent": sent,
        "wall_s": round(wall, 3),
        "answered": statuses.get(200, 0),
        "answered_per_s": round(statuses.get(200, 0) / wall, 2),
        "latency_ms": {f"p{q}": _ms(percentile(ok_latencies, q), ms) for q in (50, 95, 99)},
        "errors": {str(k): v for k, v in sorted(statuses.items(), key=str) if k not in (200, 503)},
        "shed_503": statuses.get(503, 0),
        "shed_latency_ms": {f"p{q}": _ms(percentile(shed_latencies, q), ms) for q in (50, 99)},
        "shed_without_retry_after": shed_without_retry_after,
        "mismatches": len(mismatches),
        "mismatch_examples": mismatches[:3],
    }
    if poll_health:
        result["health"] = {str(k): v for k, v in health.items()}
        result["health_max_ms"] = _ms(max(health_latencies, default=None), ms)
    return result


def _ms(seconds: float | None, ms: float) -> float | None:
    return None if seconds is None else round(seconds * ms, 2)


# ------------------------------------------------------------------------------------------------------ scenarios


def sample_pool() -> tuple[list[str], list[str], list[str]]:
    """The sample's evaluation questions: ``(ids, texts, pipeline flags for the data)``."""
    from odqa_core import data

    questions = data.load_questions(data.sample_questions_path())
    return [q.id for q in questions], [q.text for q in questions], []


def korquad_pool(path: Path, n: int) -> tuple[list[str], list[str], list[str]]:
    from odqa_core import data

    questions = data.load_questions(path)[:n]
    return [q.id for q in questions], [q.text for q in questions], ["--corpus", str(path), *KORQUAD_BM25]


def pipeline_flags(pipeline: str, dataset: str, reader_model: str) -> list[str]:
    if pipeline == "bm25":
        return ["--retriever", "bm25"]
    flags = ["--retriever", "bm25", "--reader", "extractive"]
    if dataset == "korquad":
        flags += ["-o", f"extractive.model={reader_model}"]
    return flags


def check_against_run(
    flags: Sequence[str], data_flags: Sequence[str], ids: Sequence[str], texts: Sequence[str], reference: list[Any]
) -> dict[str, Any]:
    """``odqa run``'s predictions for the same questions and pipeline flags, compared with the references."""
    with tempfile.TemporaryDirectory(prefix="serve-load-run-") as tmp:
        questions = Path(tmp) / "questions.jsonl"
        questions.write_text(
            "".join(json.dumps({"id": i, "question": t}, ensure_ascii=False) + "\n" for i, t in zip(ids, texts)),
            encoding="utf-8",
        )
        out = Path(tmp) / "out"
        command = [str(Path(sys.executable).with_name("odqa")), "run", *flags, *data_flags]
        command += ["--questions", str(questions), "--output-dir", str(out), "--show", "0"]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "ODQA_PROGRESS": "0"})
        if done.returncode != 0:
            return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
        predictions = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    differ = [i for i, expected in zip(ids, reference) if predictions.get(i) != expected]
    return {"compared": len(ids), "differ": len(differ), "differ_ids": differ[:5]}


def run_scenario(
    args: Any,
    dataset: str,
    pipeline: str,
    mode: str,
    pool: tuple[list[str], list[str], list[str]],
    extra: Sequence[str] = (),
    levels: Sequence[int] | None = None,
    overload: bool = False,
) -> dict[str, Any]:
    ids, texts, data_flags = pool
    endpoint = ENDPOINTS[pipeline]
    flags = pipeline_flags(pipeline, dataset, args.korquad_reader_model)
    server_flags = [*flags, *data_flags, *extra]
    if mode == "unbatched":
        server_flags += ["--max-batch", "1"]
    name = f"{dataset}-{pipeline}-{mode}" + ("-overload" if overload else "")
    print(f"\n== {name}: odqa serve {' '.join(server_flags)}", flush=True)
    result: dict[str, Any] = {"dataset": dataset, "pipeline": pipeline, "mode": mode, "endpoint": endpoint}
    result["server_args"] = server_flags
    with Server(server_flags, Path(args.out) / f"{name}.log", args.start_timeout_s) as server:
        result["start_s"] = round(server.start_s, 1)
        reference, failures = asyncio.run(reference_answers(server.url, endpoint, texts))
        result["reference_failures"] = {str(k): v for k, v in failures.items()}
        result["rss_ready_mb"] = rss_mb(server.pid)
        if args.check_run and pipeline == "bm25+extractive" and not overload:
            result["odqa_run"] = check_against_run(flags, data_flags, ids, texts, reference)
            print(f"   odqa run check: {result['odqa_run']}", flush=True)
        result["levels"] = []
        for concurrency in levels or args.concurrency:
            with RssSampler(server.pid) as rss:
                level = asyncio.run(
                    load_level(
                        server.url,
                        endpoint,
                        texts,
                        reference,
                        concurrency,
                        args.requests,
                        args.time_limit_s,
                        args.request_timeout_s,
                        poll_health=overload,
                    )
                )
            level["rss_peak_mb"] = None if rss.peak is None else round(rss.peak, 1)
            result["levels"].append(level)
            print(f"   {json.dumps(level, ensure_ascii=False)[:400]}", flush=True)
    return result


def run_url(args: Any) -> dict[str, Any]:
    """``--url``: one running server, the sample's questions on ``--endpoint``."""
    url = loopback_url(args.url)
    texts = sample_pool()[1]
    reference, failures = asyncio.run(reference_answers(url, args.endpoint, texts))
    levels = [
        asyncio.run(
            load_level(
                url, args.endpoint, texts, reference, c, args.requests, args.time_limit_s, args.request_timeout_s
            )
        )
        for c in args.concurrency
    ]
    return {"url": url, "endpoint": args.endpoint, "reference_failures": dict(failures), "levels": levels}


# ---------------------------------------------------------------------------------------------------------- report


def render(payload: dict[str, Any]) -> str:
    out = [markdown_header(payload)]
    rows = []
    for s in payload["scenarios"]:
        if s["mode"] == "overload":
            continue
        for level in s["levels"]:
            lat = level["latency_ms"]
            errors = ", ".join(f"{k}: {v}" for k, v in level["errors"].items()) or "0"
            rows.append(
                [
                    s["dataset"],
                    s["pipeline"],
                    s["mode"],
                    level["concurrency"],
                    f"{level['answered']}/{level['sent']}",
                    f"{level['answered_per_s']:.1f}",
                    lat["p50"],
                    lat["p95"],
                    lat["p99"],
                    errors,
                    level["shed_503"],
                    level["mismatches"],
                    level["rss_peak_mb"],
                ]
            )
    header = ["data", "pipeline", "mode", "clients", "answered", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    out.append(markdown_table([*header, "errors", "503", "mismatches", "peak RSS MiB"], rows))
    checks = [
        [s["dataset"], s["pipeline"], s["mode"], s.get("start_s"), s["reference_failures"] or "0", s.get("odqa_run")]
        for s in payload["scenarios"]
    ]
    out.append("\n\n" + markdown_table(["data", "pipeline", "mode", "start s", "ref. failures", "odqa run"], checks))
    for s in payload["scenarios"]:
        if s["mode"] != "overload":
            continue
        for level in s["levels"]:
            out.append(
                f"\n\nOverload ({' '.join(s['server_args'])}, {level['concurrency']} clients resending at once): "
                f"{level['sent']} sent, {level['answered']} answered ({level['answered_per_s']:.1f}/s, p99 "
                f"{level['latency_ms']['p99']} ms), {level['shed_503']} shed with 503 (p50 "
                f"{level['shed_latency_ms']['p50']} ms, p99 {level['shed_latency_ms']['p99']} ms; "
                f"{level['shed_without_retry_after']} without Retry-After), other errors {level['errors'] or 0}, "
                f"mismatches {level['mismatches']}; /v1/health {level['health']} "
                f"(worst {level['health_max_ms']} ms); "
                f"RSS {s['rss_ready_mb']:.0f} MiB ready, {level['rss_peak_mb']} MiB peak."
            )
    out.append("\n\n" + targets(payload))
    return "".join(out) + "\n"


def targets(payload: dict[str, Any]) -> str:
    lines = []
    by = {(s["dataset"], s["pipeline"], s["mode"]): s for s in payload["scenarios"]}
    for dataset in ("sample", "korquad"):
        on, off = by.get((dataset, "bm25+extractive", "batched")), by.get((dataset, "bm25+extractive", "unbatched"))
        if on and off:
            at = {lv["concurrency"]: lv["answered_per_s"] for lv in on["levels"]}
            base = {lv["concurrency"]: lv["answered_per_s"] for lv in off["levels"]}
            if 32 in at and 32 in base and base[32]:
                ratio = at[32] / base[32]
                met = "met" if ratio >= 3 else "NOT met"
                lines.append(
                    f"- {dataset}, BM25 + extractive, 32 clients: batched / unbatched = {ratio:.2f}× (≥ 3×: {met})"
                )
    below_limit = [lv for s in payload["scenarios"] if s["mode"] != "overload" for lv in s["levels"]]
    errors = sum(sum(lv["errors"].values()) + lv["shed_503"] for lv in below_limit)
    mismatches = sum(lv["mismatches"] for s in payload["scenarios"] for lv in s["levels"])
    lines.append(f"- errors below the queue limit: {errors} (target 0)")
    lines.append(f"- answers differing from the single-request answer, all runs: {mismatches} (target 0)")
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="serve-load", render="serve_load.json")
    parser.add_argument("--url", default=None, help=f"Drive a running server (http://{LOOPBACK}:PORT) instead.")
    parser.add_argument("--endpoint", default="/v1/ask", choices=sorted(ENDPOINTS.values()), help="With --url.")
    parser.add_argument("--datasets", default="sample,korquad")
    parser.add_argument("--pipelines", default="bm25,bm25+extractive")
    parser.add_argument("--modes", default="batched,unbatched")
    parser.add_argument("--concurrency", default="1,8,32,128", type=lambda s: [int(c) for c in s.split(",")])
    parser.add_argument("--requests", type=int, default=400, help="Requests per concurrency level at most.")
    parser.add_argument("--time-limit-s", type=float, default=60.0, help="Seconds per concurrency level at most.")
    parser.add_argument("--request-timeout-s", type=float, default=300.0, help="The client's, per request.")
    parser.add_argument(
        "--server-timeout-s",
        type=float,
        default=240.0,
        help="The servers' --request-timeout-s: above the wait of the last of 128 clients with batching off.",
    )
    parser.add_argument("--start-timeout-s", type=float, default=900.0, help="Server start (models trained once).")
    parser.add_argument("--max-queue", type=int, default=None, help="Default: 2 × the largest concurrency.")
    parser.add_argument("--korquad-questions", type=int, default=300)
    parser.add_argument("--korquad-reader-model", default=KORQUAD_LEXICAL, help="extractive.model on KorQuAD.")
    parser.add_argument("--check-run", action="store_true", help="Compare /v1/ask with `odqa run`'s predictions.")
    parser.add_argument("--overload", action="store_true", help="Add the overload run (2× the queue limit).")
    parser.add_argument("--overload-only", action="store_true", help="Only the overload run.")
    parser.add_argument("--overload-queue", type=int, default=16)
    parser.add_argument("--overload-batch", type=int, default=8)
    parser.add_argument("--overload-requests", type=int, default=1500, help="Requests of the overload run at most.")
    args = parser.parse_args()
    from _common import print_rendered

    if print_rendered(args, render):
        return
    header = run_header("plugins/odqa-serve/odqa_serve", "odqa-serve", "fastapi", "uvicorn", "httpx")
    if args.url:
        payload = {**header, **run_url(args)}
        write_json(args.out, "serve_load_url.json", payload)
        print(json.dumps(payload, ensure_ascii=False, indent=1))
        return
    # the sample's demo reader is trained on first use: into the scratch directory, not the user's cache
    os.environ.setdefault("ODQA_CACHE_DIR", str(Path(args.out) / "cache"))
    max_queue = args.max_queue or 2 * max(args.concurrency)
    scenarios = []
    pools = {}
    for dataset in args.datasets.split(","):
        if dataset == "sample":
            pools[dataset] = sample_pool()
        elif dataset == "korquad":
            path = require_korquad(args.korquad)
            if path is not None:
                pools[dataset] = korquad_pool(path, args.korquad_questions)
        else:
            raise SystemExit(f"unknown dataset {dataset!r} (sample, korquad)")
    if not args.overload_only:
        for dataset, pool in pools.items():
            for pipeline in args.pipelines.split(","):
                for mode in args.modes.split(","):
                    extra = ["--max-queue", str(max_queue), "--request-timeout-s", str(args.server_timeout_s)]
                    scenarios.append(run_scenario(args, dataset, pipeline, mode, pool, extra))
    if args.overload or args.overload_only:
        extra = ["--max-queue", str(args.overload_queue), "--max-batch", str(args.overload_batch)]
        extra += ["--request-timeout-s", str(args.server_timeout_s)]
        args.requests = args.overload_requests
        scenario = run_scenario(
            args, "sample", "bm25+extractive", "batched", sample_pool(), extra, [2 * args.overload_queue], True
        )
        scenario["mode"] = "overload"
        scenarios.append(scenario)
    payload = {**header, "max_queue": max_queue, "scenarios": scenarios}
    write_json(args.out, "serve_load.json", payload)
    show_markdown(args.out, "serve_load.md", render(payload))


if __name__ == "__main__":
    main()
