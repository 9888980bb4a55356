"""How large and how spread out BM25's and DPR's raw scores are on KorQuAD (what λ and normalization act on).

Question answered: "why does unnormalized 1.1 · DPR + BM25 work at all?" For the evaluation questions of the
40-article split at passage level (4,286 30-word windows), per question: the 1st, 20th and 100th best score, and
the mean and standard deviation over the whole corpus; the medians over the questions are printed. Uses the DPR
checkpoint ``korquad_fusion.py`` trained (``--model``, default ``/tmp/odqa-bench/fusion/dpr/best``) and BM25 okapi
over ``\\w+`` words.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    FUSION_DPR,
    benchmark_parser,
    command_line,
    korquad_split,
    markdown_table,
    require_korquad,
    utc_now,
)


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True)
    parser.add_argument("--model", default=FUSION_DPR)
    args = parser.parse_args()
    path = require_korquad(args.korquad)
    if path is None:
        return
    from odqa_core import plugins

    _, passages, _, test = korquad_split(path)
    queries = [q.text for q in test]
    dpr = plugins.create("retriever", "dpr", {"model": args.model, "passage_max_length": 128})
    bm25 = plugins.create("retriever", "bm25", {})
    rows = []
    for label, retriever in (("bm25 okapi, regex words", bm25), ("dpr (bootstrap tiny)", dpr)):
        retriever.index(passages)
        scores = retriever.score_all(queries)
        ranked = -np.sort(-scores, axis=1)
        stats = [ranked[:, 0], ranked[:, 19], ranked[:, 99], scores.mean(axis=1), scores.std(axis=1)]
        rows.append([label, *(f"{np.median(x):.2f}" for x in stats)])
    print(f"{utc_now()}; `{command_line()}`; {len(queries)} questions × {len(passages)} passages\n")
    print(markdown_table(["retriever", "1st", "20th", "100th", "corpus mean", "corpus std"], rows))


if __name__ == "__main__":
    main()
