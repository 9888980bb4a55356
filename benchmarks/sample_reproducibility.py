"""The README's main command on the bundled sample: reproducible from a cold cache, and BM25 alone vs its fusion.

Questions answered: "do two cold runs of ``odqa run --retriever bm25 --fuser cross --reader extractive`` (each with
an empty ``ODQA_CACHE_DIR``, so every demo model is trained anew) give the same metrics and byte-identical demo
models?" and "does the demo's cross fusion (``lam="sample"``, chosen on the training questions) score at least
BM25 alone, on the training questions and on the 107 evaluation questions?" The second part reuses the first cold
run's demo DPR and reports acc@1/5/20 (a gold document in the top k) for BM25 alone, for the fusion with the λ the
run recorded, and for the old default λ = 1.1, on every training question, on the two thirds the demo DPR trains
on, on the third λ is chosen on, and on the evaluation questions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, markdown_table, run_header, write_json  # noqa: E402

COMMAND = ["odqa", "run", "--retriever", "bm25", "--fuser", "cross", "--reader", "extractive"]
KS = (1, 5, 20)


def model_hashes(cache: Path) -> dict[str, str]:
    """sha256 of every tokenizer.json and .safetensors the run cached (demo models, their tokenizers)."""
    files = sorted(p for p in cache.rglob("*") if p.name == "tokenizer.json" or p.suffix == ".safetensors")
    return {str(p.relative_to(cache)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def cold_run(work: Path, name: str) -> dict:
    cache, out = work / f"cache-{name}", work / f"out-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "ODQA_CACHE_DIR": str(cache), "ODQA_PROGRESS": "0"}
    start = time.perf_counter()
    done = subprocess.run([*COMMAND, "--output-dir", str(out)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(COMMAND)} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"seconds": round(seconds, 1), "summary": summary, "hashes": model_hashes(cache), "cache": str(cache)}


def accuracies(questions, ranked) -> dict[str, float]:
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results

    metrics = evaluate_retrieval(questions, hits_from_results(ranked), KS).metrics["doc"]
    return {f"acc@{k}": round(metrics[f"acc@{k}"], 4) for k in KS}


def fusion_table(cache: str, lam_used: float) -> tuple[list[list], dict]:
    os.environ["ODQA_CACHE_DIR"] = cache  # the first cold run's demo DPR, not a new one
    from odqa_core import data
    from odqa_core.pipeline import Pipeline
    from odqa_core.spec import PipelineSpec

    documents = data.load_corpus(data.sample_corpus_path())
    pipeline = Pipeline.from_spec(PipelineSpec.from_settings({"retrievers": ["bm25"], "fuser": "cross"}, sample=True))
    pipeline.index(documents)
    bm25, dpr = pipeline.retrievers
    fit, tune = data.sample_tuning_split(data.load_questions(data.sample_train_questions_path()))
    sets = {
        "training, all": [*fit, *tune],
        "training, DPR's two thirds": fit,
        "training, λ's third": tune,
        "evaluation": data.load_questions(data.sample_questions_path()),
    }
    fusers = {
        "BM25 alone": None,
        f"cross, demo λ = {lam_used:g}": {"lam": lam_used},
        "cross, λ = 1.1 (old default)": {"lam": 1.1},
    }
    from odqa_core import plugins

    rows, payload = [], {}
    for set_name, questions in sets.items():
        texts = [q.text for q in questions]
        for fuser_name, options in fusers.items():
            if options is None:
                ranked = bm25.search(texts, max(KS))
            else:
                ranked = plugins.create("fuser", "cross", options).fuse([bm25, dpr], texts, max(KS))
            acc = accuracies(questions, ranked)
            payload[f"{set_name} / {fuser_name}"] = acc
            rows.append([set_name, len(questions), fuser_name, *(f"{acc[f'acc@{k}']:.3f}" for k in KS)])
    tuning = pipeline.fuser
    tuning.fuse([bm25, dpr], [tune[0].text], 1)  # runs the lam="sample" choice, to show its grid
    return rows, {"accuracy": payload, "lam_tuning": tuning.lam_tuning[("bm25", "dpr")]}


def main() -> None:
    parser = benchmark_parser(__doc__, out="sample-reproducibility")
    args = parser.parse_args()
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)

    runs = {name: cold_run(work, name) for name in ("first", "second")}
    first, second = runs["first"], runs["second"]
    same_models = first["hashes"] == second["hashes"]
    metric_keys = ("retrieval", "reader_metrics")
    same_metrics = all(first["summary"].get(k) == second["summary"].get(k) for k in metric_keys)
    lam_used = first["summary"]["components"]["cross"]["lam"]
    rows, fusion = fusion_table(first["cache"], lam_used)

    header = run_header("plugins", "torch", "transformers", "tokenizers")
    print(f"# {header['command']}\n# machine: {header['machine']}\n# source: {header['source']}")
    print(f"cold runs: {first['seconds']} s and {second['seconds']} s")
    print(f"same demo tokenizers and weights (sha256 of {len(first['hashes'])} files): {same_models}")
    for path, digest in first["hashes"].items():
        print(f"  {digest[:16]}  {path}")
    print(f"same summary.json metrics ({', '.join(metric_keys)}): {same_metrics}")
    retrieval = first["summary"]["retrieval"]["metrics"]["doc"]
    print("retrieval (doc): " + ", ".join(f"acc@{k} {retrieval[f'acc@{k}']:.4f}" for k in KS))
    print(f"reader: {json.dumps(first['summary'].get('reader_metrics'), ensure_ascii=False)[:300]}")
    print(f"cross λ recorded in summary.json: {lam_used}\n")
    print(markdown_table(["questions", "n", "retrieval", "acc@1", "acc@5", "acc@20"], rows))
    print("\nλ grid on the tuning third: " + json.dumps(fusion["lam_tuning"]["grid"]))
    write_json(
        args.out,
        "results.json",
        {
            **header,
            "runs": {
                k: {**v, "summary": {m: v["summary"].get(m) for m in (*metric_keys, "components")}}
                for k, v in runs.items()
            },
            "same_models": same_models,
            "same_metrics": same_metrics,
            "fusion": fusion,
        },
    )


if __name__ == "__main__":
    main()
