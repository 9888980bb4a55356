"""The bundled sample's demo readers: EM/F1 on the sample's 107 evaluation questions, with and without cloze.

Question answered: "what does the README's main command give a newcomer, and does adding synthetic cloze questions
(``cloze`` per passage) to the 180 training questions help a reader trained from random weights?" Each recipe of
``odqa_readers.sample.RECIPES`` is trained as ``model=sample`` would train it (same corpus, questions and seed),
once as is and once with ``cloze`` set to each value of ``--cloze``; every model reads the gold passage and BM25's
top 5 of each evaluation question. Models go to ``--out`` (scratch), not to the user cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_OUT, command_line, machine, markdown_table, source_state, write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=f"{DEFAULT_OUT}/sample-demo")
    parser.add_argument("--readers", default="extractive,generative")
    parser.add_argument("--cloze", default="0,4", help="Cloze questions per passage to compare.")
    args = parser.parse_args()

    from odqa_readers.base import gold_results
    from odqa_readers.sample import RECIPES
    from odqa_readers.training import parse_reader_config, train_reader

    from odqa_core import data, plugins
    from odqa_core.pipeline import retrieve
    from odqa_core.qa_metrics import evaluate_predictions

    documents = data.load_corpus(data.sample_corpus_path())
    train_qs = data.load_questions(data.sample_train_questions_path())
    test = data.load_questions(data.sample_questions_path())
    bm25 = plugins.create("retriever", "bm25")
    bm25.index(documents)
    inputs = {"gold passage": gold_results(test, documents), "BM25 top-5": retrieve([bm25], None, test, 5, bar=False)}
    rows, payload = (
        [],
        {
            "command": command_line(),
            "machine": machine(),
            "source": source_state("plugins/odqa-readers/odqa_readers"),
            "results": [],
        },
    )
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
                report = evaluate_predictions({q.id: p[0].answer if p else "" for q, p in zip(test, nbest)}, test)
                cells.append(f"{report.exact_match:.1f} / {report.f1:.1f}")
                payload["results"].append({"reader": name, "cloze": cloze, "input": label, **report.to_json()})
            rows.append([name, cloze, f"{train_s:.0f}", *cells])
            print(rows[-1], flush=True)
    write_json(args.out, "sample_demo.json", payload)
    print(f"{machine()['date_utc']}; `{command_line()}`; {payload['source']}")
    print(markdown_table(["reader", "cloze / passage", "train s", *(f"{k} EM / F1" for k in inputs)], rows))


if __name__ == "__main__":
    main()
