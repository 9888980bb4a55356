"""The bundled sample's demo readers: EM/F1 on the sample's 107 evaluation questions, with and without cloze.

Question answered: "what does the README's main command give a newcomer, and does adding synthetic cloze questions
(``cloze`` per passage) to the 180 training questions help a reader trained from random weights?" Each recipe of
``odqa_readers.sample.RECIPES`` is trained as ``model=sample`` would train it (same corpus, questions and seed),
once as is and once with ``cloze`` set to each value of ``--cloze``; every model reads the gold passage and BM25's
top 5 of each evaluation question. Models go to ``--out`` (scratch), not to the user cache.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    benchmark_parser,
    best_answer_report,
    headline,
    markdown_table,
    run_header,
    sample_reading_inputs,
    write_json,
)


def main() -> None:
    parser = benchmark_parser(__doc__, out="sample-demo")
    parser.add_argument("--readers", default="extractive,generative")
    parser.add_argument("--cloze", default="0,4", help="Cloze questions per passage to compare.")
    args = parser.parse_args()

    from odqa_readers.sample import RECIPES
    from odqa_readers.training import parse_reader_config, train_reader

    from odqa_core import plugins

    documents, train_qs, test, gold, bm25_top5 = sample_reading_inputs(5)
    inputs = {"gold passage": gold, "BM25 top-5": bm25_top5}
    header = run_header("plugins/odqa-readers/odqa_readers", "torch", "transformers", "tokenizers")
    rows, payload = [], {**header, "results": []}
    for name in args.readers.split(","):
        for cloze in (int(c) for c in args.cloze.split(",")):
            recipe = {**RECIPES[name], "cloze": cloze}
            out = Path(args.out) / f"{name}-cloze{cloze}"
            started = time.perf_counter()
            if not (out / "best" / "manifest.json").is_file():
                train_reader(documents, train_qs, parse_reader_config(recipe), out)
            train_s = time.perf_counter() - started
            reader = plugins.create("reader", name, {"model": str(out / "best")})
            reader.warm_up()
            cells = []
            for label, results in inputs.items():
                nbest = reader.read(test, results, n_best=1)
                report = best_answer_report(test, nbest)
                cells.append(f"{report.exact_match:.1f} / {report.f1:.1f}")
                payload["results"].append({"reader": name, "cloze": cloze, "input": label, **report.to_json()})
            rows.append([name, cloze, f"{train_s:.0f}", *cells])
            print(rows[-1], flush=True)
    write_json(args.out, "sample_demo.json", payload)
    print(headline(payload))
    print(markdown_table(["reader", "cloze / passage", "train s", *(f"{k} EM / F1" for k in inputs)], rows))


if __name__ == "__main__":
    main()
