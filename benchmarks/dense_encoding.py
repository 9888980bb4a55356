"""Passage encoding throughput on the CPU: odqa's encoder against a fair baseline, at one thread and at all threads,
with the encoder precisions (fp32, bf16, int8) and ``torch.compile``; and what bf16 and int8 cost in retrieval.

Question answered: "how much faster does odqa encode a corpus than the loop a HuggingFace user would write, and what
do bf16, int8 and compilation buy on this CPU, at what accuracy?" On the same passages and the same model, each
method timed ``--repeat`` times, alternating (machine noise hits them alike), median passages/s reported:

- ``naive, padded to max length``: one passage at a time, padded to ``--max-length``, ``torch.no_grad()`` (the
  template's loop; the baseline of the first version of this benchmark);
- ``naive, unpadded``: one passage at a time, no padding, ``torch.no_grad()``;
- ``batched, padded to max length``: batches of ``--batch-size``, each padded to ``--max-length``;
- ``HF-style`` (**the fair baseline**): ``tokenizer(batch, padding=True, truncation=True, max_length=...)`` —
  each batch padded to its own longest passage — in input order, ``torch.inference_mode()``, same batch size;
- ``odqa fp32 / bf16 / int8``: :meth:`odqa_dense.encoder.BiEncoder.encode` (blocks sorted by length, dynamic
  padding, inference mode) in each precision (bf16: CPU autocast; int8: dynamically quantized Linear layers);
- ``odqa fp32 + torch.compile`` (``--compile-sizes``): the model compiled with ``dynamic=True``; the first pass
  (compilation included) and the steady passes are reported apart.

Every method's vectors are compared with odqa fp32's (max |Δ|, minimum cosine). Each ``--threads`` value runs in
its own process (``torch.set_num_threads`` and the tokenizer's thread pool are set before anything runs).
Passages are KorQuAD contexts cut into 30-word windows plus the whole contexts (a seeded draw), title + text. The
models are bootstrap BERTs with random weights (the cost does not depend on them); ``base`` is BERT-base sized
(12 layers × 768), what users bring (e.g. klue/roberta-base), and encodes ``--base-n`` passages (without the
``batched, padded to max length`` row, which would take minutes a repetition there).

``--accuracy``: a DPR trained on KorQuAD (``--dpr``, else ``korquad_fusion.py``'s, else one trained here as
``_common.train_korquad_dpr`` does) indexes the 4,286 passages with the ``dpr`` retriever in each precision and
searches the 1,719 evaluation questions (conventions of ../shared/data/korquad/README.md): top-k accuracy
(an answer string in the passage) and the vectors' distance from fp32.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    DEFAULT_OUT,
    FUSION_DPR,
    benchmark_parser,
    korquad_split,
    markdown_table,
    median,
    require_korquad,
    run_header,
    timed,
    write_json,
)

SIZES_OF_RECORD = {"tiny": "tiny (2 × 128)", "mini": "mini (4 × 256)", "base": "base (12 × 768)"}
KS = (1, 5, 20, 100)
HF_STYLE = "HF-style: padded to the batch's longest, inference mode"


def set_threads(threads: int, fresh_inductor_cache: bool = False) -> None:
    """Pin torch, the BLAS and the tokenizer's pool to ``threads``; before torch or tokenizers start."""
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[key] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    if fresh_inductor_cache:  # what a first compilation on a new machine costs: no kernels cached from earlier runs
        import tempfile

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="odqa-inductor-")
    import torch

    torch.set_num_threads(threads)


def pair_lists(texts: list) -> tuple[list[str], list[str] | None]:
    firsts = [t[0] if isinstance(t, tuple) else t for t in texts]
    if not any(isinstance(t, tuple) for t in texts):
        return firsts, None
    return firsts, [t[1] if isinstance(t, tuple) else "" for t in texts]


def tokenizer_batches(encoder: Any, texts: list, max_length: int, batch_size: int, padding: Any, grad: str) -> Any:
    """Batches in input order through ``encoder.tokenizer(..., padding=padding)`` and the model: the baselines
    (``padding="max_length"`` or ``True``, i.e. to the longest of the batch), under ``grad``
    (``no_grad`` or ``inference_mode``). Same inputs as odqa (ids and mask), so the same vectors."""
    import numpy as np
    import torch

    out = np.empty((len(texts), encoder.dim), np.float32)
    model = encoder.passage_model
    model.eval()
    with getattr(torch, grad)():
        for start in range(0, len(texts), batch_size):
            firsts, seconds = pair_lists(texts[start : start + batch_size])
            enc = encoder.tokenizer(
                firsts, seconds, truncation=True, max_length=max_length, padding=padding, return_tensors="pt"
            )
            vec = encoder.embed(model, enc["input_ids"].to(encoder.device), enc["attention_mask"].to(encoder.device))
            out[start : start + len(firsts)] = vec.float().cpu().numpy()
    return out


def one_at_a_time_unpadded(encoder: Any, texts: list, max_length: int) -> Any:
    import numpy as np
    import torch

    out = np.empty((len(texts), encoder.dim), np.float32)
    model = encoder.passage_model
    model.eval()
    with torch.no_grad():
        for i, text in enumerate(texts):
            pair = (text,) if isinstance(text, str) else tuple(text)
            enc = encoder.tokenizer(*pair, truncation=True, max_length=max_length, return_tensors="pt")
            ids, mask = enc["input_ids"].to(encoder.device), enc["attention_mask"].to(encoder.device)
            out[i] = encoder.embed(model, ids, mask)[0].float().cpu().numpy()
    return out


def closeness(vectors: Any, reference: Any) -> dict[str, float]:
    import numpy as np

    n = len(vectors)
    ref = reference[:n]
    cosine = (vectors * ref).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(ref, axis=1)
    return {"max_abs_diff": float(np.abs(vectors - ref).max()), "min_cosine": float(cosine.min())}


def throughput(args: Any, threads: int) -> dict[str, Any]:
    """Every method for every size at ``threads`` (this process)."""
    set_threads(threads, args.fresh_inductor_cache)
    import numpy as np
    from odqa_dense.encoder import passage_texts
    from odqa_transformers import hf
    from odqa_transformers.bootstrap import bootstrap_encoder

    from odqa_core import data

    docs = data.load_corpus(require_korquad(args.korquad))
    corpus = data.split_passages(docs, 30) + docs
    order = np.random.default_rng(0).permutation(len(corpus))
    device = hf.resolve_device(args.device)
    if device.type == "cuda":
        import torch

        bf16 = torch.cuda.is_bf16_supported()
    else:
        bf16 = device.type == "cpu" and hf.cpu_bf16_native()
    rows, checks = [], {}
    for size in args.sizes.split(","):
        n = args.base_n if size == "base" else args.n
        texts = passage_texts([corpus[i] for i in order[:n]], include_title=True)
        tokenizer, model = bootstrap_encoder([d.text for d in docs], size, 16000, 512, seed=0)
        model.to(device)
        size_rows, checks[size] = measure_size(args, threads, size, texts, tokenizer, model, bf16)
        rows.extend(size_rows)
    return {"rows": rows, "checks": checks, "device": str(device), "bf16": bf16}


def measure_size(
    args: Any, threads: int, size: str, texts: list, tokenizer: Any, model: Any, bf16: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of one model size: every method ``repeat`` times, alternating; then the compiled model."""
    import numpy as np
    import torch
    from odqa_dense.encoder import BiEncoder, quantize_int8

    naive_texts = texts[: args.base_naive_n if size == "base" else args.naive_n]
    repeat = args.base_repeat if size == "base" else args.repeat
    encoder = BiEncoder.from_models(tokenizer, model, pooling="cls")
    length, batch = args.max_length, args.batch_size

    def odqa(precision: str, enc: Any = encoder) -> Any:
        return enc.encode(texts, "passage", length, batch_size=batch, precision=precision, desc="")

    methods: dict[str, tuple[int, Any]] = {
        "naive, padded to max length": (
            len(naive_texts),
            lambda: encoder.encode_naive(naive_texts, "passage", length),
        ),
        "naive, unpadded": (len(naive_texts), lambda: one_at_a_time_unpadded(encoder, naive_texts, length)),
        HF_STYLE: (len(texts), lambda: tokenizer_batches(encoder, texts, length, batch, True, "inference_mode")),
        "odqa fp32": (len(texts), lambda: odqa("fp32")),
    }
    if size != "base":  # history only (the first version's row); at base size it would take minutes a repeat
        methods["batched, padded to max length"] = (
            len(texts),
            lambda: tokenizer_batches(encoder, texts, length, batch, "max_length", "no_grad"),
        )
    if bf16:
        methods["odqa bf16"] = (len(texts), lambda: odqa("bf16"))
    if encoder.device.type == "cpu":  # dynamic int8 quantization runs on the CPU only
        methods["odqa int8"] = (len(texts), lambda: odqa("int8"))
    if args.compile_only:  # only what the compiled rows are compared with
        methods = {m: v for m, v in methods.items() if m in ("odqa fp32", "odqa bf16")}
    quantize_s = None
    if "odqa int8" in methods:  # a one-off per model, outside the timings below
        quantize_s, _ = timed(lambda: quantize_int8(model))
        encoder.int8_model("passage")
    odqa("fp32")  # warm-up: first-call allocations, oneDNN kernels
    times: dict[str, list[float]] = {m: [] for m in methods}
    vectors: dict[str, Any] = {}
    for _ in range(repeat):
        for method, (count, encode) in methods.items():
            seconds, vectors[method] = timed(encode)
            times[method].append(count / seconds)
            print(f"  {threads}t {size} {method}: {count / seconds:.1f}/s", file=sys.stderr, flush=True)
    reference = vectors["odqa fp32"]
    fair = median(times.get(HF_STYLE, []))
    rows = []
    for method, values in times.items():
        rows.append(
            {
                "size": size,
                "threads": threads,
                "method": method,
                "passages": methods[method][0],
                "passages_per_s": round(median(values), 2),
                "runs": [round(v, 2) for v in values],
                "vs_hf_style": round(median(values) / fair, 2),
                **closeness(vectors[method], reference),
            }
        )
    if size in args.compile_sizes.split(","):
        compiled_model = torch.compile(model, dynamic=True)
        compiled = BiEncoder(tokenizer, compiled_model, compiled_model, pooling="cls")
        for precision in ("fp32", "bf16") if bf16 else ("fp32",):
            first_s, _ = timed(lambda p=precision: odqa(p, compiled))
            steady = []
            for _ in range(repeat):
                seconds, got = timed(lambda p=precision: odqa(p, compiled))
                steady.append(len(texts) / seconds)
            rows.append(
                {
                    "size": size,
                    "threads": threads,
                    "method": f"odqa {precision} + torch.compile",
                    "passages": len(texts),
                    "passages_per_s": round(median(steady), 2),
                    "runs": [round(v, 2) for v in steady],
                    "vs_hf_style": round(median(steady) / fair, 2),
                    "first_pass_s": round(first_s, 1),
                    "compile_s": round(first_s - len(texts) / median(steady), 1),
                    "vs_eager": round(median(steady) / median(times[f"odqa {precision}"]), 2),
                    **closeness(got, reference),
                }
            )
            print(f"  {threads}t {size} compile {precision}: first {first_s:.1f}s", file=sys.stderr, flush=True)
        torch._dynamo.reset()
    lengths = [len(r) for r in encoder.tokenize(texts, length)]
    check = {
        "mean_tokens": float(np.mean(lengths)),
        "max_tokens": int(np.max(lengths)),
        "int8_quantize_s": quantize_s,
    }
    return rows, check


def accuracy(args: Any) -> dict[str, Any]:
    """fp32 / bf16 / int8 indexes of a trained DPR over KorQuAD's passages: top-k accuracy and vector distance."""
    set_threads(args.accuracy_threads)
    import numpy as np
    from odqa_transformers import hf

    from odqa_core import plugins
    from odqa_core.evaluation import evaluate_retrieval, hits_from_results

    docs, passages, train, test = korquad_split(require_korquad(args.korquad))
    dpr = args.dpr or (FUSION_DPR if Path(FUSION_DPR, "manifest.json").is_file() else None)
    if dpr is None:
        from _common import train_korquad_dpr

        dpr = train_korquad_dpr(passages, train, test, Path(args.out))
    precisions = ["fp32", "bf16", "int8"] if hf.cpu_bf16_native() else ["fp32", "int8"]
    questions = [q.text for q in test]
    rows, vectors = [], {}
    for precision in precisions:
        retriever = plugins.create("retriever", "dpr", {"model": dpr, "device": "cpu", "precision": precision})
        index_s, _ = timed(lambda r=retriever: r.index(passages))
        search_s, results = timed(lambda r=retriever: r.search(questions, max(KS)))
        vectors[precision] = (retriever.passage_vectors, retriever.encode_queries(questions))
        metrics = evaluate_retrieval(test, hits_from_results(results), KS).to_json()["metrics"]["answer"]
        rows.append(
            {
                "precision": retriever.encode_precision,
                **{f"acc@{k}": round(100 * metrics[f"acc@{k}"], 1) for k in KS},
                "index_s": round(index_s, 1),
                "search_s": round(search_s, 1),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for row in rows:
        passages_v, questions_v = vectors[row["precision"]]
        row["passages_vs_fp32"] = closeness(passages_v, vectors["fp32"][0])
        row["questions_vs_fp32"] = closeness(questions_v, vectors["fp32"][1])
        top = np.argsort(-(vectors["fp32"][1] @ vectors["fp32"][0].T), axis=1)[:, :20]
        mine = np.argsort(-(questions_v @ passages_v.T), axis=1)[:, :20]
        row["top20_overlap_with_fp32"] = round(
            float(np.mean([len(set(a) & set(b)) / 20 for a, b in zip(top, mine)])), 4
        )
    return {"dpr": dpr, "passages": len(passages), "questions": len(test), "rows": rows}


def render(results: dict[str, Any]) -> str:
    parts = []
    if results.get("throughput"):
        header = ["size", "method", "passages", "passages/s, 1 thread", "passages/s, 2 threads", "× HF-style (1 / 2)"]
        header.append("max |Δ| vs odqa fp32 / min cos")
        by_key: dict[tuple[str, str], dict[int, dict]] = {}
        for part in results["throughput"].values():
            for row in part["rows"]:
                by_key.setdefault((row["size"], row["method"]), {})[row["threads"]] = row
        table = []
        for (size, method), per in by_key.items():
            one, two = per.get(1, {}), per.get(2, {})
            any_row = one or two
            cell = lambda r, k: r.get(k, "-")  # noqa: E731
            table.append(
                [
                    SIZES_OF_RECORD.get(size, size),
                    method,
                    any_row["passages"],
                    cell(one, "passages_per_s"),
                    cell(two, "passages_per_s"),
                    f"{cell(one, 'vs_hf_style')} / {cell(two, 'vs_hf_style')}",
                    f"{any_row['max_abs_diff']:.1e} / {any_row['min_cosine']:.5f}",
                ]
            )
        parts.append(markdown_table(header, table))
        compile_rows = [
            [
                r["size"],
                r["threads"],
                r["method"],
                r["first_pass_s"],
                r["compile_s"],
                r["passages_per_s"],
                r["vs_eager"],
            ]
            for part in results["throughput"].values()
            for r in part["rows"]
            if "compile_s" in r
        ]
        if compile_rows:
            head = ["size", "threads", "method", "first pass s", "≈ compile s", "steady passages/s", "× eager"]
            parts.append(markdown_table(head, compile_rows))
    if results.get("accuracy"):
        acc = results["accuracy"]
        head = ["precision", *(f"top-{k}" for k in KS), "index s", "passages: max |Δ| / min cos"]
        head += ["questions: max |Δ| / min cos", "top-20 overlap with fp32"]
        table = [
            [
                r["precision"],
                *(r[f"acc@{k}"] for k in KS),
                r["index_s"],
                f"{r['passages_vs_fp32']['max_abs_diff']:.1e} / {r['passages_vs_fp32']['min_cosine']:.5f}",
                f"{r['questions_vs_fp32']['max_abs_diff']:.1e} / {r['questions_vs_fp32']['min_cosine']:.5f}",
                r["top20_overlap_with_fp32"],
            ]
            for r in acc["rows"]
        ]
        parts.append(f"DPR {acc['dpr']}: {acc['passages']} passages, {acc['questions']} questions\n\n")
        parts[-1] += markdown_table(head, table)
    return "\n\n".join(parts)


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="dense-encoding", render="dense_encoding.json")
    parser.add_argument("--sizes", default="tiny,mini,base")
    parser.add_argument("--threads", default="1,2", help="Comma-separated; each runs in its own process.")
    parser.add_argument("--n", type=int, default=500, help="Passages encoded by the batched methods.")
    parser.add_argument("--naive-n", type=int, default=150, help="Passages encoded by the one-at-a-time loops.")
    parser.add_argument("--base-n", type=int, default=64, help="--n for the base size.")
    parser.add_argument("--base-naive-n", type=int, default=8, help="--naive-n for the base size.")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto: where the models run.")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base-repeat", type=int, default=3)
    parser.add_argument("--compile-sizes", default="mini,base", help="Sizes that get torch.compile rows ('' none).")
    parser.add_argument("--accuracy", action="store_true", help="Also the KorQuAD accuracy of fp32/bf16/int8.")
    parser.add_argument("--accuracy-threads", type=int, default=2)
    parser.add_argument("--dpr", default=None, help=f"Trained DPR checkpoint (default {FUSION_DPR} if present).")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--compile-only", action="store_true", help="Only odqa fp32/bf16 and their compiled rows.")
    parser.add_argument(
        "--fresh-inductor-cache", action="store_true", help="Compile into an empty TORCHINDUCTOR_CACHE_DIR (cold)."
    )
    parser.add_argument("--part", default=None, help=argparse_suppress())
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return
    if args.part:  # a child process: one thread count or the accuracy, its result as JSON on the last line
        result = accuracy(args) if args.part == "accuracy" else throughput(args, int(args.part))
        print(json.dumps(result))
        return
    if require_korquad(args.korquad) is None:
        return
    results: dict[str, Any] = {
        **run_header("plugins/odqa-dense/odqa_dense", "torch", "transformers", "tokenizers", "faiss-cpu"),
        "args": vars(args),
        "throughput": {},
    }
    parts = [] if args.skip_throughput else [str(int(t)) for t in args.threads.split(",")]
    if args.accuracy:
        parts.append("accuracy")
    for part in parts:
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--part", part], check=True, stdout=subprocess.PIPE, text=True
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["wall_s"] = round(time.perf_counter() - started, 1)
        if part == "accuracy":
            results["accuracy"] = result
        else:
            results["throughput"][part] = result
        write_json(args.out, "dense_encoding.json", results)
    print(render(results))
    print(f"(results: {Path(args.out) / 'dense_encoding.json'}; scratch under {DEFAULT_OUT})")


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
