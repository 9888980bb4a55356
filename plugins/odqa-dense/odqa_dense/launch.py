"""``odqa train dpr --nproc N``: N local ranks of a DDP training (:mod:`odqa_dense.distributed`), each a
``python -m odqa_dense.launch SPEC.json`` subprocess with torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1`` and a free loopback port). The spec file holds the resolved options as
JSON (nothing pickled). When a rank fails the others are stopped and its one-line error is reported, naming it; a
rank whose launcher is gone stops too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odqa_core.errors import OdqaError, UsageError
from odqa_dense.distributed import FOLLOWER_PREFIX, RankFailed, environment_world_size, shutdown

#: ``--nproc`` children write their one-line error here (the launcher reports it, naming the rank).
ERROR_FILE_ENV = "ODQA_RANK_ERROR_FILE"
#: The ``--nproc`` launcher's pid: its ranks stop when it is gone.
LAUNCHER_ENV = "ODQA_LAUNCHER_PID"
#: ``--nproc`` larger than the CPU count needs this set to 1 (on a CPU every rank wants a core of its own).
OVERSUBSCRIBE_ENV = "ODQA_ALLOW_OVERSUBSCRIBE"


def check_nproc(nproc: int, device: str) -> None:
    """``--nproc``: a positive count, on a CPU no more than its cores unless ``ODQA_ALLOW_OVERSUBSCRIBE=1``."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise UsageError(f"nproc must be a positive number of processes, got {nproc!r}")
    cpus = os.cpu_count() or 1
    if nproc > cpus and os.environ.get(OVERSUBSCRIBE_ENV) != "1" and not _on_gpu(device):
        raise UsageError(
            f"nproc {nproc} is more than the {cpus} CPU cores of this machine (each rank wants one); "
            f"set {OVERSUBSCRIBE_ENV}=1 to run them anyway"
        )
    if nproc > 1 and _on_gpu(device):
        import torch

        if nproc > torch.cuda.device_count():
            raise UsageError(f"nproc {nproc} is more than the {torch.cuda.device_count()} GPUs (one rank per GPU)")
    if environment_world_size() > 1:
        raise UsageError("--nproc launches the ranks itself; do not combine it with torchrun")


def _on_gpu(device: str) -> bool:
    if device in ("cpu", "mps"):
        return False
    import torch  # only asked when --nproc exceeds the cores

    return torch.cuda.is_available()


def rank_environment(rank: int, world_size: int, port: int) -> dict[str, str]:
    """This process's environment plus what ``torch.distributed``'s env:// rendezvous reads, as torchrun sets it,
    for local rank ``rank`` of ``world_size`` on one machine (loopback, ``port``)."""
    return {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_WORLD_SIZE": str(world_size),
    }


def free_port() -> int:
    """A free loopback TCP port for the rendezvous (asked of the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(spec: dict[str, Any], nproc: int, *, poll_s: float = 0.2) -> None:
    """Run ``nproc`` local ranks of the training described by ``spec`` (``python -m odqa_dense.launch``,
    one subprocess each, ``MASTER_ADDR=127.0.0.1`` and a free port) and wait for them. When one fails the others
    are stopped and :class:`RankFailed` carries the failed rank's one-line error."""
    with tempfile.TemporaryDirectory(prefix="odqa-ddp-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        port = free_port()
        procs = []
        error_files = [Path(tmp) / f"error-{r}.txt" for r in range(nproc)]
        for r in range(nproc):
            env = {
                **rank_environment(r, nproc, port),
                ERROR_FILE_ENV: str(error_files[r]),
                LAUNCHER_ENV: str(os.getpid()),
            }
            # As torchrun does: the ranks share the cores instead of each starting a thread per core.
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
            if r > 0:  # one progress bar, rank 0's
                env["ODQA_PROGRESS"] = "0"
            procs.append(subprocess.Popen([sys.executable, "-m", "odqa_dense.launch", str(spec_path)], env=env))
        try:
            failed = _wait(procs, error_files, poll_s)
        finally:
            _stop(procs)
        if failed is not None:
            r, code = failed
            message = _read(error_files[r]).removeprefix(FOLLOWER_PREFIX)
            error = RankFailed(f"rank {r} of {nproc} failed: {message or f'exit code {code}'}")
            error.exit_code = code if code in (1, 2) else 1  # a usage error stays one
            raise error


def _wait(procs: list[subprocess.Popen], error_files: list[Path], poll_s: float) -> tuple[int, int] | None:
    """The failed rank to report (rank, exit code), or None when all succeed. A rank that only stopped because
    rank 0 failed says so in its error file; the rank with an error of its own is preferred."""
    while True:
        codes = [p.poll() for p in procs]
        if any(c not in (None, 0) for c in codes):
            time.sleep(poll_s)  # let the other ranks notice and finish writing their error files
            codes = [p.poll() for p in procs]
            bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            own = [(r, c) for r, c in bad if not _read(error_files[r]).startswith(FOLLOWER_PREFIX)]
            return (own or bad)[0]
        if all(c == 0 for c in codes):
            return None
        time.sleep(poll_s)


def _read(path: Path) -> str:
    return path.read_text().strip() if path.is_file() else ""


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_spec(spec_path: str) -> None:
    """One rank of :func:`launch`: train what the spec file says (the resolved ``odqa train dpr`` options)."""
    from odqa_transformers.cli import training_data

    from odqa_dense.training import TrainConfig, train_dpr

    spec = json.loads(Path(spec_path).read_text())
    config = TrainConfig(**spec["config"]).validate()
    documents, questions, dev = training_data(
        spec["corpus"], spec["questions"], spec["dev_questions"], spec["split_words"], spec["stride"]
    )
    train_dpr(documents, questions, config, spec["output"], dev_questions=dev, resume=spec["resume"])


def report_rank_error(message: str, error_type: str = "") -> None:
    """A rank's failure: into the launcher's error file (it reports it once, naming the rank), else on stderr."""
    path = os.environ.get(ERROR_FILE_ENV)
    line = " ".join(message.split())
    if path:
        Path(path).write_text(FOLLOWER_PREFIX + line if error_type == RankFailed.__name__ else line)
    else:
        print(f"Error: rank {os.environ.get('RANK', '0')}: {line}", file=sys.stderr)


def _exit_with_launcher() -> None:
    """A rank whose launcher died (killed outright, no chance to stop its ranks) stops too, rather than train on
    and write into an output nobody waits for."""
    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher:
        return

    def watch() -> None:
        while os.getppid() == int(launcher):
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="odqa-launcher-watch", daemon=True).start()


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m odqa_dense.launch SPEC.json", file=sys.stderr)
        return 2
    _exit_with_launcher()
    try:
        run_spec(argv[0])
    except OdqaError as exc:
        report_rank_error(str(exc), type(exc).__name__)
        return exc.exit_code
    except Exception as exc:  # a crash: the launcher names the rank and the error in one line
        report_rank_error(f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
