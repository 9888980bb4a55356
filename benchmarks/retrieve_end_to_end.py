"""``odqa retrieve`` end to end: this checkout against an earlier odqa installed in its own virtualenv.

Question answered: "how much faster is the command a user runs, ``odqa retrieve`` on KorQuAD (top 100, regex
analyzer), than at the start of issue 17?" Target: >= 3x, measured in one run on the same machine.

Protocol
- The earlier odqa is installed from its commit into a separate virtualenv (``--baseline-odqa`` is its ``odqa``
  executable), e.g. ``git archive 0da44f9 | tar -x -C /work/old0da`` then
  ``python -m venv /work/oldvenv && /work/oldvenv/bin/pip install -c constraints.txt -e . -e plugins/odqa-sparse``.
- Each odqa builds its own index (its own store format) of the same passages: KorQuAD 1.0 dev, 30-word passages
  (``--split-words 30``), BM25 okapi, regex analyzer. Index building is not timed.
- The timed command, in a fresh process each time, the two odqa's alternating (A B A B ...), median of ``--reps``:
  ``odqa retrieve --index-dir IDX --questions KorQuAD --top-k 100 --output run.jsonl`` (the same for both: the
  default JSONL run file), and for this checkout also ``--format npz`` (the binary run format, not in the earlier
  odqa). The first run of each is a warm-up (numba's cache, the page cache) and is not counted.
- The two JSONL run files are compared byte for byte.
- Single-threaded (NUMBA_NUM_THREADS etc. = 1), as a user's default ``threads=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SINGLE_THREAD_ENV,
    benchmark_parser,
    markdown_header,
    markdown_table,
    median,
    require_korquad,
    run_header,
    show_markdown,
)


def odqa_command(executable: str, *argv: str) -> list[str]:
    return [executable, *argv]


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="retrieve_end_to_end")
    parser.add_argument("--baseline-odqa", required=True, help="the earlier odqa's `odqa` executable")
    parser.add_argument("--baseline-name", default="issue start", help="label of the earlier odqa in the table")
    parser.add_argument("--odqa", default=shutil.which("odqa") or "odqa", help="this checkout's `odqa` executable")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=100)
    args = parser.parse_args()
    path = require_korquad(args.korquad)
    if path is None:
        return
    header = run_header("odqa_core")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **SINGLE_THREAD_ENV}
    systems = {args.baseline_name: args.baseline_odqa, "this checkout": args.odqa}
    commands: dict[str, list[str]] = {}
    for label, executable in systems.items():
        tag = "baseline" if label == args.baseline_name else "current"
        index = out / f"idx-{tag}"
        if index.exists():
            shutil.rmtree(index)
        subprocess.run(
            odqa_command(executable, "index", "--retriever", "bm25", "--corpus", str(path), "--index-dir", str(index))
            + ["--split-words", "30"],
            check=True,
            capture_output=True,
            env=env,
        )
        retrieve = ["retrieve", "--index-dir", str(index), "--questions", str(path), "--top-k", str(args.top_k)]
        commands[label] = odqa_command(executable, *retrieve, "--output", str(out / f"run-{tag}.jsonl"))
        if tag == "current":
            commands[f"{label}, --format npz"] = odqa_command(
                executable, *retrieve, "--format", "npz", "--output", str(out / f"run-{tag}.npz")
            )
    for argv in commands.values():  # warm-up: numba's cache, the page cache
        timed(argv, env)
    seconds: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(args.reps):
        for label, argv in commands.items():
            seconds[label].append(timed(argv, env))
    same = (out / "run-baseline.jsonl").read_bytes() == (out / "run-current.jsonl").read_bytes()
    base = median(seconds[args.baseline_name])
    rows = [
        [label, f"{median(values):.2f}", f"{base / median(values):.2f}×", ", ".join(f"{v:.2f}" for v in values)]
        for label, values in seconds.items()
    ]
    text = markdown_header(header) + markdown_table(["`odqa retrieve`", "median s", "speed-up", "runs (s)"], rows)
    text += f"\nJSONL run files byte-identical: {same}\n"
    show_markdown(out, "retrieve_end_to_end.md", text)


if __name__ == "__main__":
    main()
