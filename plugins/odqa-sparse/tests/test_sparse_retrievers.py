from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from odqa_sparse import retrievers
from odqa_sparse.retrievers import BM25Retriever, TfidfRetriever
from sparse_testdata import make_corpus

from odqa_core import DataError, Document, IndexFormatError, UnknownComponentError, UsageError, plugins
from odqa_core.testing import TOY_DOCUMENTS, RetrieverContract


class TestBM25Contract(RetrieverContract):
    @pytest.fixture(params=["okapi", "lucene", "bm25+", "bm25l"])
    def make_retriever(self, request):
        return lambda: BM25Retriever(variant=request.param)


class TestTfidfContract(RetrieverContract):
    @pytest.fixture
    def make_retriever(self):
        return lambda: TfidfRetriever()


class TestCharNgramBM25Contract(RetrieverContract):
    @pytest.fixture
    def make_retriever(self):
        return lambda: BM25Retriever(analyzer="char-ngram", analyzer_options={"n": 2}, include_title=False)


# --- options -----------------------------------------------------------------------------------------------------


def test_registered():
    assert plugins.get_component_class("retriever", "bm25") is BM25Retriever
    assert plugins.get_component_class("retriever", "tfidf") is TfidfRetriever


def test_unknown_variant_lists_the_valid_ones():
    with pytest.raises(UsageError, match="okapi, lucene, bm25\\+, bm25l, got 'bm26'"):
        BM25Retriever(variant="bm26")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BM25Retriever(k1=-1), "retriever 'bm25': option 'k1' must be a number >= 0, got -1"),
        (lambda: BM25Retriever(b=1.5), "retriever 'bm25': option 'b' must be a number from 0 to 1, got 1.5"),
        (lambda: BM25Retriever(delta="x"), "retriever 'bm25': option 'delta' must be a finite number, got 'x'"),
        (lambda: BM25Retriever(epsilon=None), "retriever 'bm25': option 'epsilon' must be a finite number, got None"),
        (lambda: BM25Retriever(threads=0), "retriever 'bm25': option 'threads' must be a positive integer, got 0"),
        (
            lambda: TfidfRetriever(include_title="yes"),
            "retriever 'tfidf': option 'include_title' must be true or false, got 'yes'",
        ),
        (
            lambda: TfidfRetriever(sublinear_tf=1),
            "retriever 'tfidf': option 'sublinear_tf' must be true or false, got 1",
        ),
        (
            lambda: plugins.create("analyzer", "char-ngram", {"n": 0}),
            "analyzer 'char-ngram': option 'n' must be a positive integer, got 0",
        ),
        (
            lambda: plugins.create("analyzer", "regex", {"lowercase": "no"}),
            "analyzer 'regex': option 'lowercase' must be true or false, got 'no'",
        ),
    ],
)
def test_option_errors_use_the_shared_wording(make, message):
    with pytest.raises(UsageError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"k1": -1}, "k1"),
        ({"k1": float("inf")}, "'k1' must be a finite number, got Infinity"),
        ({"delta": float("inf")}, "'delta' must be a finite number"),
        ({"b": float("nan")}, "'b'"),
        ({"epsilon": float("inf")}, "epsilon"),
        ({"b": 1.5}, "'b'"),
        ({"delta": "x"}, "delta"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"threads": 0}, "threads"),
        ({"analyzer_options": ["n", 2]}, "analyzer_options"),
        ({"include_title": "yes"}, "include_title"),
        ({"analyzer": "regex", "analyzer_options": {"nope": 1}}, "nope"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_usage_errors(options, match):
    with pytest.raises(UsageError, match=match):
        BM25Retriever.from_options(options)


def test_non_finite_parameters_are_refused_without_from_options_too():
    with pytest.raises(UsageError, match="'k1' must be a finite number, got inf"):
        BM25Retriever(k1=float("inf"))


def test_unknown_analyzer_is_an_unknown_component():
    with pytest.raises(UnknownComponentError, match="no-such-analyzer"):
        BM25Retriever(analyzer="no-such-analyzer")
    with pytest.raises(UnknownComponentError):
        TfidfRetriever.from_options({"analyzer": "no-such-analyzer"})


def test_resolved_parameters():
    assert BM25Retriever().params() == {"variant": "okapi", "k1": 1.5, "b": 0.75, "delta": 0.0, "epsilon": 0.25}
    assert BM25Retriever(variant="lucene").params()["k1"] == 0.9
    assert BM25Retriever(variant="lucene").params()["b"] == 0.4
    assert BM25Retriever(variant="bm25+").params()["delta"] == 1.0
    assert BM25Retriever(variant="bm25l", k1=2).params()["k1"] == 2.0


# --- indexing and searching ---------------------------------------------------------------------------------------


def test_empty_corpus_is_a_data_error():
    with pytest.raises(DataError, match="empty corpus"):
        BM25Retriever().index([])
    with pytest.raises(DataError, match="empty corpus"):
        BM25Retriever().index_tokens([])


def test_index_tokens_rejects_strings():
    with pytest.raises(UsageError, match="list of tokens"):
        BM25Retriever().index_tokens(["a whole string"])


def test_index_tokens_with_and_without_documents():
    docs = [["seoul", "han"], ["busan", "port"], ["seoul"]]
    r = BM25Retriever()
    r.index_tokens(docs)
    assert [d.id for d in r.documents] == ["0", "1", "2"]
    assert r.documents[-1].id == "2" and [d.id for d in r.documents[1:]] == ["1", "2"]
    assert r.search_tokens([["seoul"]], 2).ids().tolist() == [["2", "0"]]
    table = [Document(f"d{i}", "") for i in range(3)]
    r.index_tokens(docs, documents=table)
    assert r.search_tokens([["port"]], 1).ids().tolist() == [["d1"]]
    with pytest.raises(UsageError, match="3 token lists but 2 documents"):
        r.index_tokens(docs, documents=table[:2])


def test_token_paths_do_not_load_the_analyzer(tmp_path):
    r = BM25Retriever(analyzer="hf", analyzer_options={"path": str(tmp_path / "absent")})
    r.index_tokens([["a"], ["b"], ["c"]])
    assert r.search_tokens([["b"]], 1).indices.tolist() == [[1]]
    with pytest.raises(DataError, match="absent"):
        r.search(["b"], 1)


def test_text_path_equals_token_path():
    r_text, r_tokens = BM25Retriever(), BM25Retriever()
    r_text.index(list(TOY_DOCUMENTS))
    analyzer = r_text.text_analyzer
    r_tokens.index_tokens(analyzer.tokenize_many([f"{d.title}\n{d.text}" for d in TOY_DOCUMENTS]))
    queries = ["Which river flows through Seoul?", "김치 배추", "nothing-matches-this"]
    a, b = r_text.search(queries, 4), r_tokens.search_tokens(analyzer.tokenize_many(queries), 4)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.indices[0, 0] == 0 and a.indices[1, 0] == 5


def test_title_is_indexed_unless_disabled():
    docs = [Document("a", "some text", "Jeju"), Document("b", "other text", "Busan"), Document("c", "more", "")]
    with_title, without = BM25Retriever(), BM25Retriever(include_title=False)
    with_title.index(docs)
    without.index(docs)
    assert with_title.search(["jeju"], 1).scores[0, 0] > 0
    assert without.search(["jeju"], 1).scores[0, 0] == 0


def test_empty_and_unknown_queries_score_zero_in_index_order(corpus):
    docs, _ = corpus
    for r in (BM25Retriever(), BM25Retriever(variant="bm25+"), TfidfRetriever()):
        r.index_tokens(docs)
        res = r.search_tokens([[], ["never-seen"]], 5)
        assert res.indices.tolist() == [[0, 1, 2, 3, 4]] * 2
        assert not res.scores.any()


def test_degenerate_shapes():
    r = BM25Retriever()
    with pytest.raises(UsageError, match="no index yet"):
        r.search(["query before indexing"], 5)
    r.index_tokens([["a"], ["b"]])
    assert r.search([], 3).indices.shape == (0, 2)
    assert r.search_tokens([["a"]], 0).indices.shape == (1, 0)
    assert r.search_tokens([["a"]], 10).indices.tolist() == [[0, 1]]
    with pytest.raises(UsageError, match="k must be"):
        r.search_tokens([["a"]], -1)
    with pytest.raises(UsageError, match="list of queries"):
        r.search("a single string", 1)
    r.index_tokens([["a"], ["b"], ["c"]])
    assert r.search(np.array(["a", "b"]), 1).indices.tolist() == [[0], [1]]


@pytest.mark.parametrize("cls", [BM25Retriever, TfidfRetriever])
def test_corpus_of_empty_documents(cls):
    r = cls()
    r.index_tokens([[], []])
    res = r.search_tokens([["a"], []], 5)
    assert res.indices.tolist() == [[0, 1], [0, 1]] and not res.scores.any()


def test_chunks_and_threads_give_the_same_results(monkeypatch):
    docs, queries = make_corpus(3, n_docs=500, n_queries=60)
    r = BM25Retriever()
    r.index_tokens(docs)
    expected = r.search_tokens(queries, 7)
    monkeypatch.setattr(retrievers, "QUERY_CHUNK", 8)
    chunked = r.search_tokens(queries, 7)
    threaded = BM25Retriever(threads=3)
    threaded.index_tokens(docs)
    for res in (chunked, threaded.search_tokens(queries, 7)):
        np.testing.assert_array_equal(res.indices, expected.indices)
        np.testing.assert_array_equal(res.scores, expected.scores)


def test_sparse_embedding_is_shared_by_the_weightings(corpus):
    docs, _ = corpus
    bm25, tfidf = BM25Retriever(), TfidfRetriever()
    for r in (bm25, tfidf):
        r.index_tokens(docs)
    a, b = bm25.get_sparse_embedding(), tfidf.sparse_embedding
    assert a.vocabulary == b.vocabulary
    assert (a.counts != b.counts).nnz == 0
    with pytest.raises(UsageError, match="no index"):
        BM25Retriever().get_sparse_embedding()


# --- persistence --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: BM25Retriever(variant="bm25+", k1=1.2, analyzer="char-ngram", analyzer_options={"n": 3}),
        lambda: BM25Retriever(variant="lucene", analyzer="regex", analyzer_options={"lowercase": False}),
        lambda: TfidfRetriever(sublinear_tf=True),
    ],
)
def test_save_load_recreates_analyzer_and_scores(tmp_path, make):
    r = make()
    r.index(list(TOY_DOCUMENTS))
    r.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["params"]["analyzer"] == {"name": r.analyzer, "options": r.text_analyzer.config()}
    loaded = type(r).load(tmp_path / "idx")
    assert loaded.config() == r.config()
    assert loaded.text_analyzer.config() == r.text_analyzer.config()
    queries = ["Seoul river", "한강 서울", "Kimchi garlic", ""]
    a, b = r.search(queries, 5), loaded.search(queries, 5)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_load_overrides_runtime_options_only(tmp_path):
    r = BM25Retriever(variant="lucene")
    r.index(list(TOY_DOCUMENTS))
    r.save(tmp_path / "idx")
    loaded = BM25Retriever.load(tmp_path / "idx", {"threads": 2})
    assert loaded.threads == 2
    np.testing.assert_array_equal(loaded.search(["Seoul river"], 3).indices, r.search(["Seoul river"], 3).indices)
    with pytest.raises(UsageError, match="'k1'.*fixed when the index is built"):
        BM25Retriever.load(tmp_path / "idx", {"k1": 2.0})


def _resave(path, name, array):
    """Replace one array of a store and fix its manifest entry, so only our own consistency checks can object."""
    from odqa_core.storage import sha256_file

    file = path / f"{name}.npy"
    np.save(file, array)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][file.name] = {"bytes": file.stat().st_size, "sha256": sha256_file(file)}
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_inconsistent_store_is_an_index_format_error(tmp_path):
    r = BM25Retriever()
    r.index(list(TOY_DOCUMENTS))
    r.save(tmp_path / "a")
    _resave(tmp_path / "a", "doc_lengths", np.zeros(3, np.int64))
    with pytest.raises(IndexFormatError, match="document lengths"):
        BM25Retriever.load(tmp_path / "a")
    r.save(tmp_path / "b")
    _resave(tmp_path / "b", "t_ptr", np.zeros(4, np.int64))
    with pytest.raises(IndexFormatError, match="terms"):
        BM25Retriever.load(tmp_path / "b")


def test_truncated_array_is_an_index_format_error(tmp_path):
    r = TfidfRetriever()
    r.index(list(TOY_DOCUMENTS))
    r.save(tmp_path / "idx")
    victim = tmp_path / "idx" / "t_imp.npy"
    victim.write_bytes(victim.read_bytes()[:-3])
    with pytest.raises(IndexFormatError, match="truncated"):
        TfidfRetriever.load(tmp_path / "idx")


def test_wrong_format_version_is_an_index_format_error(tmp_path):
    r = BM25Retriever()
    r.index(list(TOY_DOCUMENTS))
    r.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="format version"):
        BM25Retriever.load(tmp_path / "idx")


def test_registration_imports_no_heavy_modules():
    code = (
        "import sys; from odqa_core import plugins; "
        "plugins.registry('retriever'); plugins.registry('analyzer'); "
        "plugins.create('retriever', 'bm25', {}); "
        "heavy = [m for m in ('numba', 'scipy', 'kiwipiepy', 'tokenizers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_documents_and_questions_without_a_token_are_warned_about_and_counted(tmp_path, capsys):
    documents = [
        Document("d-1", "hello world"),
        Document("d-2", "!!! ..."),
        Document("d-3", "foo bar"),
        Document("d-4", "— ?"),
    ]
    bm25 = BM25Retriever()
    bm25.index(documents)
    assert capsys.readouterr().err.splitlines() == [
        "warning: bm25: 2 of 4 documents have no token after analysis (first: 'd-2'); no question can find them"
    ]
    bm25.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["params"]["n_empty_docs"] == 2
    results = bm25.search(["hello", "???", "!"], 2)
    assert not results.scores[1:].any()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "bm25: 2 of 3 questions have no token after analysis (first: '???')" in err[0]
    assert bm25.empty_queries == 2
    bm25.score_all(["?"])  # counted, not reported again: a fuser scores the same questions block by block
    assert capsys.readouterr().err == "" and bm25.empty_queries == 3
    bm25.search(["hello world"], 1)
    TfidfRetriever().index(documents[:1])
    assert capsys.readouterr().err == ""
