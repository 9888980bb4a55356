"""Seeded token corpora shared by the sparse tests."""

from __future__ import annotations

import numpy as np


def zipf_tokens(rng: np.random.Generator, n: int, vocab: int, lo: int, hi: int, s: float = 1.1) -> list[list[str]]:
    """``n`` token lists of ``lo``..``hi`` tokens drawn from a Zipf(s) distribution over ``vocab`` terms."""
    p = 1.0 / np.arange(1, vocab + 1) ** s
    p /= p.sum()
    lens = rng.integers(lo, hi + 1, n)
    ids = rng.choice(vocab, size=int(lens.sum()), p=p)
    words = [f"t{i}" for i in ids]
    ends = np.cumsum(lens)
    return [words[e - m : e] for e, m in zip(ends.tolist(), lens.tolist())]


def make_corpus(seed: int, n_docs: int = 300, vocab: int = 400, n_queries: int = 40):
    """A seeded corpus (some empty documents) and queries with repeated, out-of-vocabulary and empty entries."""
    rng = np.random.default_rng(seed)
    docs = zipf_tokens(rng, n_docs, vocab, 0, 30)
    queries = zipf_tokens(rng, n_queries, vocab, 1, 8)
    queries += [
        queries[0] + queries[0][:2],  # repeated tokens
        ["never-seen", "also-unseen"],  # only out-of-vocabulary tokens
        [],  # empty
        queries[1] + ["never-seen"],
        ["t0", "t0", "t0", "t1"],  # frequent terms (negative okapi idf before the floor)
    ]
    return docs, queries
