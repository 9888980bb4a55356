"""Kiwi analyzer: one model per process, batched tokenization (issue 17, item 5).

Question answered: "what does the ``kiwi`` analyzer cost per question, and per analyzer built, before and after the
process-wide model cache?" On KorQuAD dev's 5,774 questions, in one process, with kiwipiepy ``num_workers`` 1 and 2:

- questions/s of three ways to tokenize them: one ``tokenize(text)`` call per question (what an analyzer without a
  batch path does: ``Analyzer.tokenize_many``'s default), the ``KiwiAnalyzer`` as it was before the cache (copied
  below: a fresh ``Kiwi`` per analyzer, the list handed to kiwipiepy's batch ``Kiwi.tokenize``), and today's
  ``KiwiAnalyzer`` (a shared model, the same batch call); median of ``--reps``, the token lists of all three
  compared for equality;
- the time to build and warm up one more analyzer: before (every analyzer loads its own model) against after (the
  first in the process loads it, later ones with the same options reuse it), median of ``--reps``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    benchmark_parser,
    markdown_header,
    markdown_table,
    median,
    require_korquad,
    run_header,
    show_markdown,
    write_json,
)
from odqa_sparse.analyzers import _KIWIS as SHARED_MODELS  # noqa: E402
from odqa_sparse.analyzers import KiwiAnalyzer  # noqa: E402


class UncachedKiwiAnalyzer(KiwiAnalyzer):
    """``KiwiAnalyzer`` as it was before the process-wide cache: each analyzer loads its own model."""

    def warm_up(self) -> None:
        if self._kiwi is not None:
            return
        from kiwipiepy import Kiwi

        kwargs: dict[str, Any] = {}
        if self.num_workers is not None:
            kwargs["num_workers"] = self.num_workers
        if self.model_type is not None:
            kwargs["model_type"] = self.model_type
        self._kiwi = Kiwi(**kwargs)

    def tokenize_many(self, texts: Any) -> list[list[str]]:
        self.warm_up()
        texts = texts if isinstance(texts, list) else list(texts)
        if not texts:
            return []
        return [self._keep_forms(tokens) for tokens in self._kiwi.tokenize(texts)]


def one_at_a_time(analyzer: KiwiAnalyzer, texts: list[str]) -> list[list[str]]:
    """One ``tokenize`` call per text: the default ``Analyzer.tokenize_many``."""
    analyzer.warm_up()
    return [analyzer.tokenize(t) for t in texts]


def time_it(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(workers: int, questions: list[str], reps: int, rows: list, loads: list, result: dict) -> None:
    """The load and tokenize measurements for one ``num_workers``, appended to the tables and the result."""
    n = len(questions)
    SHARED_MODELS.clear()
    # load: before, every analyzer built loads a model; after, the first one does and the others reuse it
    old_load = [time_it(UncachedKiwiAnalyzer(num_workers=workers).warm_up)[0] for _ in range(reps)]
    first_load, _ = time_it(KiwiAnalyzer(num_workers=workers).warm_up)
    new_load = [time_it(KiwiAnalyzer(num_workers=workers).warm_up)[0] for _ in range(reps)]
    old, new = UncachedKiwiAnalyzer(num_workers=workers), KiwiAnalyzer(num_workers=workers)
    for analyzer in (old, new):
        analyzer.tokenize("워밍업")
    ways = {
        "one tokenize(text) per question": lambda: one_at_a_time(new, questions),
        "before: own model, batch call": lambda: old.tokenize_many(questions),
        "after: shared model, batch call": lambda: new.tokenize_many(questions),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    outputs: dict[str, Any] = {}
    for _ in range(reps):  # interleaved, so that load from other processes hits every way alike
        for name, fn in ways.items():
            seconds, outputs[name] = time_it(fn)
            times[name].append(seconds)
    reference = outputs["one tokenize(text) per question"]
    for name in ways:
        if outputs[name] != reference:
            raise SystemExit(f"{name}: tokens differ from one tokenize(text) per question")
        seconds = median(times[name])
        rows.append([workers, name, f"{seconds:.2f}", f"{n / seconds:,.0f}", "yes"])
        result["tokenize"].append({"workers": workers, "way": name, "seconds": times[name], "identical": True})
    loads.append([workers, f"{median(old_load):.3f}", f"{first_load:.3f}", f"{median(new_load) * 1000:.3f} ms"])
    result["load"].append({"workers": workers, "before": old_load, "first": first_load, "after": new_load})


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="kiwi_batch")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="kiwipiepy num_workers to measure")
    args = parser.parse_args()
    path = require_korquad(args.korquad)
    if path is None:
        return
    from odqa_core.data import load_questions

    header = run_header("plugins/odqa-sparse/odqa_sparse", "odqa-sparse", "kiwipiepy")
    questions = [q.text for q in load_questions(path)]
    n = len(questions)

    rows, loads, result = [], [], {"header": header, "questions": n, "tokenize": [], "load": []}
    for workers in args.workers:
        measure(workers, questions, args.reps, rows, loads, result)

    text = (
        markdown_header(header)
        + f"Tokenizing KorQuAD dev's {n:,} questions (median of {args.reps}):\n\n"
        + markdown_table(["num_workers", "way", "s", "questions/s", "tokens identical"], rows)
        + "\n\nBuilding and warming up one more `KiwiAnalyzer` (median of "
        + f"{args.reps}):\n\n"
        + markdown_table(
            ["num_workers", "before: each loads its model, s", "after: first in process, s", "after: later ones"],
            loads,
        )
        + "\n"
    )
    write_json(args.out, "kiwi_batch.json", result)
    show_markdown(args.out, "kiwi_batch.md", text)


if __name__ == "__main__":
    main()
