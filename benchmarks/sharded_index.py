"""Sharded search against the single index: the local engine with N shards, on KorQuAD and the synthetic corpus.

Question answered: "what does searching a sharded index cost on one machine, and does it return what the single
index returns?" (issue 18 §5). Target: sharded search (local engine, 4 shards) within 15 % of the single index.

Protocol
- KorQuAD 1.0 dev (its contexts as the corpus, every question): BM25 lucene over character bigrams (the sparse
  setting of ``korquad_retrieval.py``). Synthetic: ``synthetic.generate(--n, seed=0)`` as space-joined texts and
  ``generate_queries(--queries, seed=1)``, BM25 okapi with the ``regex`` analyzer (the setting of ``bm25_speed.py``).
- Each index is built twice into ``--out``: single (``index`` + ``save``) and sharded (``build_sharded_index``,
  ``--shards`` contiguous shards, local engine, one process), both timed. Both are then opened from disk
  (``load_retriever``) and warmed up.
- Search: every question as one ``search(questions, k)`` call (the text path: analyzer + kernels; the sharded
  index analyses and weighs the questions once and searches its shards in order, each seeded with the k-th best
  score merged from the shards before it), k = 10 and 100,
  ``--repeats`` times alternating single and sharded; the median is reported. Numba and BLAS run one thread.
- Equality: the top-k ids and the float32 scores of the sharded index against the single index's, exactly.

Results are printed as a Markdown table and written to ``--out`` as JSON.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BM25_LUCENE_BIGRAMS,
    benchmark_parser,
    markdown_header,
    markdown_table,
    median,
    require_korquad,
    run_header,
    single_thread_env,
    write_json,
)


def _measure(name, options, documents, questions, out: Path, n_shards: int, repeats: int) -> dict:
    import numpy as np

    from odqa_core import plugins
    from odqa_core.pipeline import load_retriever
    from odqa_core.shards import build_sharded_index

    single_dir, sharded_dir = out / "single", out / f"sharded-{n_shards}"
    for path in (single_dir, sharded_dir):
        shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()
    retriever = plugins.create("retriever", name, options)
    retriever.index(documents)
    retriever.save(single_dir)
    build_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_sharded_index(plugins.create("retriever", name, options), documents, sharded_dir, n_shards)
    build_sharded = time.perf_counter() - t0
    del retriever
    single, sharded = load_retriever(single_dir), load_retriever(sharded_dir)
    single.warm_up()
    sharded.warm_up()
    single.search(questions[:50], 10)
    sharded.search(questions[:50], 10)
    rows = {}
    for k in (10, 100):
        times = {"single": [], "sharded": []}
        results = {}
        for _ in range(repeats):
            for label, index in (("single", single), ("sharded", sharded)):
                t0 = time.perf_counter()
                results[label] = index.search(questions, k)
                times[label].append(time.perf_counter() - t0)
        a, b = results["single"], results["sharded"]
        rows[k] = {
            "single_s": median(times["single"]),
            "sharded_s": median(times["sharded"]),
            "same_ids": bool(np.array_equal(a.indices, b.indices)),
            "same_scores": bool(np.array_equal(a.scores.view(np.int32), b.scores.view(np.int32))),
        }
    return {
        "documents": len(documents),
        "questions": len(questions),
        "build_single_s": build_single,
        "build_sharded_s": build_sharded,
        "search": rows,
    }


def main() -> None:
    single_thread_env()
    parser = benchmark_parser(__doc__, korquad=True, out="sharded")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--n", type=int, default=200_000, help="Synthetic passages.")
    parser.add_argument("--queries", type=int, default=5000, help="Synthetic queries.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import synthetic

    from odqa_core import Document, data

    header = run_header("odqa_core/shards.py", "numpy", "numba")
    out = Path(args.out)
    results = {}
    korquad = require_korquad(args.korquad)
    if korquad is not None:
        documents = data.load_corpus(str(korquad))
        questions = [q.text for q in data.load_questions(str(korquad))]
        results["KorQuAD dev, bm25 lucene char-bigrams"] = _measure(
            "bm25", BM25_LUCENE_BIGRAMS, documents, questions, out / "korquad", args.shards, args.repeats
        )
    corpus = synthetic.generate(args.n, seed=0)
    documents = [Document(id=str(i), text=t) for i, t in enumerate(corpus.texts())]
    questions = synthetic.generate_queries(corpus, args.queries, seed=1).texts()
    del corpus
    results[f"synthetic {args.n:,}, bm25 okapi regex"] = _measure(
        "bm25", {"variant": "okapi"}, documents, questions, out / "synthetic", args.shards, args.repeats
    )
    write_json(out, "sharded_index.json", {"header": header, "results": results})
    table = []
    for corpus_name, r in results.items():
        for k, s in r["search"].items():
            table.append(
                [
                    corpus_name,
                    f"{r['documents']:,}",
                    f"{r['questions']:,}",
                    k,
                    f"{r['build_single_s']:.1f}",
                    f"{r['build_sharded_s']:.1f}",
                    f"{s['single_s']:.3f}",
                    f"{s['sharded_s']:.3f}",
                    f"{s['sharded_s'] / s['single_s'] - 1:+.1%}",
                    "yes" if s["same_ids"] and s["same_scores"] else "NO",
                ]
            )
    print(markdown_header(header))
    print(
        markdown_table(
            [
                "corpus",
                "docs",
                "questions",
                "k",
                "build single (s)",
                f"build {args.shards} shards (s)",
                "search single (s)",
                f"search {args.shards} shards (s)",
                "sharded vs single",
                "same ids + scores",
            ],
            table,
        )
    )


if __name__ == "__main__":
    main()
