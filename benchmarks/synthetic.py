"""Seeded synthetic corpora for throughput and memory benchmarks.

Question answered: "how do the sparse retrievers scale to 100k and 1M passages?" -- real corpora of that size are
not shipped with the project, so a corpus with the statistics that matter for inverted-index speed (a Zipf-shaped
vocabulary, passage lengths like 30-word windows, short queries that share terms with some passage) is generated
at run time, the same one for every system compared.

- vocabulary: ``vocab`` terms ``w0 .. w{vocab-1}``; term of rank r (1-based) has probability proportional to
  ``r ** -exponent`` (a finite Zipf law). Term strings are assigned to ranks through a seeded permutation so that
  frequent terms are not the short strings.
- passages: lengths uniform in ``[min_len, max_len]``, tokens drawn i.i.d. from the Zipf law.
- queries: 3-10 tokens; 2-5 distinct tokens sampled from one random passage (the "relevant" passage, returned as
  ``source``) plus Zipf noise tokens up to the drawn query length, shuffled. Their terms are mostly very frequent
  ones (the noise follows the corpus's own Zipf law).
- natural queries (:func:`generate_natural_queries`): 3-8 distinct tokens of one random passage drawn with
  probability proportional to idf², like the content words of a real question (mostly rare terms).

Everything is produced with numpy (one token id array + passage offsets, CSR style); strings are made only when
asked for (:meth:`Corpus.token_lists`, :meth:`Corpus.texts`).

Run ``python benchmarks/synthetic.py --help`` to print corpus statistics for a size.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Corpus:
    """A generated corpus: token ids of every passage (flat) with passage offsets, and the term strings."""

    ids: np.ndarray  # int32, all passages' tokens concatenated
    offsets: np.ndarray  # int64, len = n + 1
    vocab: np.ndarray  # object array of term strings, indexed by token id

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    def passage_ids(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def token_lists(self, start: int = 0, stop: int | None = None) -> list[list[str]]:
        """Passages ``start:stop`` as lists of term strings (strings shared with the vocabulary table)."""
        stop = len(self) if stop is None else stop
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        words = self.vocab[self.ids[lo:hi]].tolist()
        bounds = (self.offsets[start : stop + 1] - lo).tolist()
        return [words[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def texts(self, start: int = 0, stop: int | None = None, chunk: int = 200_000) -> list[str]:
        """Passages ``start:stop`` as space-joined texts, built in chunks with C-level joins."""
        stop = len(self) if stop is None else stop
        out: list[str] = []
        for a in range(start, stop, chunk):
            b = min(stop, a + chunk)
            lo, hi = int(self.offsets[a]), int(self.offsets[b])
            words = self.vocab[self.ids[lo:hi]]
            # Mark passage ends with a newline token, join once, split once.
            ends = (self.offsets[a + 1 : b + 1] - lo).astype(np.int64)
            words = np.insert(words, ends[:-1], "\n")
            out.extend(" ".join(words.tolist()).split(" \n "))
        return out


@dataclass
class Queries:
    ids: list[np.ndarray]
    source: np.ndarray  # the passage each query's content tokens were sampled from
    vocab: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def token_lists(self) -> list[list[str]]:
        return [self.vocab[q].tolist() for q in self.ids]

    def texts(self) -> list[str]:
        return [" ".join(t) for t in self.token_lists()]


def _zipf_cdf(vocab: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, vocab + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _vocab_strings(vocab: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rank -> token id permutation, token id -> string table)."""
    rank_to_id = rng.permutation(vocab).astype(np.int32)
    table = np.array([f"w{i}" for i in range(vocab)], dtype=object)
    return rank_to_id, table


def generate(
    n_passages: int,
    *,
    vocab: int = 200_000,
    exponent: float = 1.1,
    min_len: int = 30,
    max_len: int = 80,
    seed: int = 0,
    chunk: int = 250_000,
) -> Corpus:
    """A corpus of ``n_passages`` passages; the same arguments always give the same corpus."""
    rng = np.random.default_rng(seed)
    rank_to_id, table = _vocab_strings(vocab, rng)
    cdf = _zipf_cdf(vocab, exponent)
    lengths = rng.integers(min_len, max_len + 1, size=n_passages)
    offsets = np.zeros(n_passages + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.empty(int(offsets[-1]), np.int32)
    for a in range(0, len(ids), chunk * 64):
        b = min(len(ids), a + chunk * 64)
        ranks = np.searchsorted(cdf, rng.random(b - a), side="right")
        np.minimum(ranks, vocab - 1, out=ranks)
        ids[a:b] = rank_to_id[ranks]
    return Corpus(ids=ids, offsets=offsets, vocab=table)


def generate_queries(
    corpus: Corpus,
    n_queries: int,
    *,
    exponent: float = 1.1,
    min_len: int = 3,
    max_len: int = 10,
    seed: int = 1,
) -> Queries:
    """Queries of 3-10 tokens: 2-5 distinct tokens of one random passage plus Zipf noise, shuffled."""
    rng = np.random.default_rng(seed)
    vocab = len(corpus.vocab)
    # The rank -> id mapping of the corpus is not stored; noise is drawn over ids directly via the corpus's own
    # token distribution (a uniformly chosen token occurrence is a Zipf draw).
    sources = rng.integers(0, len(corpus), size=n_queries)
    lengths = rng.integers(min_len, max_len + 1, size=n_queries)
    out: list[np.ndarray] = []
    for src, length in zip(sources.tolist(), lengths.tolist()):
        passage = np.unique(corpus.passage_ids(src))
        n_content = min(len(passage), int(rng.integers(2, 6)), length)
        content = rng.choice(passage, size=n_content, replace=False)
        noise = corpus.ids[rng.integers(0, corpus.n_tokens, size=length - n_content)]
        q = np.concatenate([content, noise]).astype(np.int32)
        rng.shuffle(q)
        out.append(q)
    del vocab
    return Queries(ids=out, source=sources, vocab=corpus.vocab)


def document_frequencies(corpus: Corpus) -> np.ndarray:
    """Passages holding each term (int64, indexed by token id)."""
    import scipy.sparse as sp

    vocab = len(corpus.vocab)
    # Copies: scipy sorts and compacts the index arrays in place.
    matrix = sp.csr_array(
        (np.ones(len(corpus.ids), np.int32), corpus.ids.copy(), corpus.offsets.copy()), shape=(len(corpus), vocab)
    )
    matrix.sum_duplicates()  # one entry per (passage, term)
    return np.bincount(matrix.indices, minlength=vocab).astype(np.int64)


def generate_natural_queries(
    corpus: Corpus,
    n_queries: int,
    *,
    min_terms: int = 3,
    max_terms: int = 8,
    idf_power: float = 2.0,
    seed: int = 2,
    doc_freqs: np.ndarray | None = None,
) -> Queries:
    """Queries that look like real questions' content words: 3-8 distinct terms of one random passage.

    Each query takes ``min_terms..max_terms`` distinct terms of its source passage (all of them if it has fewer),
    drawn without replacement with probability proportional to ``idf ** idf_power``, idf being Lucene's
    ``ln(1 + (N - df + 0.5) / (df + 0.5))`` over the whole corpus (always > 0), and shuffled. Rare terms are then
    likely, frequent ones possible, as in a question whose stop words were removed -- unlike
    :func:`generate_queries`, whose Zipf noise makes most query terms very frequent.
    """
    rng = np.random.default_rng(seed)
    df = document_frequencies(corpus) if doc_freqs is None else doc_freqs
    n = float(len(corpus))
    weight = np.log1p((n - df + 0.5) / (df + 0.5)) ** idf_power
    sources = rng.integers(0, len(corpus), size=n_queries)
    sizes = rng.integers(min_terms, max_terms + 1, size=n_queries)
    out: list[np.ndarray] = []
    for src, size in zip(sources.tolist(), sizes.tolist()):
        terms = np.unique(corpus.passage_ids(src))
        p = weight[terms]
        chosen = rng.choice(terms, size=min(size, len(terms)), replace=False, p=p / p.sum())
        rng.shuffle(chosen)
        out.append(chosen.astype(np.int32))
    return Queries(ids=out, source=sources, vocab=corpus.vocab)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--vocab", type=int, default=200_000)
    parser.add_argument("--exponent", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--texts", action="store_true", help="also time building the space-joined texts")
    args = parser.parse_args()

    t0 = time.perf_counter()
    corpus = generate(args.passages, vocab=args.vocab, exponent=args.exponent, seed=args.seed)
    t1 = time.perf_counter()
    queries = generate_queries(corpus, args.queries, exponent=args.exponent, seed=args.seed + 1)
    t2 = time.perf_counter()
    counts = np.bincount(corpus.ids, minlength=args.vocab)
    df = np.zeros(args.vocab, np.int64)
    for i in range(min(len(corpus), 200_000)):
        df[np.unique(corpus.passage_ids(i))] += 1
    sampled = min(len(corpus), 200_000)
    print(f"passages            {len(corpus):,}  (generated in {t1 - t0:.2f} s)")
    print(f"tokens              {corpus.n_tokens:,}  (mean length {corpus.n_tokens / len(corpus):.1f})")
    print(f"distinct terms used {int((counts > 0).sum()):,} of {args.vocab:,}")
    print(f"top-5 term shares   {np.round(np.sort(counts)[::-1][:5] / corpus.n_tokens, 4).tolist()}")
    print(f"terms with df > N/2 {int((df > sampled / 2).sum())}  (over the first {sampled:,} passages)")
    print(f"queries             {len(queries):,}  (generated in {t2 - t1:.2f} s), e.g. {queries.texts()[:2]}")
    if args.texts:
        t3 = time.perf_counter()
        texts = corpus.texts()
        print(f"texts               {len(texts):,} built in {time.perf_counter() - t3:.2f} s, e.g. {texts[0][:60]!r}")
        assert len(texts) == len(corpus) and texts[-1].split() == corpus.token_lists(len(corpus) - 1)[0]


if __name__ == "__main__":
    main()
