"""``odqa tune`` and what it is built on (grid parsing, the cached retriever, ``tune_fuser``) — with the core's fake
components only (retriever ``fake``, fuser ``fake-sum``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from odqa_experiments.grid import grid_cells
from odqa_experiments.tuning import CachedRetriever, parse_grid, tune_fuser

from odqa_core.errors import UsageError
from odqa_core.evaluation import evaluate_retrieval, hits_from_results
from odqa_core.interfaces import Retriever
from odqa_core.testing import (
    TOY_DOCUMENTS,
    TOY_QUESTIONS,
    FakeFuser,
    FakeRetriever,
    assert_one_line_error,
    write_toy_files,
)
from odqa_core.types import Question

# The fake retriever ranks toy-1 (Seoul, twice in the query) above the gold toy-8 (volcano): with fake-sum's depth 1
# only toy-1 scores, so toy-8 falls to the back of the index-ordered zeros; with depth >= 2 it is second.
DEEP_QUESTION = Question("tq-deep", "Seoul volcano Seoul", ("Hallasan",), doc_ids=("toy-8",))
QUESTIONS: tuple[Question, ...] = (*TOY_QUESTIONS, DEEP_QUESTION)


@pytest.fixture(autouse=True)
def _fakes(fake_plugins):
    yield


@pytest.fixture
def retriever() -> FakeRetriever:
    built = FakeRetriever()
    built.index(list(TOY_DOCUMENTS))
    return built


class CountingRetriever(FakeRetriever):
    """The fake retriever, counting the calls that reach it from outside (not its own nested ones)."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.calls = {"search": 0, "score_all": 0, "score": 0}
        self._busy = False

    def _count(self, name, compute):
        if self._busy:
            return compute()
        self.calls[name] += 1
        self._busy = True
        try:
            return compute()
        finally:
            self._busy = False

    def search(self, queries, k):
        return self._count("search", lambda: super(CountingRetriever, self).search(queries, k))

    def score_all(self, queries):
        return self._count("score_all", lambda: super(CountingRetriever, self).score_all(queries))

    def score(self, queries, candidates):
        return self._count("score", lambda: super(CountingRetriever, self).score(queries, candidates))


@pytest.fixture
def counting() -> CountingRetriever:
    built = CountingRetriever()
    built.index(list(TOY_DOCUMENTS))
    built.calls = dict.fromkeys(built.calls, 0)
    return built


# --- parse_grid / grid_cells -------------------------------------------------------------------------------------


def test_parse_grid_comma_lists_are_json_values_or_strings():
    grid = parse_grid(["lam=0,0.5,1.1", "normalization=none,min-max,z-score", 'x=true,null,"quoted",7'])
    assert grid == {
        "lam": [0, 0.5, 1.1],
        "normalization": ["none", "min-max", "z-score"],
        "x": [True, None, "quoted", 7],
    }
    assert isinstance(grid["lam"][0], int) and isinstance(grid["lam"][1], float)
    assert list(grid) == ["lam", "normalization", "x"]  # axes keep their order


def test_parse_grid_strips_spaces():
    assert parse_grid([" depth = 1, 2 ,three "]) == {"depth": [1, 2, "three"]}


def test_parse_grid_json_arrays():
    grid = parse_grid(['weights=[{"dpr": 2}, {"dpr": 3, "bm25": 0.5}]', "lam=[1, 2.5]", 'mode=["whole", "union"]'])
    assert grid == {
        "weights": [{"dpr": 2}, {"dpr": 3, "bm25": 0.5}],
        "lam": [1, 2.5],
        "mode": ["whole", "union"],
    }


def test_parse_grid_of_nothing_is_empty():
    assert parse_grid([]) == {}


@pytest.mark.parametrize(
    "pairs, culprit",
    [
        (["lam"], "lam"),  # no '='
        (["lam=0.5", "depth"], "depth"),
        (["lam="], "lam"),  # no values
        (["lam=  "], "lam"),
        (["=1,2"], "=1,2"),  # no key
        (["lam=[]"], "lam"),  # an empty JSON array
        (["lam=1,2", "lam=3"], "lam"),  # the same axis twice
        (['weights=[{"dpr": 2}, {"dpr": 3}'], "weights"),  # a JSON array that does not parse
        (["lam=[1, 2,]"], "lam"),
    ],
)
def test_parse_grid_errors_name_the_key(pairs, culprit):
    with pytest.raises(UsageError, match="--grid") as info:
        parse_grid(pairs)
    assert culprit in str(info.value)


def test_grid_cells_first_axis_slowest():
    cells = grid_cells({"a": [1, 2], "b": ["x", "y", "z"]})
    assert cells == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]
    assert all(list(cell) == ["a", "b"] for cell in cells)


def test_grid_cells_single_axis_and_empty():
    assert grid_cells({"depth": [3, 1]}) == [{"depth": 3}, {"depth": 1}]
    assert grid_cells({}) == [{}]


# --- CachedRetriever ---------------------------------------------------------------------------------------------


QUERIES = [q.text for q in QUESTIONS]


def test_cached_retriever_is_the_wrapped_retriever_by_name_and_table(retriever):
    cached = CachedRetriever(retriever)
    assert cached.name == retriever.name == "fake"
    assert cached.documents is retriever.documents and cached.is_indexed
    assert cached.config() == retriever.config()
    assert cached.scores_unindexed == retriever.scores_unindexed
    with pytest.raises(UsageError):
        cached.index(list(TOY_DOCUMENTS))


def test_cached_retriever_gives_the_wrapped_results(retriever):
    cached = CachedRetriever(retriever)
    candidates = np.array([[0, 7, 2]] * len(QUERIES), np.int64)
    for _ in range(2):  # computed, then from the cache
        np.testing.assert_array_equal(cached.score_all(QUERIES), retriever.score_all(QUERIES))
        np.testing.assert_array_equal(cached.score(QUERIES, candidates), retriever.score(QUERIES, candidates))
        ranked, expected = cached.search(QUERIES, 3), retriever.search(QUERIES, 3)
        np.testing.assert_array_equal(ranked.indices, expected.indices)
        np.testing.assert_array_equal(ranked.scores, expected.scores)


def test_cached_retriever_hands_out_copies(retriever):
    cached = CachedRetriever(retriever)
    expected = retriever.score_all(QUERIES)
    first = cached.score_all(QUERIES)  # computed (and cached)
    first[:] = -1.0  # a fuser normalising in place
    second = cached.score_all(QUERIES)  # from the cache
    np.testing.assert_array_equal(second, expected)
    second *= 100.0
    np.testing.assert_array_equal(cached.score_all(QUERIES), expected)

    candidates = np.array([[3, 0, 7]] * len(QUERIES), np.int64)
    expected = retriever.score(QUERIES, candidates)
    cached.score(QUERIES, candidates)[:] = 42.0
    again = cached.score(QUERIES, candidates)
    np.testing.assert_array_equal(again, expected)
    again[:] = 42.0
    np.testing.assert_array_equal(cached.score(QUERIES, candidates), expected)


def test_cached_retriever_computes_once(counting):
    cached = CachedRetriever(counting)
    for _ in range(3):
        cached.score_all(QUERIES)
    assert counting.calls["score_all"] == 1
    for _ in range(3):
        cached.search(QUERIES, 4)
    assert counting.calls["search"] == 1
    cached.search(QUERIES, 5)  # another k: another search
    cached.search(QUERIES[:2], 4)  # other queries: another search
    assert counting.calls["search"] == 3

    candidates = np.array([[1, 2]] * len(QUERIES), np.int64)
    for _ in range(3):
        cached.score(QUERIES, candidates)
        cached.score(QUERIES, candidates.copy())  # equal contents, another array: the same key
    assert counting.calls["score"] == 1
    cached.score(QUERIES, candidates[:, ::-1].copy())  # other candidates
    cached.score(QUERIES, candidates.astype(np.int32))  # other dtype: not mistaken for the same bytes
    assert counting.calls["score"] == 3


def test_cached_retriever_with_no_budget_caches_nothing(counting):
    cached = CachedRetriever(counting, max_bytes=0)
    candidates = np.array([[1, 2]] * len(QUERIES), np.int64)
    for _ in range(3):
        cached.score_all(QUERIES)
        cached.search(QUERIES, 3)
        cached.score(QUERIES, candidates)
    assert counting.calls == {"search": 3, "score_all": 3, "score": 3}
    assert cached.used_bytes == 0


def test_cached_retriever_stops_caching_at_max_bytes(counting):
    one_block = len(QUERIES) * len(TOY_DOCUMENTS) * 4  # a float32 score_all block of these queries
    cached = CachedRetriever(counting, max_bytes=one_block)
    other = [q.upper() for q in QUERIES]
    cached.score_all(QUERIES)  # fits: cached
    cached.score_all(other)  # would exceed the budget: computed, not kept
    assert cached.used_bytes == one_block
    cached.score_all(QUERIES)
    assert counting.calls["score_all"] == 2
    cached.score_all(other)
    assert counting.calls["score_all"] == 3
    assert cached.used_bytes <= cached.max_bytes


# --- tune_fuser --------------------------------------------------------------------------------------------------


def direct_metrics(depth: int, retrievers: Sequence[Retriever], questions: Sequence[Question], top_k: int, ks):
    """A fused run of fake-sum at ``depth`` evaluated the ordinary way, without the tuning machinery."""
    results = FakeFuser(depth=depth).fuse(retrievers, [q.text for q in questions], top_k)
    return evaluate_retrieval(questions, hits_from_results(results), ks)


def test_tune_ranks_cells_best_first(retriever):
    report = tune_fuser(
        "fake-sum", {}, {"depth": [1, 3, 8]}, [retriever], QUESTIONS, top_k=8, ks=(1, 3), metric="acc@3"
    )
    assert [c["options"]["depth"] for c in report.cells][-1] == 1  # depth 1 misses the deep question at 3
    assert sorted(c["options"]["depth"] for c in report.cells) == [1, 3, 8]
    values = [c["metrics"]["acc@3"] for c in report.cells]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    assert report.best is report.cells[0] and report.best["options"]["depth"] in (3, 8)
    assert (report.fuser, report.hit, report.metric, report.grid) == (
        "fake-sum",
        "doc",
        "acc@3",
        {"depth": [1, 3, 8]},
    )
    assert report.ks == (1, 3)
    assert all(c["n_questions"] == len(QUESTIONS) and c["seconds"] >= 0 for c in report.cells)


def test_tune_ties_keep_the_first_listed_setting(retriever):
    # depth 3 and 8 fuse to the same top 3 (same acc@3 and mrr@3): whichever is listed first wins.
    for order in ([8, 3, 1], [3, 8, 1]):
        report = tune_fuser("fake-sum", {}, {"depth": order}, [retriever], QUESTIONS, top_k=8, metric="acc@3")
        assert report.best["options"]["depth"] == order[0]


@pytest.mark.parametrize("batch_size", [1024, 2])
def test_tune_cells_equal_a_direct_evaluation(batch_size):
    words, chars = FakeRetriever(tokens="words"), FakeRetriever(tokens="chars")
    for r in (words, chars):
        r.index(list(TOY_DOCUMENTS))
    report = tune_fuser(
        "fake-sum",
        {},
        {"depth": [1, 2, 5]},
        [words, chars],
        QUESTIONS,
        top_k=6,
        ks=(1, 2, 5),
        metric="mrr@5",
        batch_size=batch_size,
    )
    assert len(report.cells) == 3
    for cell in report.cells:
        expected = direct_metrics(cell["options"]["depth"], [words, chars], QUESTIONS, 6, (1, 2, 5))
        assert cell["metrics"] == pytest.approx(expected.metrics["doc"], abs=1e-12)
        assert cell["n_questions"] == expected.counts["doc"]


def test_tune_base_options_are_in_every_cell(retriever):
    # fake-sum has one option; tune it while the base holds nothing, then check the report keeps the base apart.
    report = tune_fuser("fake-sum", {}, {"depth": [2]}, [retriever], QUESTIONS, top_k=4, metric="acc@1")
    assert report.base_options == {} and report.cells[0]["options"] == {"depth": 2}
    data = json.loads(json.dumps(report.to_json()))
    assert data["best"] == data["cells"][0] and data["fuser"] == "fake-sum" and data["grid"] == {"depth": [2]}


def test_tune_shares_the_retrievers_work_between_cells(counting):
    grid = {"depth": [2, 4, 2, 4]}  # two distinct searches for four cells
    tune_fuser("fake-sum", {}, grid, [counting], QUESTIONS, top_k=4, metric="acc@1")
    assert counting.calls["search"] == 2
    counting.calls["search"] = 0
    tune_fuser("fake-sum", {}, grid, [counting], QUESTIONS, top_k=4, metric="acc@1", cache_bytes=0)
    assert counting.calls["search"] == 4


def test_tune_key_both_fixed_and_tuned_is_an_error(retriever):
    with pytest.raises(UsageError, match="depth"):
        tune_fuser("fake-sum", {"depth": 2}, {"depth": [1, 3]}, [retriever], QUESTIONS, top_k=4, metric="acc@1")


@pytest.mark.parametrize("metric", ["acc", "ndcg@5", "acc@0", "acc@x", "acc@-1", "@5", "mrr@", "recall@20"])
def test_tune_bad_metric(retriever, metric):
    with pytest.raises(UsageError, match="--metric"):
        tune_fuser("fake-sum", {}, {"depth": [1]}, [retriever], QUESTIONS, top_k=10, metric=metric)


@pytest.mark.parametrize("hit", ["gold", "docs", ""])
def test_tune_bad_hit(retriever, hit):
    with pytest.raises(UsageError, match="--hit"):
        tune_fuser("fake-sum", {}, {"depth": [1]}, [retriever], QUESTIONS, top_k=4, metric="acc@1", hit=hit)


def test_tune_hit_defaults_to_doc_when_gold_ids_exist(retriever):
    report = tune_fuser("fake-sum", {}, {"depth": [3]}, [retriever], QUESTIONS, top_k=4, metric="acc@3")
    assert report.hit == "doc"
    expected = direct_metrics(3, [retriever], QUESTIONS, 4, (1, 3, 5, 10, 20, 100))
    assert report.best["metrics"] == pytest.approx(expected.metrics["doc"])

    answers_only = [Question(q.id, q.text, q.answers) for q in QUESTIONS]
    report = tune_fuser("fake-sum", {}, {"depth": [3]}, [retriever], answers_only, top_k=4, metric="acc@3")
    assert report.hit == "answer"
    expected = direct_metrics(3, [retriever], answers_only, 4, (1, 3, 5, 10, 20, 100))
    assert report.best["metrics"] == pytest.approx(expected.metrics["answer"])
    assert report.best["n_questions"] == expected.counts["answer"]

    # Asked explicitly, "answer" is measured even when gold ids exist; "doc" without gold ids is an error.
    report = tune_fuser("fake-sum", {}, {"depth": [3]}, [retriever], QUESTIONS, top_k=4, metric="acc@3", hit="answer")
    assert report.hit == "answer" and "recall@3" not in report.best["metrics"]
    with pytest.raises(UsageError, match="gold document ids"):
        tune_fuser("fake-sum", {}, {"depth": [3]}, [retriever], answers_only, top_k=4, metric="acc@3", hit="doc")


def test_tune_other_errors(retriever):
    with pytest.raises(UsageError, match="--grid"):
        tune_fuser("fake-sum", {}, {}, [retriever], QUESTIONS)
    with pytest.raises(UsageError, match="no questions"):
        tune_fuser("fake-sum", {}, {"depth": [1]}, [retriever], [])
    with pytest.raises(UsageError, match="nope"):
        tune_fuser("fake-sum", {}, {"nope": [1]}, [retriever], QUESTIONS, top_k=4, metric="acc@1")
    with pytest.raises(UsageError, match="depth"):  # a bad value in a later cell fails before any cell runs
        tune_fuser("fake-sum", {}, {"depth": [1, 0]}, [retriever], QUESTIONS, top_k=4, metric="acc@1")
    unindexed = FakeRetriever()
    with pytest.raises(UsageError, match="no index"):
        tune_fuser("fake-sum", {}, {"depth": [1]}, [unindexed], QUESTIONS, top_k=4, metric="acc@1")


# --- odqa tune ---------------------------------------------------------------------------------------------------


@pytest.fixture
def toy_files(tmp_path):
    return write_toy_files(tmp_path, questions=QUESTIONS)


TUNE = "tune --fuser fake-sum --top-k 8 --metric acc@3 --k 1,3"


def test_cli_tune_table(odqa, toy_files, toy_index):
    _, questions = toy_files
    result = odqa(f"{TUNE} --index-dir {toy_index} --questions {questions} --grid depth=1,3,8")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    header = lines[0].split()
    assert header[:2] == ["rank", "depth"] and "acc@3" in header and "acc@1" in header
    rows = [line.split() for line in lines[2:-1]]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert rows[-1][1] == "1"  # depth 1 is worst
    best_depth = rows[0][1]
    assert lines[-1].startswith("best (doc acc@3 = ") and "over 4 questions" in lines[-1]
    assert lines[-1].endswith(f": -o fake-sum.depth={best_depth}")


def test_cli_tune_json_and_output_file(odqa, toy_files, toy_index, retriever, tmp_path):
    _, questions = toy_files
    output = tmp_path / "out" / "tune.json"
    output.parent.mkdir()
    result = odqa(
        f"{TUNE} --index-dir {toy_index} --questions {questions} --grid depth=1,3,8 --json --output {output}"
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    written = json.loads(output.read_text())
    assert written == printed
    assert [p.name for p in output.parent.iterdir()] == ["tune.json"]  # no temporary file left behind
    assert written["fuser"] == "fake-sum" and written["hit"] == "doc" and written["metric"] == "acc@3"
    assert written["grid"] == {"depth": [1, 3, 8]} and written["best"] == written["cells"][0]
    assert len(written["cells"]) == 3
    # the CLI's cells are those of tune_fuser on the same (stored) index and questions
    for cell in written["cells"]:
        expected = direct_metrics(cell["options"]["depth"], [retriever], QUESTIONS, 8, (1, 3))
        assert cell["metrics"] == pytest.approx(expected.metrics["doc"])


def test_cli_tune_with_an_in_memory_corpus_equals_the_index(odqa, toy_files, toy_index):
    corpus, questions = toy_files
    args = f"{TUNE} --questions {questions} --grid depth=1,3,8 --json"
    from_index = json.loads(odqa(f"{args} --index-dir {toy_index}").stdout)
    from_corpus = json.loads(odqa(f"{args} --retriever fake --corpus {corpus}").stdout)
    strip = [{k: v for k, v in c.items() if k != "seconds"} for c in from_index["cells"]]
    assert [{k: v for k, v in c.items() if k != "seconds"} for c in from_corpus["cells"]] == strip


def test_cli_tune_fixed_options_route_to_the_fuser(odqa, toy_files, toy_index):
    _, questions = toy_files
    result = odqa(
        f"{TUNE} --index-dir {toy_index} --questions {questions} --grid depth=1,3 -o fake-sum.depth=2 --json"
    )
    assert_one_line_error(result, 2, "depth")


@pytest.mark.parametrize(
    "args, culprit",
    [
        ("--index-dir {index}", "--grid"),  # no --grid
        ("--index-dir {index} --grid nope=1,2", "nope"),  # not an option of the fuser
        ("--index-dir {index} --grid depth", "depth"),
        ("--index-dir {index} --grid depth=0,1", "depth"),
        ("--index-dir {index} --grid depth=1 --metric ndcg@3", "--metric"),
        ("--index-dir {index} --grid depth=1 --hit gold", "--hit"),
        ("--index-dir {index} --grid depth=1 --top-k 0", "--top-k"),
        ("--index-dir {index} --retriever fake --corpus {corpus} --grid depth=1", "--corpus"),
        ("--grid depth=1,3", "--index-dir"),  # neither an index nor a corpus
        ("--index-dir {index} --grid depth=1 -o nope.x=1", "nope"),
    ],
)
def test_cli_tune_errors_are_one_line(odqa, toy_files, toy_index, tmp_path, args, culprit):
    corpus, questions = toy_files
    output = tmp_path / "tune.json"
    args = args.format(index=toy_index, corpus=corpus)
    result = odqa(f"tune --fuser fake-sum --questions {questions} --output {output} {args}")
    assert_one_line_error(result, 2, culprit)
    assert not output.exists()


def test_cli_tune_unknown_fuser(odqa, toy_files, toy_index):
    _, questions = toy_files
    result = odqa(f"tune --fuser no-such-fuser --index-dir {toy_index} --questions {questions} --grid depth=1")
    assert_one_line_error(result, 2, "no-such-fuser")


def _fail_if_called(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the missing input file was reported")

    return fail


def test_cli_tune_reports_missing_questions_before_the_index_loads(odqa, toy_files, toy_index, tmp_path, monkeypatch):
    import odqa_core.pipeline

    corpus, _ = toy_files
    missing = tmp_path / "no-questions.jsonl"
    monkeypatch.setattr(odqa_core.pipeline, "load_retriever", _fail_if_called("loading the index"))
    result = odqa(f"tune --fuser fake-sum --index-dir {toy_index} --questions {missing} --grid depth=2,4")
    assert_one_line_error(result, 1, "no-questions.jsonl: no such file or directory")
    monkeypatch.setattr(odqa_core.pipeline.Pipeline, "index", _fail_if_called("indexing"))
    result = odqa(f"tune --fuser fake-sum --retriever fake --corpus {corpus} --questions {missing} --grid depth=2,4")
    assert_one_line_error(result, 1, "no-questions.jsonl: no such file or directory")
