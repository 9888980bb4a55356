from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from odqa_sparse.embedding import SparseEmbedding

from odqa_core import IndexFormatError
from odqa_core.storage import open_store, write_store


def naive(docs):
    vocab: dict[str, int] = {}
    for doc in docs:
        for token in doc:
            vocab.setdefault(token, len(vocab))
    dense = np.zeros((len(docs), len(vocab)), np.int64)
    for row, doc in enumerate(docs):
        for token, n in Counter(doc).items():
            dense[row, vocab[token]] = n
    return vocab, dense


def test_counts_equal_a_counter_based_construction(corpus):
    docs, _ = corpus
    emb = SparseEmbedding.build(docs)
    vocab, dense = naive(docs)
    assert emb.vocabulary == list(vocab)
    assert emb.term_ids == vocab
    assert emb.counts.dtype == np.int32
    assert emb.counts.shape == dense.shape
    np.testing.assert_array_equal(emb.counts.toarray(), dense)
    np.testing.assert_array_equal(emb.doc_lengths, [len(d) for d in docs])
    np.testing.assert_array_equal(emb.doc_freqs, (dense > 0).sum(axis=0))
    for row in range(emb.n_docs):  # canonical CSR: strictly increasing column ids per row
        cols = emb.counts.indices[emb.counts.indptr[row] : emb.counts.indptr[row + 1]]
        assert (np.diff(cols) > 0).all()
    assert emb.avgdl == pytest.approx(sum(map(len, docs)) / len(docs))


def test_build_streams_generators_and_reports_progress():
    docs = [["a", "b", "a"], [], ["c"]] * 700
    seen = []
    emb = SparseEmbedding.build((iter(d) for d in docs), progress=seen.append)
    assert sum(seen) == len(docs)
    np.testing.assert_array_equal(emb.counts.toarray(), naive(docs)[1])


def test_term_major_postings(corpus):
    docs, _ = corpus
    emb = SparseEmbedding.build(docs)
    t_ptr, t_docs, t_counts = emb.postings()
    csc = emb.counts.tocsc()
    csc.sort_indices()
    np.testing.assert_array_equal(t_ptr, csc.indptr)
    np.testing.assert_array_equal(t_docs, csc.indices)
    np.testing.assert_array_equal(t_counts, csc.data)


def test_query_counts_drop_unknown_terms_and_count_repeats():
    emb = SparseEmbedding.build([["a", "b"], ["b", "c", "c"]])
    q = emb.query_counts([["c", "zzz", "c", "a"], [], ["zzz"], ["b"]])
    assert q.shape == (4, 3)
    assert q.dtype == np.int32
    np.testing.assert_array_equal(q.toarray(), [[1, 0, 2], [0, 0, 0], [0, 0, 0], [0, 1, 0]])
    ptr, terms, counts = emb.query_arrays([])
    assert ptr.tolist() == [0] and len(terms) == len(counts) == 0


def test_empty_corpus_builds_nothing():
    emb = SparseEmbedding.build([])
    assert emb.n_docs == 0 and emb.n_terms == 0
    assert emb.avgdl == 0.0


def test_save_load_round_trip(tmp_path, corpus):
    docs, queries = corpus
    emb = SparseEmbedding.build(docs)
    with write_store(tmp_path / "s", kind="test", name="emb", format_version=1, config={}) as writer:
        emb.save(writer)
    loaded = SparseEmbedding.load(open_store(tmp_path / "s"))
    assert loaded.vocabulary == emb.vocabulary
    np.testing.assert_array_equal(loaded.counts.toarray(), emb.counts.toarray())
    np.testing.assert_array_equal(loaded.doc_lengths, emb.doc_lengths)
    np.testing.assert_array_equal(loaded.query_counts(queries).toarray(), emb.query_counts(queries).toarray())


def test_inconsistent_arrays_are_refused(tmp_path):
    emb = SparseEmbedding.build([["a", "b"], ["b"]])
    with write_store(tmp_path / "s", kind="test", name="emb", format_version=1, config={}) as writer:
        emb.save(writer)
        np.save(writer.path("counts_indices.npy"), np.array([0, 7, 1], np.int32))  # term 7 does not exist
    with pytest.raises(IndexFormatError, match="vocabulary"):
        SparseEmbedding.load(open_store(tmp_path / "s"))
    with write_store(tmp_path / "t", kind="test", name="emb", format_version=1, config={}) as writer:
        emb.save(writer)
        np.save(writer.path("doc_lengths.npy"), np.array([2.0, 1.0]))  # wrong dtype
    with pytest.raises(IndexFormatError, match="doc_lengths"):
        SparseEmbedding.load(open_store(tmp_path / "t"))
