"""What compressing odqa's BM25 postings would cost in search speed: block-packed doc ids and quantized impacts.

Question answered: "tantivy holds 1M passages in a fraction of odqa's memory (compressed postings); what would
odqa pay in speed for the same compression?" odqa's postings are plain arrays, 8 bytes a posting (int32 doc id,
float32 impact) plus presence bitmaps for frequent terms. The usual compression (tantivy, Lucene, PISA) stores doc
ids as deltas bit-packed in blocks of 128 (each block at the bit width of its largest delta) and impacts quantized
to one byte. This script builds both layouts from the same odqa index (synthetic corpus of ``synthetic.py``) and
times, single-threaded, the two kinds of posting access odqa's search kernel makes:

- a sequential pass (term-at-a-time accumulation of every posting of the query's terms into a dense float32
  accumulator: the exhaustive path and the unpruned part of the pruned one), on the ``zipf`` and ``natural`` query
  sets of ``bm25_speed.py``;
- random lookups of one document in a term's list (what completing a candidate does: a presence-bitmap rank
  lookup or a binary search today; with blocks, a binary search over the block's last doc ids, then the decoding
  of that block up to the document).

The decoder is scalar numba code (a bit-extract loop), not the SIMD bit unpacking of tantivy's ``bitpacking``
crate; the ratio measured is therefore an upper estimate of what compression costs with a SIMD decoder, and a
realistic one for a numba kernel. Quantizing impacts to 8 bits also changes scores (hence rankings): ties and
near-ties are no longer exact, which odqa's "identical to rank-bm25" property rules out; the quantization error
is reported.

Results are printed and written as JSON to ``--out``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import benchmark_parser, header_lines, median, run_header, single_thread_env, write_json  # noqa: E402

BLOCK = 128


def main() -> None:
    parser = benchmark_parser(__doc__, out="postings_compression")
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--lookups", type=int, default=2_000_000, help="random single-document lookups timed")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    single_thread_env()

    import bm25_speed
    import numpy as np
    import synthetic
    from numba import njit
    from odqa_sparse.kernels import _lower_bound as lower_bound  # the kernel's own binary search

    info = run_header("plugins/odqa-sparse/odqa_sparse", "odqa-sparse", "numba", "numpy")
    print(header_lines(info), flush=True)

    @njit(cache=True, nogil=True)
    def encode(t_ptr, t_docs, t_imp, t_max):
        """Per term, blocks of BLOCK postings: doc-id deltas bit-packed at the block's width (uint32 words) and
        impacts quantized to uint8 (linear, 0..t_max). Returns (block ptr per term, block last doc, block width,
        block word offset, words, quantized impacts)."""
        n_terms = t_ptr.shape[0] - 1
        b_ptr = np.zeros(n_terms + 1, np.int64)
        for t in range(n_terms):
            b_ptr[t + 1] = b_ptr[t] + (t_ptr[t + 1] - t_ptr[t] + BLOCK - 1) // BLOCK
        n_blocks = b_ptr[n_terms]
        last = np.empty(n_blocks, np.int32)
        width = np.empty(n_blocks, np.uint8)
        w_off = np.zeros(n_blocks + 1, np.int64)
        # First pass: widths and word offsets.
        for t in range(n_terms):
            p0 = t_ptr[t]
            p1 = t_ptr[t + 1]
            for bi in range(b_ptr[t], b_ptr[t + 1]):
                a = p0 + (bi - b_ptr[t]) * BLOCK
                e = min(a + BLOCK, p1)
                prev = -1 if a == p0 else t_docs[a - 1]
                mx = 0
                for p in range(a, e):
                    g = t_docs[p] - prev - 1  # deltas >= 1 stored minus one
                    prev = t_docs[p]
                    if g > mx:
                        mx = g
                bits = 0
                while (1 << bits) <= mx:
                    bits += 1
                width[bi] = bits
                last[bi] = t_docs[e - 1]
                w_off[bi + 1] = w_off[bi] + ((e - a) * bits + 31) // 32
        words = np.zeros(w_off[n_blocks], np.uint32)
        q_imp = np.empty(t_docs.shape[0], np.uint8)
        for t in range(n_terms):
            p0 = t_ptr[t]
            p1 = t_ptr[t + 1]
            scale = 255.0 / t_max[t] if t_max[t] > 0 else 0.0
            for p in range(p0, p1):
                q_imp[p] = np.uint8(min(255.0, np.floor(t_imp[p] * scale + 0.5)))
            for bi in range(b_ptr[t], b_ptr[t + 1]):
                a = p0 + (bi - b_ptr[t]) * BLOCK
                e = min(a + BLOCK, p1)
                prev = -1 if a == p0 else t_docs[a - 1]
                bits = np.int64(width[bi])
                pos = w_off[bi] * 32
                for p in range(a, e):
                    g = np.int64(t_docs[p] - prev - 1)
                    prev = t_docs[p]
                    if bits > 0:
                        wi = pos >> 5
                        sh = pos & 31
                        words[wi] |= np.uint32((g << sh) & 0xFFFFFFFF)
                        if sh + bits > 32:
                            words[wi + 1] |= np.uint32(g >> (32 - sh))
                    pos += bits
        return b_ptr, last, width, w_off, words, q_imp

    @njit(cache=True, nogil=True, inline="always")
    def decode_block(words, w_off, width, bi, count, first_prev, out):
        bits = np.int64(width[bi])
        pos = w_off[bi] * 32
        mask = (np.int64(1) << bits) - 1
        prev = np.int64(first_prev)
        for j in range(count):
            g = np.int64(0)
            if bits > 0:
                wi = pos >> 5
                sh = pos & 31
                v = np.int64(words[wi]) >> sh
                if sh + bits > 32:
                    v |= np.int64(words[wi + 1]) << (32 - sh)
                g = v & mask
            prev = prev + g + 1
            out[j] = prev
            pos += bits

    @njit(cache=True, nogil=True)
    def mismatches(t_ptr, t_docs, b_ptr, last, width, w_off, words):
        """Postings whose decoded doc id differs from the plain one (0: the encoding round-trips)."""
        buf = np.empty(BLOCK, np.int64)
        bad = 0
        for t in range(t_ptr.shape[0] - 1):
            for bi in range(b_ptr[t], b_ptr[t + 1]):
                a = t_ptr[t] + (bi - b_ptr[t]) * BLOCK
                count = min(BLOCK, t_ptr[t + 1] - a)
                decode_block(words, w_off, width, bi, count, -1 if bi == b_ptr[t] else last[bi - 1], buf)
                for j in range(count):
                    bad += buf[j] != t_docs[a + j]
        return bad

    @njit(cache=True, nogil=True)
    def accumulate_raw(q_ptr, q_terms, t_ptr, t_docs, t_imp, acc):
        total = 0.0
        for q in range(q_ptr.shape[0] - 1):
            for i in range(q_ptr[q], q_ptr[q + 1]):
                t = q_terms[i]
                for p in range(t_ptr[t], t_ptr[t + 1]):
                    acc[t_docs[p]] += t_imp[p]
            for i in range(q_ptr[q], q_ptr[q + 1]):
                t = q_terms[i]
                for p in range(t_ptr[t], t_ptr[t + 1]):
                    d = t_docs[p]
                    total += acc[d]
                    acc[d] = 0.0
        return total

    @njit(cache=True, nogil=True)
    def accumulate_packed(q_ptr, q_terms, t_ptr, t_max, b_ptr, last, width, w_off, words, q_imp, acc):
        buf = np.empty(BLOCK, np.int64)
        total = 0.0
        for q in range(q_ptr.shape[0] - 1):
            for i in range(q_ptr[q], q_ptr[q + 1]):
                t = q_terms[i]
                step = np.float32(t_max[t] / 255.0)
                p0 = t_ptr[t]
                for bi in range(b_ptr[t], b_ptr[t + 1]):
                    a = p0 + (bi - b_ptr[t]) * BLOCK
                    count = min(BLOCK, t_ptr[t + 1] - a)
                    prev = -1 if bi == b_ptr[t] else last[bi - 1]
                    decode_block(words, w_off, width, bi, count, prev, buf)
                    for j in range(count):
                        acc[buf[j]] += step * np.float32(q_imp[a + j])
            for i in range(q_ptr[q], q_ptr[q + 1]):
                t = q_terms[i]
                p0 = t_ptr[t]
                for bi in range(b_ptr[t], b_ptr[t + 1]):
                    a = p0 + (bi - b_ptr[t]) * BLOCK
                    count = min(BLOCK, t_ptr[t + 1] - a)
                    prev = -1 if bi == b_ptr[t] else last[bi - 1]
                    decode_block(words, w_off, width, bi, count, prev, buf)
                    for j in range(count):
                        d = buf[j]
                        total += acc[d]
                        acc[d] = 0.0
        return total

    @njit(cache=True, nogil=True)
    def lookup_raw(terms, docs, t_ptr, t_docs, t_imp):
        """Binary search of each (term, doc) in the plain list (odqa's path for terms without a bitmap)."""
        total = 0.0
        for j in range(terms.shape[0]):
            t = terms[j]
            d = docs[j]
            e = t_ptr[t + 1]
            lo = lower_bound(t_docs, t_ptr[t], e, d)
            if lo < e and t_docs[lo] == d:
                total += t_imp[lo]
        return total

    @njit(cache=True, nogil=True)
    def lookup_packed(terms, docs, t_ptr, t_max, b_ptr, last, width, w_off, words, q_imp):
        """Binary search over the blocks' last doc ids, then decoding the block up to the document."""
        total = 0.0
        for j in range(terms.shape[0]):
            t = terms[j]
            d = docs[j]
            e = b_ptr[t + 1]
            lo = lower_bound(last, b_ptr[t], e, d)
            if lo == e:
                continue
            bi = lo
            bits = np.int64(width[bi])
            pos = w_off[bi] * 32
            mask = (np.int64(1) << bits) - 1
            prev = np.int64(-1 if bi == b_ptr[t] else last[bi - 1])
            a = t_ptr[t] + (bi - b_ptr[t]) * BLOCK
            count = min(BLOCK, t_ptr[t + 1] - a)
            for k in range(count):
                g = np.int64(0)
                if bits > 0:
                    wi = pos >> 5
                    sh = pos & 31
                    v = np.int64(words[wi]) >> sh
                    if sh + bits > 32:
                        v |= np.int64(words[wi + 1]) << (32 - sh)
                    g = v & mask
                prev = prev + g + 1
                pos += bits
                if prev >= d:
                    if prev == d:
                        total += np.float32(t_max[t] / 255.0) * np.float32(q_imp[a + k])
                    break
        return total

    t0 = time.perf_counter()
    corpus = synthetic.generate(args.passages, seed=0)
    sets = {
        "zipf": synthetic.generate_queries(corpus, args.queries, seed=1).token_lists(),
        "natural": synthetic.generate_natural_queries(corpus, args.queries, seed=2).token_lists(),
    }
    retriever = bm25_speed.odqa_retriever()
    retriever.index_tokens(corpus.token_lists())
    del corpus
    imp = retriever._impacts
    t_ptr, t_docs, t_imp, t_max = imp.t_ptr, imp.t_docs, imp.t_imp, imp.t_max
    print(f"indexed {args.passages:,} passages in {time.perf_counter() - t0:.1f} s", flush=True)

    t = time.perf_counter()
    b_ptr, last, width, w_off, words, q_imp = encode(t_ptr, t_docs, t_imp, t_max)
    encode_s = time.perf_counter() - t
    n_post = len(t_docs)
    raw_bytes = t_docs.nbytes + t_imp.nbytes
    packed_bytes = words.nbytes + q_imp.nbytes + last.nbytes + width.nbytes + w_off.nbytes + b_ptr.nbytes
    bitmap_bytes = imp.b_words.nbytes + imp.b_rank.nbytes
    # Check the round trip on every term (decode all, compare), and the quantization error of the impacts.
    step = (t_max / 255.0).astype(np.float64)
    term_of = np.repeat(np.arange(len(t_max)), np.diff(t_ptr))
    q_err = np.abs(q_imp * step[term_of] - t_imp) / np.maximum(t_max[term_of], 1e-30)
    n_docs = imp.n_docs
    acc = np.zeros(n_docs, np.float32)
    bad = mismatches(t_ptr, t_docs, b_ptr, last, width, w_off, words)
    if bad:
        raise SystemExit(f"the block encoding does not round-trip: {bad} doc ids differ")

    emb = retriever.sparse_embedding
    out: dict = {
        "info": info,
        "passages": args.passages,
        "postings": int(n_post),
        "encode_s": encode_s,
        "raw_mb": raw_bytes / 2**20,
        "packed_mb": packed_bytes / 2**20,
        "bitmaps_mb": bitmap_bytes / 2**20,
        "bits_per_doc_id": float(words.nbytes * 8 / n_post),
        "impact_quantization_max_rel_error": float(q_err.max()),
        "impact_quantization_mean_rel_error": float(q_err.mean()),
        "sets": {},
    }
    for name, queries in sets.items():
        ptr, terms, _ = emb.query_arrays(queries)
        terms = terms.astype(np.int64)
        postings = int((t_ptr[terms + 1] - t_ptr[terms]).sum())
        accumulate_raw(ptr, terms, t_ptr, t_docs, t_imp, acc)  # compile / warm
        accumulate_packed(ptr, terms, t_ptr, t_max, b_ptr, last, width, w_off, words, q_imp, acc)
        raw_t, packed_t = [], []
        for _ in range(args.reps):  # interleaved
            t = time.perf_counter()
            s_raw = accumulate_raw(ptr, terms, t_ptr, t_docs, t_imp, acc)
            raw_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            s_packed = accumulate_packed(ptr, terms, t_ptr, t_max, b_ptr, last, width, w_off, words, q_imp, acc)
            packed_t.append(time.perf_counter() - t)
        # Random lookups: (query term, a random document) pairs of this set's terms.
        rng = np.random.default_rng(0)
        l_terms = terms[rng.integers(0, len(terms), args.lookups)]
        # Half of the lookups hit (a document of the list), half are random documents.
        pick = t_ptr[l_terms] + (rng.random(args.lookups) * (t_ptr[l_terms + 1] - t_ptr[l_terms])).astype(np.int64)
        l_docs = np.where(rng.random(args.lookups) < 0.5, t_docs[pick], rng.integers(0, n_docs, args.lookups))
        l_docs = l_docs.astype(np.int32)
        lookup_raw(l_terms[:10], l_docs[:10], t_ptr, t_docs, t_imp)
        lookup_packed(l_terms[:10], l_docs[:10], t_ptr, t_max, b_ptr, last, width, w_off, words, q_imp)
        lr, lp = [], []
        for _ in range(args.reps):
            t = time.perf_counter()
            v_raw = lookup_raw(l_terms, l_docs, t_ptr, t_docs, t_imp)
            lr.append(time.perf_counter() - t)
            t = time.perf_counter()
            v_packed = lookup_packed(l_terms, l_docs, t_ptr, t_max, b_ptr, last, width, w_off, words, q_imp)
            lp.append(time.perf_counter() - t)
        out["sets"][name] = {
            "postings_scanned_per_pass": postings,
            "sequential_raw_ns_per_posting": median(raw_t) / postings / 2 * 1e9,
            "sequential_packed_ns_per_posting": median(packed_t) / postings / 2 * 1e9,
            "sequential_ratio": median(packed_t) / median(raw_t),
            "lookup_raw_ns": median(lr) / args.lookups * 1e9,
            "lookup_packed_ns": median(lp) / args.lookups * 1e9,
            "lookup_ratio": median(lp) / median(lr),
            "checksums": [float(s_raw), float(s_packed), float(v_raw), float(v_packed)],
        }
    print(
        f"{n_post:,} postings: plain doc ids + float32 impacts {out['raw_mb']:,.0f} MB (bitmaps "
        f"{out['bitmaps_mb']:,.0f} MB more); block-packed deltas + uint8 impacts {out['packed_mb']:,.0f} MB "
        f"({out['bits_per_doc_id']:.2f} bits per doc id); encoded in {encode_s:.1f} s; impact quantization "
        f"error mean {out['impact_quantization_mean_rel_error']:.2e}, "
        f"max {out['impact_quantization_max_rel_error']:.2e} of the term's max impact"
    )
    print(
        "| query set | postings per pass | sequential ns/posting plain | packed | packed / plain |"
        " lookup ns plain | packed | packed / plain |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in out["sets"].items():
        print(
            f"| {name} | {r['postings_scanned_per_pass']:,} | {r['sequential_raw_ns_per_posting']:.2f} | "
            f"{r['sequential_packed_ns_per_posting']:.2f} | {r['sequential_ratio']:.2f}x | "
            f"{r['lookup_raw_ns']:.0f} | {r['lookup_packed_ns']:.0f} | {r['lookup_ratio']:.2f}x |"
        )
    print(f"wrote {write_json(args.out, 'postings_compression.json', out)}")


if __name__ == "__main__":
    main()
