"""The sparse index store (format version 2): the scoring arrays are stored and memory-mapped at load, the
document-major counts are made only on demand, and version 1 stores (counts only) still load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from odqa_sparse import kernels
from odqa_sparse.retrievers import BM25Retriever, TfidfRetriever
from odqa_sparse.weighting import Impacts
from sparse_testdata import VARIANTS, make_corpus, make_retriever

from odqa_core import Document, IndexFormatError
from odqa_core.storage import sha256_file, write_store


def _indexed(variant: str, seed: int = 0, **options):
    docs, queries = make_corpus(seed)
    retriever = make_retriever(variant, **options)
    documents = [
        Document(
            f"doc-{i}", " ".join(tokens), f"title {i}" if i % 2 else "", {"source_ids": ("a", "b")} if i == 3 else {}
        )
        for i, tokens in enumerate(docs)
    ]
    retriever.index_tokens(docs, documents)
    return retriever, queries


def _assert_same_scoring(a, b, queries):
    n = len(a.documents)
    for k in (1, 10, n):
        for search in ("search_tokens", "search_exhaustive"):
            x, y = getattr(a, search)(queries, k), getattr(b, search)(queries, k)
            np.testing.assert_array_equal(x.indices, y.indices)
            np.testing.assert_array_equal(x.scores, y.scores)
    np.testing.assert_array_equal(a.score_tokens_all(queries), b.score_tokens_all(queries))
    candidates = np.random.default_rng(0).integers(0, n, size=(len(queries), 7))
    np.testing.assert_array_equal(a.score_tokens(queries, candidates), b.score_tokens(queries, candidates))


def _save_version_1(retriever, path):
    """The store as format version 1 wrote it: the document-major counts, no scoring arrays."""
    embedding = retriever.sparse_embedding
    with write_store(
        path, kind="retriever", name=retriever.name, format_version=1, config=retriever.config()
    ) as writer:
        writer.save_documents(retriever.documents)
        embedding.save(writer)
        writer.params.update(
            {
                "analyzer": {"name": retriever.analyzer, "options": retriever.text_analyzer.config()},
                "n_docs": embedding.n_docs,
                "n_empty_docs": int(np.count_nonzero(embedding.doc_lengths == 0)),
                "n_terms": embedding.n_terms,
                "scoring": retriever.params(),
            }
        )


def _resave(path, name, array):
    """Replace one array of a store and fix its manifest entry, so only the loader's own checks can object."""
    file = path / f"{name}.npy"
    np.save(file, array)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][file.name] = {"bytes": file.stat().st_size, "sha256": sha256_file(file)}
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_loaded_index_scores_exactly_as_the_one_it_was_saved_from(tmp_path, variant):
    retriever, queries = _indexed(variant)
    retriever.save(tmp_path / "idx")
    loaded = type(retriever).load(tmp_path / "idx")
    _assert_same_scoring(retriever, loaded, queries)
    assert [d.id for d in loaded.documents] == [d.id for d in retriever.documents]


@pytest.mark.parametrize("variant", ["okapi", "tfidf"])
def test_loading_maps_the_scoring_arrays_and_makes_no_document_major_counts(tmp_path, variant):
    retriever, queries = _indexed(variant)
    retriever.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    assert not any(name.startswith("counts_") for name in manifest["files"])
    loaded = type(retriever).load(tmp_path / "idx")
    for name in Impacts.ARRAYS:
        array = getattr(loaded._impacts, name)
        assert isinstance(array.base, np.memmap), name  # a view of the file's pages, not a copy
        assert not array.flags.writeable, name
    loaded.search_tokens(queries, 10)
    loaded.score_tokens_all(queries)
    assert loaded.sparse_embedding._counts is None  # nothing on the search path made the document-major matrix
    # Asked for, it is made from the mapped term-major counts, equal to the in-memory index's.
    original = retriever.sparse_embedding
    np.testing.assert_array_equal(loaded.sparse_embedding.counts.toarray(), original.counts.toarray())
    np.testing.assert_array_equal(loaded.sparse_embedding.doc_freqs, original.doc_freqs)
    np.testing.assert_array_equal(loaded.sparse_embedding.doc_lengths, original.doc_lengths)
    assert loaded.sparse_embedding.vocabulary == original.vocabulary


def test_indexing_keeps_no_document_major_counts_but_gives_them_on_demand(corpus):
    docs, _ = corpus
    retriever = BM25Retriever()
    retriever.index_tokens(docs)
    embedding = retriever.sparse_embedding
    assert embedding._counts is None
    t_ptr, t_docs, _ = embedding.postings()
    assert t_ptr is retriever._impacts.t_ptr and t_docs is retriever._impacts.t_docs  # shared, not copied
    from odqa_sparse.embedding import SparseEmbedding

    np.testing.assert_array_equal(embedding.counts.toarray(), SparseEmbedding.build(docs).counts.toarray())


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_version_1_index_still_loads_and_scores_the_same(tmp_path, variant):
    retriever, queries = _indexed(variant, seed=1)
    _save_version_1(retriever, tmp_path / "old")
    loaded = type(retriever).load(tmp_path / "old")
    _assert_same_scoring(retriever, loaded, queries)
    loaded.save(tmp_path / "new")  # and saving it again writes the current version
    assert json.loads((tmp_path / "new" / "manifest.json").read_text())["format_version"] == 2
    _assert_same_scoring(retriever, type(retriever).load(tmp_path / "new"), queries)


def test_a_version_1_index_loads_through_the_pipeline(tmp_path):
    from odqa_core.pipeline import load_retriever

    retriever, queries = _indexed("lucene")
    _save_version_1(retriever, tmp_path / "old")
    loaded = load_retriever(tmp_path / "old")
    _assert_same_scoring(retriever, loaded, queries)


def test_an_unknown_format_version_names_the_readable_ones(tmp_path):
    retriever, _ = _indexed("okapi")
    retriever.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["format_version"] = 3
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match=r"format version 3, this version reads 1 or 2; rebuild it"):
        BM25Retriever.load(tmp_path / "idx")


def test_the_first_search_of_a_loaded_index_compiles_nothing_new(tmp_path):
    # numba compiles a separate specialisation for read-only arrays: the warm-up must compile the one the
    # memory-mapped arrays use, or the first real search pays a compilation.
    retriever, queries = _indexed("okapi")
    retriever.save(tmp_path / "idx")
    loaded = BM25Retriever.load(tmp_path / "idx")
    loaded.warm_up()
    dispatchers = (kernels.search_batch_scratch, kernels.score_all_batch, kernels.score_candidates_batch)
    before = [list(d.signatures) for d in dispatchers]
    loaded.search_tokens(queries, 10)
    loaded.search_tokens(queries[:1], 3)
    loaded.score_tokens_all(queries)
    loaded.score_tokens(queries, np.zeros((len(queries), 2), np.int64))
    assert [list(d.signatures) for d in dispatchers] == before


@pytest.mark.parametrize(
    "name, damage, message",
    [
        ("t_docs", lambda a: np.where(a == a.max(), 10**6, a).astype(np.int32), "document ids outside"),
        ("t_docs", lambda a: np.where(a == a.max(), -1, a).astype(np.int32), "document ids outside"),
        ("b_rank", lambda a: a + 1, "bitmaps that do not match"),
        ("b_words", lambda a: a | np.uint64(1), "bitmaps that do not match"),
        ("b_slot", lambda a: np.where(a >= 0, a + 1, a).astype(np.int32), "bitmap slots"),
        ("t_max", lambda a: a[:-1], "terms"),
        ("t_imp", lambda a: a[:-1], "inconsistent lengths"),
        ("t_ptr", lambda a: a[::-1].copy(), "posting"),
        ("t_counts", lambda a: a[:-1], "t_counts"),
        ("t_imp", lambda a: a.astype(np.float64), "expected 1-d float32"),
    ],
)
def test_inconsistent_scoring_arrays_are_refused(tmp_path, name, damage, message):
    # Whatever a store holds, the kernels must never index outside the arrays: checked at load, cheaply.
    retriever, _ = _indexed("okapi")
    retriever.save(tmp_path / "idx")
    assert len(retriever._impacts.b_words)  # the corpus has frequent terms with bitmaps
    _resave(tmp_path / "idx", name, damage(np.load(tmp_path / "idx" / f"{name}.npy")))
    with pytest.raises(IndexFormatError, match=message):
        BM25Retriever.load(tmp_path / "idx")


def test_scoring_parameters_that_disagree_with_the_options_are_refused(tmp_path):
    retriever, _ = _indexed("okapi")
    retriever.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["params"]["scoring"]["k1"] = 2.0
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="scoring parameters"):
        BM25Retriever.load(tmp_path / "idx")


def test_tfidf_and_bm25_share_one_loaded_embedding_layout(tmp_path):
    docs, queries = make_corpus(2)
    for retriever in (TfidfRetriever(sublinear_tf=True), BM25Retriever(variant="bm25l", k1=1.2, b=0.5)):
        retriever.index_tokens(docs)
        retriever.save(tmp_path / retriever.name)
        _assert_same_scoring(retriever, type(retriever).load(tmp_path / retriever.name), queries)


def test_the_document_table_of_a_loaded_index_is_read_on_demand(tmp_path):
    retriever, queries = _indexed("okapi")
    retriever.save(tmp_path / "idx")
    loaded = BM25Retriever.load(tmp_path / "idx")
    assert not isinstance(loaded.documents, list)
    assert len(loaded.documents) == len(retriever.documents)
    assert [d.to_dict() for d in loaded.documents] == [d.to_dict() for d in retriever.documents]
    assert loaded.documents[-1] == retriever.documents[-1]
    assert [d.id for d in loaded.documents[2:5]] == ["doc-2", "doc-3", "doc-4"]
    with pytest.raises(IndexError):
        loaded.documents[len(retriever.documents)]
    hits = loaded.search_tokens(queries, 3)
    assert hits.documents is loaded.documents


def test_a_document_table_that_does_not_match_its_offsets_is_refused(tmp_path):
    retriever, _ = _indexed("okapi")
    retriever.save(tmp_path / "idx")
    table = tmp_path / "idx" / "documents.jsonl"
    table.write_text(table.read_text().replace('"doc-1"', '"doc-one"'))
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["files"]["documents.jsonl"] = {"bytes": table.stat().st_size, "sha256": sha256_file(table)}
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="document_offsets.npy does not match"):
        BM25Retriever.load(tmp_path / "idx")


def test_a_garbled_document_line_is_a_one_line_error_when_read(tmp_path):
    retriever, queries = _indexed("okapi")
    retriever.save(tmp_path / "idx")
    table = tmp_path / "idx" / "documents.jsonl"
    lines = table.read_text().splitlines(keepends=True)
    lines[0] = "[" + lines[0][1:]  # same length, no longer an object
    table.write_text("".join(lines))
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["files"]["documents.jsonl"] = {"bytes": table.stat().st_size, "sha256": sha256_file(table)}
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    loaded = BM25Retriever.load(tmp_path / "idx")
    assert loaded.documents[1].id == "doc-1"
    with pytest.raises(IndexFormatError, match="documents.jsonl line 1: not a stored document"):
        loaded.documents[0]


def test_a_loaded_index_saved_over_its_own_store_stays_the_same(tmp_path):
    # Its arrays and document table are mapped from the files the save replaces.
    retriever, queries = _indexed("bm25+")
    retriever.save(tmp_path / "idx")
    loaded = BM25Retriever.load(tmp_path / "idx")
    loaded.save(tmp_path / "idx")
    _assert_same_scoring(retriever, loaded, queries)
    again = BM25Retriever.load(tmp_path / "idx")
    _assert_same_scoring(retriever, again, queries)
    assert [d.to_dict() for d in again.documents] == [d.to_dict() for d in retriever.documents]
