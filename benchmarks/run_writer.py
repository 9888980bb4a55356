"""Run-file writing: the block writer of ``odqa_core._runs.write_run`` against the per-hit writer it replaced.

Question answered: "how much of ``odqa retrieve`` is writing the run file, before and after?" (issue 17, item 1).
On KorQuAD dev (30-word passages, 4,286 of them; all 5,774 questions; BM25 okapi, regex analyzer; top 100):

- the writer alone, in one process on the same ``RankedResults``: the per-hit writer (one ``json.dumps`` per
  question line built from per-hit dicts, ``Document.source_ids`` and ``round`` per hit; copied below as it was)
  against the block writer, JSONL and TREC, median of ``--reps``, outputs compared byte for byte;
- ``odqa retrieve`` end to end, the same command in fresh processes, alternately with the block writer and with
  the per-hit writer swapped in (``odqa_core._cli.write_run`` replaced before the command runs), median of
  ``--reps``, run files compared byte for byte;
- the binary ``npz`` run against ``jsonl``: file size, the writer and ``read_run`` alone (in this process), and
  ``odqa retrieve`` / ``odqa evaluate --index-dir`` end to end in fresh processes, median of ``--reps``; the two
  evaluations' JSON reports compared.

The index is built once under ``--out`` (``odqa index --retriever bm25 --split-words 30``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    benchmark_parser,
    command_line,
    median,
    require_korquad,
    source_state,
    utc_now,
)


def per_hit_write_run(
    path: str | Path, questions: Sequence[Any], results: Any, fmt: str = "jsonl", tag: str = "odqa"
) -> None:
    """``write_run`` as it was before the block writer (issue 17's baseline)."""
    from odqa_core._runs import check_finite_scores
    from odqa_core.outputs import atomic_write_lines

    check_finite_scores(questions, results)
    docs = results.documents
    with atomic_write_lines(path) as fh:
        for row, question in enumerate(questions):
            pairs = [(docs[i], float(s)) for i, s in zip(results.indices[row].tolist(), results.scores[row].tolist())]
            if fmt == "trec":
                for rank, (doc, score) in enumerate(pairs, 1):
                    fh.write(f"{question.id} Q0 {doc.id} {rank} {score:.6f} {tag}\n")
                continue
            hits = []
            for doc, score in pairs:
                hit: dict[str, Any] = {"doc_id": doc.id, "score": round(score, 6)}
                if doc.source_ids != (doc.id,):
                    hit["source_ids"] = list(doc.source_ids)
                hits.append(hit)
            fh.write(json.dumps({"id": question.id, "question": question.text, "hits": hits}, ensure_ascii=False))
            fh.write("\n")


# The command run end to end; with the per-hit writer swapped in for the baseline.
LAUNCHER = """
import sys
sys.path.insert(0, {benchmarks!r})
if {per_hit!r}:
    import odqa_core._cli, run_writer
    odqa_core._cli.write_run = run_writer.per_hit_write_run
from odqa_core._cli import cli
sys.argv = ["odqa", *{argv!r}]
sys.exit(cli())
"""


def timed_command(argv: list[str], per_hit: bool = False) -> float:
    code = LAUNCHER.format(benchmarks=str(Path(__file__).resolve().parent), per_hit=per_hit, argv=argv)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="run_writer")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=100)
    args = parser.parse_args()
    path = require_korquad(args.korquad)
    if path is None:
        return
    out = Path(args.out)
    index = out / "idx"
    if not index.is_dir():
        subprocess.run(
            ["odqa", "index", "--retriever", "bm25", "--corpus", str(path), "--index-dir", str(index)]
            + ["--split-words", "30"],
            check=True,
        )
    print(f"{command_line()}\n{utc_now()}; {source_state('odqa_core/_runs.py')}\n")

    from odqa_core import data
    from odqa_core._runs import write_run
    from odqa_core.pipeline import Pipeline, PipelineSpec

    questions = data.load_questions(path)
    spec = PipelineSpec.from_settings({"top_k": args.top_k}, sample=False, index_dirs=[str(index)])
    results = Pipeline.from_spec(spec).retrieve(questions)
    print(f"{len(results.documents):,} passages, {len(questions):,} questions, top {results.k}\n")
    print("| writer alone | per-hit (s) | block (s) | speed-up | same bytes | MB |")
    print("|---|---|---|---|---|---|")
    for fmt in ("jsonl", "trec"):
        times: dict[str, list[float]] = {"per-hit": [], "block": []}
        for _ in range(args.reps):
            for name, writer in (("per-hit", per_hit_write_run), ("block", write_run)):
                start = time.perf_counter()
                writer(out / f"{name}.{fmt}", questions, results, fmt=fmt)
                times[name].append(time.perf_counter() - start)
        before, after = median(times["per-hit"]), median(times["block"])
        same = (out / f"per-hit.{fmt}").read_bytes() == (out / f"block.{fmt}").read_bytes()
        size = (out / f"block.{fmt}").stat().st_size / 1e6
        print(f"| {fmt} | {before:.3f} | {after:.3f} | {before / after:.1f}× | {same} | {size:.1f} |")

    print("\n| `odqa retrieve` end to end | per-hit writer (s) | block writer (s) | speed-up | same bytes |")
    print("|---|---|---|---|---|")
    ends: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.reps):
        for per_hit in (True, False):
            argv = ["retrieve", "--index-dir", str(index), "--questions", str(path), "--top-k", str(args.top_k)]
            argv += ["--output", str(out / f"retrieve-{'per-hit' if per_hit else 'block'}.jsonl")]
            ends[per_hit].append(timed_command(argv, per_hit))
    same = (out / "retrieve-per-hit.jsonl").read_bytes() == (out / "retrieve-block.jsonl").read_bytes()
    before, after = median(ends[True]), median(ends[False])
    runs = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(ends[True], ends[False]))
    print(f"| jsonl, top {args.top_k} | {before:.2f} | {after:.2f} | {before / after:.2f}× | {same} |")
    print(f"\nruns (per-hit/block, s): {runs}")
    compare_formats(out, index, path, questions, results, args.reps)


def compare_formats(out: Path, index: Path, path: Path, questions: Sequence[Any], results: Any, reps: int) -> None:
    """``npz`` against ``jsonl``: size, writer, reader, and the two commands end to end."""
    from odqa_core._runs import read_run, write_run

    def seconds(action: Any, *args: Any, **kwargs: Any) -> float:
        start = time.perf_counter()
        action(*args, **kwargs)
        return time.perf_counter() - start

    rows, reports = {}, {}
    for fmt in ("jsonl", "npz"):
        run_file = out / f"formats.{fmt}"
        write_s = median([seconds(write_run, run_file, questions, results, fmt=fmt) for _ in range(reps)])
        read_s = median([seconds(read_run, run_file) for _ in range(reps)])
        retrieve = ["retrieve", "--index-dir", str(index), "--questions", str(path), "--top-k", str(results.k)]
        retrieve += ["--format", fmt, "--output", str(run_file)]
        retrieve_s = median([timed_command(retrieve) for _ in range(reps)])
        evaluate = ["evaluate", "--run", str(run_file), "--questions", str(path), "--index-dir", str(index)]
        evaluate_s = median([timed_command(evaluate) for _ in range(reps)])
        reports[fmt] = subprocess.run(
            ["odqa", *evaluate, "--json"], check=True, capture_output=True, text=True
        ).stdout
        rows[fmt] = (run_file.stat().st_size / 1e6, write_s, read_s, retrieve_s, evaluate_s)
    print("\n| format | MB | write_run (s) | read_run (s) | `odqa retrieve` (s) | `odqa evaluate` (s) |")
    print("|---|---|---|---|---|---|")
    for fmt, (size, write_s, read_s, retrieve_s, evaluate_s) in rows.items():
        print(f"| {fmt} | {size:.1f} | {write_s:.3f} | {read_s:.3f} | {retrieve_s:.2f} | {evaluate_s:.2f} |")
    print(f"\nidentical evaluation reports (--json): {reports['jsonl'] == reports['npz']}")


if __name__ == "__main__":
    main()
