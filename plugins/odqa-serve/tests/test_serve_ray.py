"""``odqa serve --engine ray``: the app as a Ray Serve deployment of 2 replicas on a local ``ray.init(num_cpus=2)``
answers the bundled sample's questions exactly as the app in one process; too many replicas and an unreachable
cluster are one-line errors. Skipped without Ray Serve (the ``odqa-serve[ray]`` extra): it runs in the tox env
``scale`` only."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from odqa_core.errors import UsageError
from odqa_core.testing import assert_one_line_error, run_cli

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from odqa_serve import ray_serve  # noqa: E402
from odqa_serve.app import ServeSettings, create_app  # noqa: E402
from odqa_serve.engine import build_pipeline  # noqa: E402
from serve_testing import free_port, wait_ready  # noqa: E402

#: BM25 alone: the replicas are other processes, which build their pipeline themselves (no demo reader to train).
SETTINGS = {"retrievers": ["bm25"]}


def test_unreachable_ray_address_is_one_line(tmp_path):
    """First: Ray's log lines, once this process has started Ray, may land in the captured output."""
    result = run_cli(f"serve --retriever bm25 --engine ray --ray-address 127.0.0.1:9 --port {free_port()}")
    assert_one_line_error(result, contains="127.0.0.1:9")


def test_replicas_need_the_ray_engine(tmp_path):
    result = run_cli(f"serve --retriever bm25 --replicas 2 --port {free_port()}")
    assert_one_line_error(result, contains="--engine ray")


def test_cli_serves_on_ray_and_stops_on_sigterm(tmp_path):
    """Before this process starts Ray: the command starts its own local Ray, serves, and on
    SIGTERM shuts Ray Serve down and exits 0 (Ray's own SIGTERM handler would abort it)."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-c", "from odqa_core._cli import cli; cli(prog_name='odqa')", "serve"]
    command += ["--retriever", "bm25", "--engine", "ray", "--replicas", "1", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 180
        while "on Ray Serve" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/retrieve", json={"question": "부산의 인구는?", "top_k": 1})
        assert answer.status_code == 200 and answer.json()["passages"][0]["doc_id"] == "doc-001"
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/v1/health")


@pytest.fixture(scope="module")
def local_ray():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray_serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def replicas(local_ray):
    """The deployment: 2 replicas, each with its own BM25 pipeline over the sample; its proxy's URL."""
    port = free_port()
    factory = functools.partial(build_pipeline, SETTINGS)
    ray_serve.deploy(factory, ServeSettings(max_wait_ms=2.0), replicas=2, host="127.0.0.1", port=port)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=60) as client:
        wait_ready(client.get)
    yield url
    ray_serve.shutdown()


def _without_timings(body: dict) -> dict:
    body = dict(body)
    body.pop("timings_ms")
    return body


async def _ask_all(url: str, path: str, questions: list[str], concurrency: int) -> list[dict]:
    """Every question on ``path``, ``concurrency`` at a time (the replicas' micro-batches mix them)."""
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(text: str) -> dict:
            async with limit:
                response = await client.post(path, json={"question": text})
            assert response.status_code == 200, response.text
            return _without_timings(response.json())

        return list(await asyncio.gather(*(one(text) for text in questions)))


def test_two_replicas_answer_as_one_process(replicas, sample_questions):
    status = serve.status().applications[ray_serve.APP_NAME].deployments["odqa"]
    assert status.replica_states.get("RUNNING") == 2
    texts = [q.text for q in sample_questions]
    with TestClient(create_app(functools.partial(build_pipeline, SETTINGS))) as local:
        wait_ready(local.get)
        for path in ("/v1/retrieve", "/v1/ask"):
            expected = [_without_timings(local.post(path, json={"question": t}).json()) for t in texts]
            assert asyncio.run(_ask_all(replicas, path, texts, concurrency=8)) == expected
        assert local.get("/v1/pipeline").json() == httpx.get(f"{replicas}/v1/pipeline").json()
    bad = httpx.post(f"{replicas}/v1/ask", json={"question": " "})
    assert bad.status_code == 422 and "question" in bad.json()["error"]


def test_more_replicas_than_cpus_is_refused(local_ray):
    with pytest.raises(UsageError, match="--replicas 3 needs 3 CPUs"):
        ray_serve.deploy(functools.partial(build_pipeline, SETTINGS), ServeSettings(), replicas=3, port=free_port())
