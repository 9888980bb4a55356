"""How long the ``odqa`` command takes to start: ``odqa --help``, ``--version``, ``plugins`` and subcommands' help.

Question answered: "does typing ``odqa --help`` feel instant?" (issue 17, item 4: ≤ 0.12 s where bare Python
takes ≈ 0.04 s). Each command runs ``--runs`` times as a fresh process (the installed ``odqa`` console script run
by this Python, as a user runs it; output discarded), after one untimed warm-up run; the table gives the median and
the minimum wall time, with ``python -c pass`` (the interpreter alone, the floor) and ``python -c "import numpy"``
for scale. The last column lists the heavy modules each command imported (numpy, torch, ... and the plugins'
component modules): ``sys.modules`` after running the same command line in-process, as the console script does
(``-X importtime`` misses modules imported through ``importlib``, as entry points and lazy references are).

``--baseline DIR`` measures an older checkout side by side, in the same run: DIR (e.g. ``git archive <commit> |
tar -x -C DIR``) and its ``plugins/*`` directories go first on PYTHONPATH, so the installed entry points load
DIR's code; the runs of the two alternate command by command. ``--block`` passes ``ODQA_BLOCK_PLUGINS`` (the dev
environment has tests/outside_plugin installed, whose module imports odqa_core.testing: pytest and numpy).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, command_line, machine, source_state  # noqa: E402

#: Top-level modules the light commands must not import (the list of tests/test_cli_start.py).
HEAVY = ("numpy", "torch", "transformers", "faiss", "scipy", "numba", "sklearn", "kiwipiepy", "pytest")
#: The plugin packages' modules that registration itself imports (their package, the entry point, hook state).
LIGHT_PLUGIN_MODULES = ("plugin", "demo")

COMMANDS = (
    ("--help",),
    ("--version",),
    ("plugins",),
    ("train", "--help"),
    ("run", "--help"),
    ("retrieve", "--help"),
    ("sweep", "--help"),
    ("train", "dpr", "--help"),
    ("train", "reader", "--help"),
)


def environment(source: Path | None, block: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if source is not None:
        paths = [source, *sorted(p for p in (source / "plugins").iterdir() if p.is_dir())]
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    if block:
        env["ODQA_BLOCK_PLUGINS"] = block
    return env


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - start


#: Runs the odqa click group as the console script does, then prints the modules imported.
MODULES_RUNNER = """
import sys
from odqa_core._cli import cli
try:
    cli(sys.argv[1:], prog_name="odqa")
except SystemExit:
    pass
print("\\nMODULES " + " ".join(sorted(sys.modules)))
"""


def heavy_imports(args: tuple[str, ...], env: dict[str, str]) -> list[str]:
    """The heavy modules and plugin component modules that ``odqa args`` imports."""
    done = subprocess.run([sys.executable, "-c", MODULES_RUNNER, *args], capture_output=True, text=True, env=env)
    found = set()
    for name in done.stdout.rpartition("\nMODULES ")[2].split():
        top = name.split(".")[0]
        if top in HEAVY:
            found.add(top)
        elif (
            top.startswith("odqa_")
            and top not in ("odqa_core", "odqa_example_plugin")
            and "." in name
            and name.split(".")[1] not in LIGHT_PLUGIN_MODULES
        ):
            found.add(".".join(name.split(".")[:2]))
    return sorted(found)


def summarize(modules: list[str]) -> str:
    """``numpy, torch`` and, for the plugin modules, how many of each package: ``odqa_dense ×6``."""
    if not modules:
        return "none"
    heavy = [m for m in modules if "." not in m]
    counts: dict[str, int] = {}
    for m in modules:
        if "." in m:
            counts[m.split(".")[0]] = counts.get(m.split(".")[0], 0) + 1
    return ", ".join([*heavy, *(f"{package} ×{n}" for package, n in counts.items())])


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--runs", type=int, default=30, help="Timed runs per command (default 30).")
    parser.add_argument("--odqa", default=shutil.which("odqa"), help="The odqa console script (default: on PATH).")
    parser.add_argument("--baseline", type=Path, default=None, help="An older checkout to measure side by side.")
    parser.add_argument("--block", default=None, help="ODQA_BLOCK_PLUGINS for every odqa run (e.g. example).")
    args = parser.parse_args()
    if args.odqa is None:
        sys.exit("Error: no odqa console script on PATH; install odqa or pass --odqa")
    print(f"# {command_line()}")
    print(f"# {machine()}")
    print(f"# current: {source_state('odqa_core')}; {source_state('plugins')}")
    if args.baseline is not None:
        print(f"# baseline: {args.baseline}")
    variants = {"current": environment(None, args.block)}
    if args.baseline is not None:
        variants = {"baseline": environment(args.baseline.resolve(), args.block), **variants}
    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ('python -c "import numpy"', [sys.executable, "-c", "import numpy"], None),
        *((" ".join(("odqa", *command)), [sys.executable, args.odqa, *command], command) for command in COMMANDS),
    ]
    print(f"\n{args.runs} runs each, wall time of a fresh process in seconds: median (min)\n")
    print("| command | " + " | ".join(variants) + " | heavy modules imported (" + " → ".join(variants) + ") |")
    print("|---|" + "---:|" * len(variants) + "---|")
    for label, argv, command in rows:
        times: dict[str, list[float]] = {name: [] for name in variants}
        for env in variants.values():
            wall_time(argv, env)  # warm the caches
        for _ in range(args.runs):  # alternate, so that a busy moment of the shared machine hits both
            for name, env in variants.items():
                times[name].append(wall_time(argv, env))
        cells = [f"{statistics.median(t):.3f} ({min(t):.3f})" for t in times.values()]
        heavy = "—"
        if command is not None:
            heavy = " → ".join(summarize(heavy_imports(command, env)) for env in variants.values())
        print(f"| `{label}` | " + " | ".join(cells) + f" | {heavy} |", flush=True)


if __name__ == "__main__":
    main()
