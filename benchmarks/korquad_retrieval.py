"""Sparse retrieval quality on KorQuAD 1.0 dev: TF-IDF and BM25 (okapi, lucene) with each analyzer.

Question answered: "which sparse retriever and which analyzer should I use for Korean?" All 5,774 questions,
two levels (the conventions of ../shared/data/korquad/README.md):

- document level: the corpus is the distinct paragraph contexts; a hit is the question's own context.
- passage level: every context cut into consecutive 30-word windows (no overlap); a hit is a passage containing
  one of the answer strings (NFKC, lower-cased, whitespace-collapsed match).

Analyzers: ``regex`` (``\\w+``, lowercased), ``char-ngram`` (n=2 inside words), ``kiwi`` (kiwipiepy content
morphemes), ``hf`` (a WordPiece tokenizer trained at run time on the corpus contexts with ``tokenizers``, saved to
the scratch directory and passed by its ``path`` option). Metrics: top-1/5/20/100 accuracy and MRR@10 via
``odqa_core.evaluation.evaluate_retrieval``. Peer row: scikit-learn's ``TfidfVectorizer`` on the same tokens
(cosine of l2-normalised tf-idf vectors, smooth idf), for the ``regex`` and ``char-ngram`` analyzers.

Every retriever runs the odqa text path (``retriever.index(documents)``, ``retriever.search(question texts, 100)``)
with the analyzer given as an option, so the numbers are what a user of the plugin gets.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    benchmark_parser,
    header_lines,
    markdown_header,
    markdown_table,
    require_korquad,
    run_header,
    write_json,
    write_text,
)

KS = (1, 5, 10, 20, 100)
DEPTH = 100
ANALYZERS = ("regex", "char-ngram", "kiwi", "hf")
METHODS = ("tfidf", "bm25-okapi", "bm25-lucene")


def train_wordpiece(texts: list[str], out_dir: Path, vocab_size: int) -> Path:
    """A lowercasing WordPiece tokenizer trained on ``texts``; returns the tokenizer.json path."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "tokenizer.json"
    tok.save(str(path))
    return path


def analyzer_options(name: str, hf_path: Path | None, kiwi_workers: int | None) -> dict[str, Any]:
    if name == "char-ngram":
        return {"n": 2}
    if name == "hf":
        return {"path": str(hf_path)}
    if name == "kiwi" and kiwi_workers is not None:
        return {"num_workers": kiwi_workers}
    return {}


def make_retriever(method: str, analyzer: str, options: dict[str, Any], include_title: bool) -> Any:
    from odqa_core import plugins

    config: dict[str, Any] = {"analyzer": analyzer, "include_title": include_title}
    if options:
        config["analyzer_options"] = options
    if method == "tfidf":
        return plugins.create("retriever", "tfidf", config)
    return plugins.create("retriever", "bm25", {"variant": method.split("-", 1)[1], **config})


def sklearn_results(
    documents: list[Any], queries: list[str], analyzer: str, options: dict[str, Any], include_title: bool
) -> Any:
    """scikit-learn TfidfVectorizer over the plugin analyzer's tokens of the same texts the retrievers index
    (title + newline + text when titles are included); cosine top-k as RankedResults."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from odqa_core import plugins
    from odqa_core.types import RankedResults, top_k_rows

    tok = plugins.create("analyzer", analyzer, options)
    tok.warm_up()
    doc_tokens = tok.tokenize_many(
        [f"{d.title}\n{d.text}" if include_title and d.title else d.text for d in documents]
    )
    query_tokens = tok.tokenize_many(queries)
    vec = TfidfVectorizer(analyzer=lambda x: x, lowercase=False, dtype=np.float32)
    d = vec.fit_transform(doc_tokens)
    q = vec.transform(query_tokens)
    scores = (q @ d.T).toarray()
    idx, sc = top_k_rows(scores, min(DEPTH, len(documents)))
    return RankedResults(idx, sc, documents)


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="")
    parser.add_argument("--levels", default="document,passage")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--analyzers", default=",".join(ANALYZERS))
    parser.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn TfidfVectorizer rows")
    parser.add_argument("--hf-vocab", type=int, default=16000, help="WordPiece vocabulary size for the hf analyzer")
    parser.add_argument("--no-title", action="store_true", help="index passage text only (include_title=false)")
    parser.add_argument("--kiwi-workers", type=int, default=None, help="kiwi analyzer num_workers option")
    parser.add_argument("--max-questions", type=int, default=None, help="evaluate only the first N (smoke runs)")
    args = parser.parse_args()

    path = require_korquad(args.korquad)
    if path is None:
        return
    from odqa_core.data import load_corpus, load_questions
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results

    packages = ("odqa", "odqa-sparse", "kiwipiepy", "tokenizers", "scikit-learn", "numpy")
    info = run_header("plugins/odqa-sparse/odqa_sparse", *packages)
    print(header_lines(info), flush=True)
    out = Path(args.out)
    questions = load_questions(path)
    if args.max_questions:
        questions = questions[: args.max_questions]
    texts = [q.text for q in questions]
    contexts = load_corpus(path)
    corpora = {"document": contexts, "passage": load_corpus(path, split_words=30)}
    analyzers = [a for a in args.analyzers.split(",") if a]
    hf_path = None
    if "hf" in analyzers:
        t0 = time.perf_counter()
        hf_path = train_wordpiece([d.text for d in contexts], out / "korquad-wordpiece", args.hf_vocab)
        print(
            f"trained WordPiece ({args.hf_vocab} vocab) on {len(contexts)} contexts in "
            f"{time.perf_counter() - t0:.1f} s -> {hf_path}\n",
            flush=True,
        )

    rows: list[dict[str, Any]] = []
    for level in [lv for lv in args.levels.split(",") if lv]:
        documents = corpora[level]
        kind = "doc" if level == "document" else "answer"
        print(
            f"== {level} level: {len(documents):,} {'contexts' if level == 'document' else 'passages'}, "
            f"{len(questions):,} questions, hit = {'gold context' if kind == 'doc' else 'answer string'}",
            flush=True,
        )
        runs: list[tuple[str, str]] = [(m, a) for m in args.methods.split(",") if m for a in analyzers]
        if not args.no_sklearn:
            runs += [("sklearn-tfidf", a) for a in ("regex", "char-ngram") if a in analyzers]
        for method, analyzer in runs:
            options = analyzer_options(analyzer, hf_path, args.kiwi_workers)
            try:
                t0 = time.perf_counter()
                if method == "sklearn-tfidf":
                    results = sklearn_results(documents, texts, analyzer, options, not args.no_title)
                    config = {
                        "analyzer_options": options,
                        "include_title": not args.no_title,
                        "TfidfVectorizer": "defaults (smooth_idf, norm=l2)",
                    }
                    t_index = t_search = float("nan")
                    t_total = time.perf_counter() - t0
                else:
                    retriever = make_retriever(method, analyzer, options, not args.no_title)
                    retriever.index(documents)
                    t_index = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    results = retriever.search(texts, DEPTH)
                    t_search = time.perf_counter() - t1
                    t_total = t_index + t_search
                    config = {**retriever.config(), **retriever.params()}
                    for key in (
                        ("analyzer", "threads", "k1", "b", "delta") if method == "tfidf" else ("analyzer", "threads")
                    ):
                        config.pop(key, None)
                    if method == "bm25-okapi":
                        config.pop("delta", None)
                    if method == "bm25-lucene":
                        config.pop("delta", None)
                        config.pop("epsilon", None)
            except Exception as exc:  # a broken configuration is reported, the others still run
                print(f"  {method} / {analyzer}: FAILED {type(exc).__name__}: {exc}")
                traceback.print_exc(limit=3)
                rows.append({"level": level, "method": method, "analyzer": analyzer, "error": f"{exc}"})
                continue
            report = evaluate_retrieval(questions, hits_from_results(results), KS)
            m = report.metrics[kind]
            row = {
                "level": level,
                "method": method,
                "analyzer": analyzer,
                "config": config,
                "questions": report.counts[kind],
                "index_s": t_index,
                "search_s": t_search,
                "total_s": t_total,
                **{f"top{k}": m[f"acc@{k}"] for k in (1, 5, 20, 100)},
                "mrr10": m["mrr@10"],
            }
            rows.append(row)
            print(
                f"  {method:14s} {analyzer:10s} top1 {row['top1']:.4f} top5 {row['top5']:.4f} "
                f"top20 {row['top20']:.4f} top100 {row['top100']:.4f} mrr@10 {row['mrr10']:.4f} "
                f"({t_total:.1f} s)",
                flush=True,
            )
        print()

    header = [
        "level",
        "method",
        "analyzer",
        "top-1",
        "top-5",
        "top-20",
        "top-100",
        "MRR@10",
        "index+search s",
        "configuration",
    ]
    table_rows = []
    for r in rows:
        if "error" in r:
            table_rows.append([r["level"], r["method"], r["analyzer"], "failed", "", "", "", "", "", r["error"][:80]])
            continue
        cfg = {k: v for k, v in r["config"].items() if v not in (None, {}, "")}
        if r["analyzer"] == "hf":  # the scratch path says nothing; name what it is
            cfg["analyzer_options"] = {"path": f"<out>/korquad-wordpiece/tokenizer.json ({args.hf_vocab} WordPiece)"}
        table_rows.append(
            [r["level"], r["method"], r["analyzer"]]
            + [f"{100 * r[f'top{k}']:.1f}" for k in (1, 5, 20, 100)]
            + [f"{r['mrr10']:.3f}", f"{r['total_s']:.1f}", "`" + str(cfg).replace("|", "/") + "`"]
        )
    table = markdown_table(header, table_rows)
    print(table)
    file = write_json(args.out, "korquad_retrieval.json", {"info": info, "rows": rows})
    write_text(out, "korquad_retrieval.md", markdown_header(info) + table + "\n")
    print(f"\nwrote {file} and {out / 'korquad_retrieval.md'}")


if __name__ == "__main__":
    main()
