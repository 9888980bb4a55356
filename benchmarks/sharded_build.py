"""Building a sharded index on one machine: single process, the local engine and Ray with 1 and 2 workers.

Question answered: "how much faster does a BM25 index of 1M passages build on 2 Ray workers than on one, what does
each engine cost against the single index, and does searching the result cost or change anything?" (issue 18 §5).
Target: the build with 2 Ray workers >= 1.5x one Ray worker at 1M passages.

Protocol
- Corpus: ``synthetic.generate(--n, seed=0)`` as space-joined texts (``Document(id=str(i))``), queries
  ``generate_queries(--queries, seed=1)``; BM25 okapi with the ``regex`` analyzer (the setting of
  ``bm25_speed.py`` and ``sharded_index.py``). Numba and BLAS one thread per process.
- Every build runs in a fresh Python process (so that its peak RSS is its own), which first makes the corpus
  (not timed), then times one build into ``--out``:
  ``single`` (``index`` + ``save``), ``local`` (``build_sharded_index`` with ``--workers`` processes; 1 = in this
  process) and ``ray`` (a local ``ray.init(num_cpus=W)`` started before the clock, then ``build_sharded_index(...,
  engine="ray", workers=W)``: W actors of one CPU). Builds run one after another, never two at once.
- Measured per build: wall seconds; CPU seconds (user + system) of the driver and of every process under it
  (pool processes; Ray's workers and its own daemons, reported apart), read from ``/proc`` every 0.2 s; the
  driver's peak RSS during the build (sampled the same way) and before it (the corpus alone); the CPU seconds that
  every other process on the machine spent meanwhile (``/proc/stat`` less the above: what shared the cores).
  Parallel efficiency = (CPU seconds of the build) / (wall seconds x workers).
- Numba's kernels are compiled into its on-disk cache before the first build, so no process times a compile.
- Search (one more fresh process): the single index and the ``--shards``-shard index (the local build with one
  worker) opened from disk with the local engine and with Ray (one actor per shard, ``ray.init(num_cpus=2)``),
  every query in one ``search(queries, k)`` call, k = 10 and 100, ``--repeats`` times alternating, median; the
  top-k ids and float32 scores of each sharded index against the single index's, exactly. Every other sharded
  build of the same shard count is checked to hold the same arrays as that one, shard by shard, byte for byte.

Results are printed as Markdown tables and written to ``--out`` as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    benchmark_parser,
    markdown_header,
    markdown_table,
    median,
    run_header,
    single_thread_env,
    write_json,
)

OPTIONS = {"variant": "okapi", "analyzer": "regex"}
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _proc_table() -> dict[int, tuple[int, str, float, float]]:
    """Every process: pid -> (parent pid, command name, CPU seconds, RSS MB), from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[1] = ppid, fields[11] = utime, fields[12] = stime, fields[21] = rss (pages)
        table[int(entry)] = (
            int(fields[1]),
            name,
            (int(fields[11]) + int(fields[12])) / TICKS,
            int(fields[21]) * PAGE_MB,
        )
    return table


def _machine_busy_s() -> float:
    """CPU seconds every process on the machine has spent (``/proc/stat``: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


class TreeSampler:
    """Samples, every ``interval`` s, the CPU seconds of this process and of every process under it (the last value
    seen of each, so that processes that exit before the end still count) and this process's RSS."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.cpu: dict[int, tuple[str, float]] = {}
        self.start_cpu: dict[int, float] = {}
        self.pool: set[int] = set()
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _descendants(self, table):
        me = os.getpid()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        out, todo = [], [me]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def sample(self) -> None:
        table = _proc_table()
        for pid in self._descendants(table):
            _, name, cpu, rss = table[pid]
            if pid not in self.cpu:
                try:
                    if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        self.pool.add(pid)  # a process-pool worker (spawn), not one of Ray's daemons
                except OSError:
                    pass
            self.cpu[pid] = (name, cpu)
            if pid == os.getpid():
                self.peak_rss_mb = max(self.peak_rss_mb, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self.machine_start = _machine_busy_s()
        self.sample()
        self.start_cpu = {pid: cpu for pid, (_, cpu) in self.cpu.items()}
        self.peak_rss_mb = 0.0
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sample()
        self.machine_s = _machine_busy_s() - self.machine_start
        self._stop.set()
        self._thread.join()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds spent during the block: this process, pool/Ray workers, Ray's daemons, and every other process
        on the machine (other people's work sharing its cores)."""
        out = {"driver": 0.0, "workers": 0.0, "ray_daemons": 0.0}
        for pid, (name, cpu) in self.cpu.items():
            spent = cpu - self.start_cpu.get(pid, 0.0)
            if pid == os.getpid():
                out["driver"] += spent
            elif name.startswith("ray::") or pid in self.pool:
                out["workers"] += spent
            else:
                out["ray_daemons"] += spent
        out["others"] = max(0.0, self.machine_s - sum(out.values()))
        return out


def _corpus(n: int, n_queries: int):
    import synthetic

    from odqa_core import Document

    corpus = synthetic.generate(n, seed=0)
    documents = [Document(id=str(i), text=t) for i, t in enumerate(corpus.texts())]
    queries = synthetic.generate_queries(corpus, n_queries, seed=1).texts()
    return documents, queries


def _rss_mb() -> float:
    return _proc_table()[os.getpid()][3]


def measure_build(args) -> dict:
    """One build (``--mode``), in this fresh process."""
    from odqa_core import plugins
    from odqa_core.shards import build_sharded_index

    documents, _ = _corpus(args.n, args.queries)
    target = Path(args.target)
    shutil.rmtree(target, ignore_errors=True)
    result = {"mode": args.mode, "shards": args.shards, "workers": args.workers, "documents": len(documents)}
    ray_start = None
    if args.mode == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_start = time.perf_counter() - t0
    result["ray_init_s"] = ray_start
    result["rss_before_mb"] = _rss_mb()
    retriever = plugins.create("retriever", "bm25", dict(OPTIONS))
    with TreeSampler() as sampler:
        t0 = time.perf_counter()
        if args.mode == "single":
            retriever.warm_up()
            retriever.index(documents)
            retriever.save(target)
        else:
            build_sharded_index(retriever, documents, target, args.shards, engine=args.mode, workers=args.workers)
        result["wall_s"] = time.perf_counter() - t0
    result["cpu_s"] = sampler.cpu_seconds()
    result["driver_peak_rss_mb"] = sampler.peak_rss_mb
    return result


def measure_search(args) -> dict:
    import numpy as np
    import ray

    from odqa_core.pipeline import load_retriever
    from odqa_core.shards import ShardedRetriever

    _, queries = _corpus(args.n, args.queries)
    out = Path(args.out)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    indexes = {"single": load_retriever(out / "single")}
    for shards in args.shard_counts:
        indexes[f"{shards} shards, local"] = load_retriever(out / f"local-{shards}-w1")
        indexes[f"{shards} shards, Ray"] = ShardedRetriever.load(out / f"local-{shards}-w1", {"engine": "ray"})
    for index in indexes.values():
        index.warm_up()
        index.search(queries[:50], 10)
    rows = {}
    for k in (10, 100):
        times: dict[str, list[float]] = {label: [] for label in indexes}
        results = {}
        for _ in range(args.repeats):
            for label, index in indexes.items():
                t0 = time.perf_counter()
                results[label] = index.search(queries, k)
                times[label].append(time.perf_counter() - t0)
        single = results["single"]
        rows[k] = {
            label: {
                "s": median(times[label]),
                "same": bool(
                    np.array_equal(single.indices, r.indices)
                    and np.array_equal(single.scores.view(np.int32), r.scores.view(np.int32))
                ),
            }
            for label, r in results.items()
        }
    return {"queries": len(queries), "search": rows}


def _same_files(a: Path, b: Path) -> bool:
    """Two sharded indexes with the same shards, array for array (build ids and checksums of manifests aside)."""
    for shard in sorted(p.name for p in a.iterdir() if p.name.startswith("shard-")):
        for file in sorted((a / shard).iterdir()):
            if file.suffix == ".npy" and file.read_bytes() != (b / shard / file.name).read_bytes():
                return False
    return True


def _child(args, mode: str, **extra) -> dict:
    command = [sys.executable, __file__, "--mode", mode, "--n", str(args.n), "--queries", str(args.queries)]
    command += ["--out", args.out, "--repeats", str(args.repeats), "--shards", ",".join(map(str, args.shard_counts))]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    print("#", " ".join(command[1:]), file=sys.stderr, flush=True)
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    single_thread_env()
    os.environ.setdefault("ODQA_PROGRESS", "0")
    parser = benchmark_parser(__doc__, out="sharded_build")
    parser.add_argument("--n", type=int, default=1_000_000, help="Synthetic passages.")
    parser.add_argument("--queries", type=int, default=2000, help="Synthetic queries.")
    parser.add_argument("--shards", default="2", help="Shard counts, comma-separated (e.g. 2,4).")
    parser.add_argument("--workers-list", default="1,2", help="Worker counts of the local and Ray builds.")
    parser.add_argument("--repeats", type=int, default=3, help="Search repeats (median).")
    parser.add_argument("--mode", choices=["single", "local", "ray", "search"], default=None, help=argparse_hide())
    parser.add_argument("--workers", type=int, default=1, help=argparse_hide())
    parser.add_argument("--target", default=None, help=argparse_hide())
    args = parser.parse_args()
    args.shard_counts = [int(s) for s in args.shards.split(",")]
    if args.mode is not None:  # one measurement, in this fresh process
        if args.mode == "search":
            result = measure_search(args)
        else:
            args.shards = args.shard_counts[0]
            result = measure_build(args)
        print(json.dumps(result))
        return
    header = run_header("odqa_core/shards.py", "numpy", "numba", "ray")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workers_list = [int(w) for w in args.workers_list.split(",")]
    from odqa_core import plugins

    # numba's on-disk cache filled before any clock starts: no build below pays for compiling the kernels
    plugins.create("retriever", "bm25", dict(OPTIONS)).warm_up()
    builds = [_child(args, "single", target=out / "single")]
    for shards in args.shard_counts:
        for mode in ("local", "ray"):
            for workers in workers_list:
                target = out / f"{mode}-{shards}-w{workers}"
                builds.append(_child(args, mode, shards=shards, workers=workers, target=target))
                builds[-1]["same_as_local_w1"] = _same_files(out / f"local-{shards}-w1", target)
    search = _child(args, "search")
    write_json(out, "sharded_build.json", {"header": header, "builds": builds, "search": search})

    single_wall = builds[0]["wall_s"]
    ray_one = {b["shards"]: b["wall_s"] for b in builds if b["mode"] == "ray" and b["workers"] == 1}
    table = []
    for b in builds:
        cpu = b["cpu_s"]
        busy = cpu["driver"] + cpu["workers"]
        label = "single (index + save)" if b["mode"] == "single" else f"{b['mode']}, {b['shards']} shards"
        workers = 1 if b["mode"] == "single" else b["workers"]
        table.append(
            [
                label,
                workers,
                f"{b['wall_s']:.1f}",
                f"{single_wall / b['wall_s']:.2f}x",
                f"{ray_one[b['shards']] / b['wall_s']:.2f}x" if b["mode"] == "ray" else "",
                f"{cpu['driver']:.1f}",
                f"{cpu['workers']:.1f}",
                f"{cpu['ray_daemons']:.1f}",
                f"{cpu['others']:.1f}",
                f"{busy / (b['wall_s'] * workers):.0%}",
                f"{b['rss_before_mb']:,.0f}",
                f"{b['driver_peak_rss_mb']:,.0f}",
                "" if b["mode"] == "single" else ("yes" if b["same_as_local_w1"] else "NO"),
            ]
        )
    print(markdown_header(header))
    print(
        markdown_table(
            [
                "build",
                "workers",
                "wall s",
                "vs single",
                "vs Ray 1 worker",
                "CPU s driver",
                "CPU s workers",
                "CPU s Ray daemons",
                "CPU s other work on the machine",
                "parallel efficiency",
                "driver RSS before MB",
                "driver peak RSS MB",
                "same shards",
            ],
            table,
        )
    )
    print()
    rows = []
    for k, by_label in search["search"].items():
        base = by_label["single"]["s"]
        for label, r in by_label.items():
            rows.append([label, k, f"{r['s']:.3f}", f"{r['s'] / base - 1:+.1%}", "yes" if r["same"] else "NO"])
    print(markdown_table(["index", "k", "search s (median)", "vs single", "same ids + scores"], rows))


def argparse_hide() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
