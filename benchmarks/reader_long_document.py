"""A reader on one long, unsplit document: peak memory and time for 1, 10 and 100 questions.

Question answered: "what does reading a 5 MB document cost, and does it stay bounded as questions are added?"
(issue 14 §4: the extractive reader took 8.5 GB and more than 5 minutes, without a progress bar, on 2 questions.)
The document is built at run time: the bundled sample's passages in a seeded random order, joined until it holds
``--mb`` MB of UTF-8 (Korean, some English and digits); it is never written to the repository. Every question of
the sample (cycled) is asked of that one document (``reader_top_k`` does not matter: a corpus of one document gives
one passage per question).

Each measurement runs in a fresh Python process, so its peak RSS (``ru_maxrss``) is its own: load the reader,
read, report. ``--code DIR`` runs the reader of another checkout (e.g. the commit before streaming, unpacked with
``git archive <commit> | tar -x -C DIR``) through ``PYTHONPATH``, for a before/after table on the same machine. A
process whose RSS passes ``--rss-limit-gb`` (the old reader grew by ~1 GB per question), or that runs longer than
``--time-limit-s``, is stopped, and the table says so with the largest RSS seen. The answers of the runs that
finish are compared by digest: streaming must not change them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, benchmark_parser, markdown_table, run_header, write_json  # noqa: E402

CHILD = "--child"


def long_document(megabytes: float, seed: int) -> str:
    from odqa_core import data

    passages = [d.text for d in data.load_corpus(data.sample_corpus_path())]
    rng = random.Random(seed)
    pieces, size = [], 0
    while size < megabytes * 1_000_000:
        text = rng.choice(passages)
        pieces.append(text)
        size += len(text.encode()) + 1
    return " ".join(pieces)


def child(args: argparse.Namespace) -> None:
    """One measurement, in this process: JSON on the last line of stdout."""
    import resource

    import numpy as np

    from odqa_core import data, plugins
    from odqa_core.types import Document, RankedResults

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    text = long_document(args.mb, args.seed)
    document = Document("long", text, "long")
    asked = data.load_questions(data.sample_questions_path())
    questions = [asked[i % len(asked)] for i in range(args.n)]
    options = json.loads(args.options)
    reader = plugins.create("reader", args.reader, {"model": args.model, "device": "cpu", **options})
    reader.warm_up()
    loaded = rss_mb()
    results = RankedResults(np.zeros((args.n, 1), np.int64), np.zeros((args.n, 1), np.float32), [document])
    start = time.perf_counter()
    predictions = reader.read(questions, results, n_best=5)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256(
        json.dumps([[(p.answer, p.start, round(p.score, 4)) for p in preds] for preds in predictions]).encode()
    ).hexdigest()[:12]
    print(
        json.dumps(
            {
                "chars": len(text),
                "bytes": len(text.encode()),
                "loaded_rss_mb": round(loaded),
                "peak_rss_mb": round(rss_mb()),
                "read_s": round(seconds, 1),
                "answers_digest": digest,
                "first_answer": predictions[0][0].answer if predictions and predictions[0] else None,
            }
        )
    )


def measure(args: argparse.Namespace, n: int, code: str | None) -> dict:
    """Run one child; stop it when its RSS or its time passes the limit."""
    env = dict(os.environ, ODQA_PROGRESS=os.environ.get("ODQA_PROGRESS", "0"))
    if code:
        paths = [code, *(str(p) for p in sorted(Path(code, "plugins").glob("odqa-*")))]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, __file__, CHILD, "--n", str(n)]
    command += ["--mb", str(args.mb), "--seed", str(args.seed), "--reader", args.reader, "--model", args.model]
    command += ["--options", args.options, "--threads", str(args.threads)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    limit_kb = args.rss_limit_gb * 1024**2
    peak_kb = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
        except (OSError, StopIteration, ValueError):
            rss_kb = 0
        peak_kb = max(peak_kb, rss_kb)
        elapsed = time.perf_counter() - start
        if rss_kb > limit_kb or (args.time_limit_s and elapsed > args.time_limit_s):
            process.kill()
            process.wait()
            why = f"RSS passed {args.rss_limit_gb} GB" if rss_kb > limit_kb else "still reading"
            return {
                "stopped": f"{why} after {elapsed:.0f} s (RSS seen: {peak_kb / 1024:,.0f} MB)",
                "wall_s": round(elapsed, 1),
            }
        time.sleep(0.2)
    out = process.stdout.read() if process.stdout else ""
    if process.returncode:
        return {"stopped": f"exit code {process.returncode}", "wall_s": round(time.perf_counter() - start, 1)}
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def main() -> None:
    parser = benchmark_parser(__doc__, out="reader-long-document")
    parser.add_argument(CHILD, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--questions", default="1,10,100", help="Question counts to measure.")
    parser.add_argument("--mb", type=float, default=5.0, help="Size of the document, MB of UTF-8.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reader", default="extractive")
    parser.add_argument("--model", default="sample", help="The reader's model (default: the sample's demo one).")
    parser.add_argument("--options", default="{}", help="More reader options, a JSON object.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    parser.add_argument("--code", default=None, help="Also measure the reader of this checkout (before/after).")
    parser.add_argument("--rss-limit-gb", type=float, default=6.0, help="Stop a run whose RSS passes this.")
    parser.add_argument("--time-limit-s", type=float, default=0, help="Stop a run that takes longer (0: never).")
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    counts = [int(n) for n in args.questions.split(",")]
    codes = [("this checkout", None)] + ([(f"{args.code}", args.code)] if args.code else [])
    info = run_header("plugins/odqa-readers/odqa_readers", "torch", "transformers", "tokenizers")
    print(f"# {info['command']}\n# {info['machine']}\n# {info['source']}")
    print(f"# load average before: {os.getloadavg()}")
    rows, runs = [], []
    for n in counts:
        for label, code in codes:
            result = measure(args, n, code)
            runs.append({"questions": n, "code": label, **result})
            print(json.dumps(runs[-1], ensure_ascii=False), flush=True)
            rows.append(
                [
                    n,
                    label,
                    result.get("stopped") or f"{result['peak_rss_mb']:,}",
                    result.get("loaded_rss_mb", "—"),
                    result.get("read_s", "—"),
                    result["wall_s"],
                    result.get("answers_digest", "—"),
                ]
            )
    print(f"# load average after: {os.getloadavg()}")
    header = ["questions", "code", "peak RSS MB", "RSS after loading MB", "read s", "process wall s", "answers"]
    print(markdown_table(header, rows))
    write_json(args.out, "results.json", {**info, "runs": runs})


if __name__ == "__main__":
    os.chdir(REPO)
    main()
