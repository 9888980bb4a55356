"""Helpers of the serve tests (a module of its own, not conftest: the name ``conftest`` is every test directory's,
so ``from conftest import`` finds another directory's when several plugins' tests run in one session)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: The pipeline every serve test answers with, as ``odqa run`` options and as settings.
PIPELINE_ARGS = ("--retriever", "bm25", "--reader", "extractive")
PIPELINE_SETTINGS = {"retrievers": ["bm25"], "reader": "extractive"}


def wait_ready(get, timeout: float = 120.0) -> dict:
    """Poll ``/v1/health`` (``get(path)`` → response) until the server says ready; returns the health body."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = get("/v1/health")
            if response.status_code == 200:
                return response.json()
            if response.headers.get("content-type", "").startswith("application/json"):
                # odqa's own 503 before warm-up (a Ray Serve proxy answers in plain text while replicas start)
                assert response.json()["status"] == "starting", response.text
        assert time.monotonic() < deadline, "the server did not get ready"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``odqa serve ARGS --port PORT`` in a subprocess on 127.0.0.1; its stderr goes to a file (the access log)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        self._log = self.log_path.open("w")
        command = [sys.executable, "-c", "from odqa_core._cli import cli; cli(prog_name='odqa')", "serve"]
        command += [*args, "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log, cwd=tmp_path)
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def wait_ready(self) -> dict:
        def get(path: str) -> httpx.Response:
            assert self.process.poll() is None, self.log()
            return self.client.get(path)

        return wait_ready(get)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8")

    def stop(self) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode
