"""``odqa serve`` as a process: the command is listed without importing the web stack, a bad pipeline or address
fails at start in one line, every request is one access-log line, and SIGTERM drains the requests in flight."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from serve_testing import PIPELINE_ARGS, ServerProcess

from odqa_core.testing import cli_modules_imported

#: What listing the commands must not import: the web stack and the pipeline's heavy libraries.
WEB_AND_HEAVY = ("fastapi", "uvicorn", "starlette", "pydantic", "httpx", "torch", "numpy", "odqa_serve.cli")


def odqa(*args: str, cwd=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from odqa_core._cli import cli; cli(prog_name='odqa')", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("args", [["--help"], ["plugins"]], ids=" ".join)
def test_listing_commands_imports_neither_the_web_stack_nor_torch(args):
    # tests/outside_plugin ("example", installed with the core's tests) imports odqa_core.testing (numpy) on purpose.
    environ = {**os.environ, "ODQA_BLOCK_PLUGINS": "example"}
    output, modules, _ = cli_modules_imported(*args, env=environ)
    if args == ["--help"]:
        assert re.search(r"^  serve +Serve a pipeline over HTTP", output, re.MULTILINE), output
    else:
        assert "odqa serve" in output
    imported = [m for m in modules if any(m == n or m.startswith(n + ".") for n in WEB_AND_HEAVY)]
    assert not imported, f"odqa {' '.join(args)} imported {sorted({m.split('.')[0] for m in imported})}"


def test_serve_help_shows_the_pipeline_and_server_options():
    done = odqa("serve", "--help")
    assert done.returncode == 0, done.stderr
    for option in ("--config", "--retriever", "--reader", "--top-k", "-o, --option", "--index-dir", "--host"):
        assert option in done.stdout
    for option in ("--port", "--max-batch", "--max-wait-ms", "--max-queue", "--request-timeout-s"):
        assert option in done.stdout
    assert "--max-question-chars" in done.stdout and "--max-body-bytes" in done.stdout


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


def test_a_bad_pipeline_or_address_fails_at_start_in_one_line(tmp_path):
    assert "no-such-retriever" in one_line_error(odqa("serve", "--retriever", "no-such-retriever", cwd=tmp_path))
    error = one_line_error(odqa("serve", *PIPELINE_ARGS, "--corpus", str(tmp_path / "missing.jsonl"), cwd=tmp_path))
    assert "missing.jsonl" in error
    config = tmp_path / "pipeline.toml"
    config.write_text('retrievers = ["bm25"]\ntop_k = "many"\n', encoding="utf-8")
    assert "top_k" in one_line_error(odqa("serve", "--config", str(config), cwd=tmp_path))
    assert "--max-batch must be at least 1" in one_line_error(odqa("serve", *PIPELINE_ARGS, "--max-batch", "0"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        error = one_line_error(odqa("serve", "--retriever", "bm25", "--port", port, cwd=tmp_path))
    assert error.startswith(f"Error: cannot listen on 127.0.0.1:{port}: "), error


def test_a_pipeline_file_is_served_sigterm_drains_the_requests_in_flight_and_every_request_is_logged(tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_text('retrievers = ["bm25"]\nreader = "extractive"\nn_best = 2\ntop_k = 20\n', encoding="utf-8")
    # The first question of a batch waits up to 3 s for others: SIGTERM comes while it is in flight.
    args = ("--config", str(config), "--reader-top-k", "3", "--max-wait-ms", "3000", "--max-batch", "64")
    server = ServerProcess(tmp_path, *args)
    try:
        server.wait_ready()
        settings = server.client.get("/v1/pipeline").json()["settings"]
        assert (settings["top_k"], settings["reader_top_k"], settings["n_best"]) == (20, 3, 2)  # file, then flags
        answered: dict = {}

        def ask() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                answered["response"] = client.post("/v1/ask", json={"question": "훈민정음이 반포된 해는?"})

        asking = threading.Thread(target=ask)
        asking.start()
        while server.client.get("/v1/health").json()["queued"] != 1:
            assert asking.is_alive()
        server.process.send_signal(signal.SIGTERM)
        asking.join(60)
        response = answered["response"]
        body = response.json()
        assert response.status_code == 200 and body["answer"] == "1446년"
        assert len(body["nbest"]) == 2 and len(body["passages"]) == 3
        server.process.wait(60)
        log = server.log()
    finally:
        status = server.stop()
    assert status == 143 and log.rstrip().endswith("Terminated"), log  # odqa's exit for SIGTERM, after draining
    access = [line for line in log.splitlines() if " odqa_serve.access: " in line]
    ask_lines = [line for line in access if " POST /v1/ask " in line]
    assert len(ask_lines) == 1 and sum(" GET /v1/pipeline 200 " in line for line in access) == 1, log
    match = re.search(r"odqa_serve\.access: ([0-9a-f]{16}) POST /v1/ask 200 (\d+\.\d)ms$", ask_lines[0])
    assert match and match.group(1) == response.headers["x-request-id"], ask_lines[0]
    assert float(match.group(2)) >= 0
    # The rest are the polls of /v1/health: 503 until warmed up.
    others = [line for line in access if line not in ask_lines and " /v1/pipeline " not in line]
    assert others and all(re.search(r": [0-9a-f]{16} GET /v1/health (200|503) \d+\.\dms$", line) for line in others)
