"""Helpers shared by the benchmark scripts: machine description, KorQuAD location, timing and memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_KORQUAD = "../shared/data/korquad/KorQuAD_v1.0_dev.json"  # relative to the repository root
DEFAULT_OUT = "/tmp/odqa-bench"

SINGLE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def single_thread_env() -> None:
    """Pin the numeric libraries to one thread; call before numpy / numba are imported."""
    for key, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)


def korquad_path(option: str | None) -> Path:
    """The KorQuAD file: the option as given (absolute, or relative to the cwd then the repository root)."""
    p = Path(option or DEFAULT_KORQUAD)
    if p.is_absolute() or p.exists():
        return p
    return REPO / p


def require_korquad(option: str | None) -> Path | None:
    p = korquad_path(option)
    if not p.is_file():
        print(f"KorQuAD not found at {p} (pass --korquad PATH); skipping the KorQuAD part.")
        return None
    return p


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": mem_gb,
        "gpu": "none",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def versions(*names: str) -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "absent"
    return out


def source_state(path: str = "plugins/odqa-sparse/odqa_sparse") -> str:
    """The last commit touching ``path`` (and whether its working tree differs), to name the code measured."""
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", path], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", path], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{path} at {commit or 'no commit'}" + (" + uncommitted changes" if dirty else "")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_json(out_dir: str, name: str, payload: Any) -> Path:
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    file = path / name
    file.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    return file


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)
