"""DPR training throughput: one process against ``odqa train dpr --nproc N`` (torch DDP, gloo on CPU).

Question answered: "on this machine, how much faster does DPR train with N processes than with one?" (issue 18,
section 3). Both train the same global batch — one process with ``--batch-size N·B``, N processes with
``--batch-size B`` each — so they take the same steps and see the same examples (the in-batch negatives are
all-gathered). Each run is a fresh ``odqa train dpr`` (the installed console script) on the bundled sample with a
bootstrap model of each ``--sizes``; the training seconds are the epochs' ``train_s`` in ``report.json`` (the
steps, without evaluation, checkpoints or the start-up), steps = epochs × ceil(examples / global batch). One
process runs twice: with torch's default threads (one per core) and with one thread (``OMP_NUM_THREADS=1``);
``--nproc`` gives each rank ``cores / N`` threads (as torchrun does). On a machine other work shares, several
threads in one process contend with it far more than one thread per process does, so the one-thread process is
the fair baseline there. Median of ``--runs`` runs; the modes alternate run by run.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, header_lines, run_header  # noqa: E402


def train(
    size: str, nproc: int, threads: int | None, global_batch: int, epochs: int, passage_length: int, out: Path
) -> dict:
    odqa = Path(sys.executable).with_name("odqa")
    command = [
        str(odqa),
        *f"train dpr --bootstrap {size} --vocab-size 4000 --device cpu --pooling mean --epochs {epochs} "
        f"--ict-epochs 0 --hard-negatives 1 --passage-max-length {passage_length} --query-max-length 32 "
        f"--eval-k 1,5,20 --select acc@20 --seed 0 --output {out}".split(),
        "--batch-size",
        str(global_batch // nproc),
    ]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    report = json.loads((out / "report.json").read_text())
    seconds = sum(row["train_s"] for row in report["epochs"])
    steps = epochs * math.ceil(report["n_train"] / global_batch)
    return {"train_s": seconds, "steps": steps, "examples": epochs * report["n_train"]}


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sizes", default="tiny,small", help="Bootstrap BERT sizes, comma-separated.")
    parser.add_argument("--nproc", type=int, default=2, help="Processes of the DDP runs.")
    parser.add_argument("--global-batch", type=int, default=16, help="Questions per step, all ranks together.")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--passage-max-length", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(header_lines(run_header("plugins/odqa-dense/odqa_dense", "torch", "transformers")))
    rows = []
    for size in args.sizes.split(","):
        # (processes, threads per process): None = torch's default (one per core) in one process, cores/N in N
        modes: dict[tuple[int, int | None], list[dict]] = {(1, None): [], (1, 1): [], (args.nproc, None): []}
        with tempfile.TemporaryDirectory(prefix="odqa-ddp-bench-") as tmp:
            for run in range(args.runs):
                for nproc, threads in modes:
                    out = Path(tmp) / f"{nproc}-{threads}-{run}"
                    modes[nproc, threads].append(
                        train(size, nproc, threads, args.global_batch, args.epochs, args.passage_max_length, out)
                    )
        medians = {}
        for (nproc, threads), runs in modes.items():
            seconds = statistics.median(r["train_s"] for r in runs)
            medians[nproc, threads] = seconds
            steps, examples = runs[0]["steps"], runs[0]["examples"]
            label = f"{nproc} × {threads or max(1, (os.cpu_count() or 1) // nproc)} thread(s)"
            rows.append((size, label, steps, seconds, steps / seconds, examples / seconds))
        one_thread, default = medians[1, 1], medians[1, None]
        rows.append((size, "speed-up", "", "", one_thread / medians[args.nproc, None], default / one_thread))
    print(f"global batch {args.global_batch}, {args.epochs} epochs, passage length {args.passage_max_length}\n")
    print("| model | processes × threads | steps | train s (median) | steps/s | examples/s |")
    print("|---|---|---:|---:|---:|---:|")
    for size, label, steps, seconds, rate, extra in rows:
        if label == "speed-up":
            print(
                f"| {size} | **{args.nproc} processes vs 1 process × 1 thread** | | | **{rate:.2f}×** | "
                f"(1 × 1 thread vs 1 × default threads: {extra:.2f}×) |"
            )
        else:
            print(f"| {size} | {label} | {steps} | {seconds:.2f} | {rate:.2f} | {extra:.1f} |")


if __name__ == "__main__":
    main()
