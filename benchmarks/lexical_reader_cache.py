"""The lexical reader's per-passage cache (issue 19): the reader alone, before and after.

Question answered: "how long does the extractive reader with the sample's demo lexical model take to read the
bundled sample's 107 evaluation questions — one question per call (as ``odqa serve --max-batch 1`` reads them) and
all in one call — without the passage cache and with it, and are the answers the same?"

The pipeline of ``serve_load.py``'s ``bm25+extractive`` on the sample (``odqa serve --retriever bm25 --reader
extractive``: BM25 top 100, the reader over the best 10, n-best 5, the demo model ``model=sample`` trained on first
use into ``--out``'s cache) is built once and retrieves once; then only reading is timed (the lexical model's
``read`` over each question's best 10 passages, which gives what ``Pipeline.read`` gives: checked), in three
settings:

- ``before``: no cache (``passage_cache_mb=0``) and one block of up to 2,048 (question, passage) pairs, as the
  reader read before the cache (every call rebuilds the table of every passage it reads; the one other change
  of that work, the head-noun feature's substring test vectorized, is in all three);
- ``cache, cold``: a fresh cache, the new blocking (``char_block``: blocks of about 8,192 characters of passage
  text) (the first call of a server: every passage's table built once);
- ``cache, warm``: the same calls again (every table from the cache).

Each in the two modes, ``one at a time`` (107 calls of one question) and ``one batch`` (one call). Every
setting's predictions and n-best lists (answers, scores and probabilities to the bit) are compared with
``Pipeline.read``'s. Results go to ``--out`` (scratch): ``lexical_reader_cache.json`` and ``.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    benchmark_parser,
    markdown_header,
    markdown_table,
    print_rendered,
    run_header,
    show_markdown,
    timed,
    write_json,
)

UNBOUNDED = 1 << 62


def exact(predictions: list) -> list:
    return [
        [(p.answer, p.score.hex(), p.doc_id, p.start, sorted(p.metadata.items())) for p in row] for row in predictions
    ]


def measure(repeats: int) -> dict[str, Any]:
    from odqa_readers.lexical import PassageTableCache
    from odqa_serve.engine import build_pipeline

    from odqa_core import data
    from odqa_core.pipeline import retrieve
    from odqa_core.types import RankedResults

    pipeline = build_pipeline({"retrievers": ["bm25"], "reader": "extractive"})
    spec = pipeline.spec
    questions = data.load_questions(data.sample_questions_path())
    results = retrieve(pipeline.retrievers, pipeline.fuser, questions, spec.top_k, spec.batch_size, bar=False)
    model = pipeline.reader.lexical
    rows = [
        RankedResults(results.indices[i : i + 1], results.scores[i : i + 1], results.documents)
        for i in range(len(questions))
    ]

    def read(mode: str, char_block: int) -> list:
        def one(qs: list, res: Any) -> list:
            return model.read(qs, top(res), spec.n_best, label="reading", char_block=char_block)

        if mode == "one batch":
            return one(questions, results)
        return [row for i, q in enumerate(questions) for row in one([q], rows[i])]

    def top(res: Any) -> Any:  # the reader reads the best reader_top_k passages, as Pipeline.read gives them
        k = spec.reader_top_k
        return RankedResults(res.indices[:, :k], res.scores[:, :k], res.documents)

    # The same call as Pipeline.read: checked once, so that timing the model alone times the reader.
    reference = exact(pipeline.read(questions, results, reader_top_k=spec.reader_top_k, n_best=spec.n_best))
    table = []
    for mode in ("one at a time", "one batch"):
        for setting, cache_bytes, char_block in (
            ("before", 0, UNBOUNDED),
            ("cache", 64 << 20, 8192),
        ):
            for repeat in range(repeats):
                model.passage_cache = PassageTableCache(cache_bytes)
                passes = ("cold", "warm") if cache_bytes else ("",)
                for label in passes:
                    seconds, predictions = timed(lambda mode=mode, char_block=char_block: read(mode, char_block))
                    name = f"{setting}, {label}" if label else setting
                    table.append(
                        {
                            "mode": mode,
                            "setting": name,
                            "repeat": repeat,
                            "seconds": round(seconds, 3),
                            "identical": exact(predictions) == reference,
                            "cached_passages": len(model.passage_cache),
                            "cache_mib": round(model.passage_cache.bytes / 2**20, 2),
                        }
                    )
                    print(table[-1], flush=True)
    return {"questions": len(questions), "reader_top_k": spec.reader_top_k, "n_best": spec.n_best, "rows": table}


def render(result: dict[str, Any]) -> str:
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in result["rows"]:
        key = (row["mode"], row["setting"])
        if key not in best or row["seconds"] < best[key]["seconds"]:
            best[key] = row
    lines = [
        [
            mode,
            setting,
            row["seconds"],
            round(row["seconds"] * 1000 / result["questions"], 1),
            row["identical"],
            row["cached_passages"],
            row["cache_mib"],
        ]
        for (mode, setting), row in best.items()
    ]
    return (
        markdown_header(result["header"])
        + markdown_table(
            [
                "mode",
                "setting",
                "s (107 questions, best of repeats)",
                "ms / question",
                "identical",
                "cached passages",
                "cache MiB",
            ],
            lines,
        )
        + "\n"
    )


def main() -> None:
    parser = benchmark_parser(__doc__, out="lexical-reader-cache", render="lexical_reader_cache.json")
    parser.add_argument("--repeats", type=int, default=2, help="Times each setting runs (the best is shown).")
    args = parser.parse_args()
    if print_rendered(args, render):
        return
    os.environ.setdefault("ODQA_CACHE_DIR", str(Path(args.out) / "cache"))
    os.environ.setdefault("ODQA_PROGRESS", "0")
    header = run_header("plugins/odqa-readers/odqa_readers", "odqa-readers", "numpy", "scipy", "kiwipiepy")
    result = {"header": header, **measure(args.repeats)}
    write_json(args.out, "lexical_reader_cache.json", result)
    show_markdown(args.out, "lexical_reader_cache.md", render(result))


if __name__ == "__main__":
    main()
