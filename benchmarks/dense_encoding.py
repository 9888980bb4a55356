"""Passage encoding throughput: odqa's length-sorted, dynamically padded batches against the naive approach.

Question answered: "how much faster does odqa encode a corpus than the loop I would write myself?" In one run, on
the same passages and the same model:

- ``naive``: each passage tokenized alone, padded to ``--max-length`` and encoded one at a time (the template's
  way), under ``torch.no_grad()``;
- ``batched, max-length padding``: batches of ``--batch-size``, every passage padded to ``--max-length`` (what a
  plain HF pipeline call with ``padding="max_length"`` does);
- ``odqa``: :meth:`odqa_dense.encoder.BiEncoder.encode` — tokenized in blocks, sorted by length, each batch padded
  to its own longest passage, ``torch.inference_mode()``.

The three produce the same vectors (checked, max abs difference printed). Passages are KorQuAD contexts cut into
30-word windows (as in the retrieval benchmarks) plus the whole contexts, so lengths vary as in a real corpus.
The model is a bootstrap BERT (random weights do not change the cost). Each method is timed ``--repeat`` times,
alternating, and the median is reported; the naive loop runs on the first ``--naive-n`` passages only (it is slow)
and passages/s is compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, markdown_table, median, require_korquad, run_header, timed, write_json  # noqa: E402


def padded_batches(encoder, texts, max_length: int, batch_size: int):
    """Batches of ``batch_size`` padded to ``max_length`` (no sorting, no dynamic padding)."""
    import numpy as np
    import torch

    out = np.empty((len(texts), encoder.dim), np.float32)
    model = encoder.passage_model
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            firsts = [t[0] if isinstance(t, tuple) else t for t in chunk]
            seconds = [t[1] if isinstance(t, tuple) else "" for t in chunk]
            enc = encoder.tokenizer(
                firsts, seconds, truncation=True, max_length=max_length, padding="max_length", return_tensors="pt"
            )
            vec = encoder.embed(model, enc["input_ids"].to(encoder.device), enc["attention_mask"].to(encoder.device))
            out[start : start + len(chunk)] = vec.float().cpu().numpy()
    return out


def main() -> None:
    parser = benchmark_parser(__doc__, korquad=True, out="dense-encoding")
    parser.add_argument("--sizes", default="tiny,mini")
    parser.add_argument("--n", type=int, default=2000, help="Passages encoded by the batched methods.")
    parser.add_argument("--naive-n", type=int, default=300, help="Passages encoded by the naive loop.")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="auto: bf16 on GPU, fp32 on CPU.")
    args = parser.parse_args()

    path = require_korquad(args.korquad)
    if path is None:
        return
    import numpy as np
    from odqa_dense.encoder import BiEncoder, passage_texts
    from odqa_transformers import hf
    from odqa_transformers.bootstrap import bootstrap_encoder

    from odqa_core import data

    docs = data.load_corpus(path)
    corpus = data.split_passages(docs, 30) + docs
    rng = np.random.default_rng(0)
    chosen = [corpus[i] for i in rng.permutation(len(corpus))[: args.n]]
    texts = passage_texts(chosen, include_title=True)
    device = hf.resolve_device(args.device)
    precision = hf.resolve_precision(args.precision, device)

    results = {
        **run_header("plugins/odqa-dense/odqa_dense", "torch", "transformers", "tokenizers"),
        "device": str(device),
        "precision": precision,
        "args": vars(args),
        "rows": [],
    }
    for size in args.sizes.split(","):
        tokenizer, model = bootstrap_encoder([d.text for d in docs], size, 16000, 512, seed=0)
        encoder = BiEncoder.from_models(tokenizer, model, pooling="cls").to(device)
        lengths = [len(r) for r in encoder.tokenize(texts, args.max_length)]
        naive_texts = texts[: args.naive_n]
        times = {"naive": [], "batched-max-padding": [], "odqa": []}
        methods = {
            "naive": lambda enc=encoder, some=naive_texts: enc.encode_naive(some, "passage", args.max_length),
            "batched-max-padding": lambda enc=encoder: padded_batches(enc, texts, args.max_length, args.batch_size),
            "odqa": lambda enc=encoder: enc.encode(
                texts, "passage", args.max_length, batch_size=args.batch_size, precision=precision, desc=""
            ),
        }
        vectors = {}
        for _ in range(args.repeat):  # alternate the methods so machine noise hits them alike
            for method, encode in methods.items():
                t, vectors[method] = timed(encode)
                times[method].append((len(naive_texts) if method == "naive" else len(texts)) / t)
        naive_vec, padded_vec, odqa_vec = vectors["naive"], vectors["batched-max-padding"], vectors["odqa"]
        tol = 1e-2 if precision != "fp32" else 1e-4
        diff = float(np.abs(odqa_vec[: len(naive_texts)] - naive_vec).max())
        diff_padded = float(np.abs(odqa_vec - padded_vec).max())
        assert diff < tol and diff_padded < tol, (diff, diff_padded)
        naive = median(times["naive"])
        for method, values in times.items():
            results["rows"].append(
                {
                    "size": size,
                    "method": method,
                    "passages": len(naive_texts) if method == "naive" else len(texts),
                    "passages_per_s": round(median(values), 1),
                    "runs": [round(v, 1) for v in values],
                    "vs_naive": round(median(values) / naive, 2),
                }
            )
        results.setdefault("checks", {})[size] = {
            "max_abs_diff_vs_naive": diff,
            "max_abs_diff_vs_padded": diff_padded,
            "mean_tokens": float(np.mean(lengths)),
            "max_tokens": int(np.max(lengths)),
        }
        write_json(args.out, "dense_encoding.json", results)
        print(f"{size}: mean {np.mean(lengths):.1f} tokens, max {np.max(lengths)}; max |Δ| {diff:.2e}", flush=True)

    header = ["size", "method", "passages", "passages/s", "× naive"]
    rows = [[r["size"], r["method"], r["passages"], r["passages_per_s"], r["vs_naive"]] for r in results["rows"]]
    print(markdown_table(header, rows))
    print(f"target: odqa ≥ 3× naive on CPU ({device}, {precision})")
    print(json.dumps(results["checks"], indent=1))


if __name__ == "__main__":
    main()
