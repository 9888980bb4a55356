"""Contract tests and tiny fake components.

Every plugin's tests subclass the contracts, so each integration meets the same behaviour::

    from odqa_core.testing import RetrieverContract

    class TestMyRetriever(RetrieverContract):
        @pytest.fixture
        def make_retriever(self):
            return lambda: MyRetriever(some_option=1)

The fakes (:class:`FakeRetriever`, :class:`FakeFuser`, :class:`FakeReader`, :class:`FakePostprocessor`) are small
but real implementations that the core's own tests register as throwaway plugins.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

try:
    import pytest
except ImportError as exc:  # the core never needs pytest; only plugin tests import this module
    raise ImportError("odqa_core.testing (the contract tests) needs pytest: pip install 'odqa[testing]'") from exc

from odqa_core import plugins
from odqa_core.errors import DataError, IndexFormatError, UsageError
from odqa_core.hookspecs import hookimpl
from odqa_core.interfaces import EpochCheckpoint, Fuser, Postprocessor, Reader, Retriever, Trainer
from odqa_core.storage import StoreReader, StoreWriter
from odqa_core.types import Document, Prediction, Question, RankedResults, top_k_rows

TOY_DOCUMENTS: tuple[Document, ...] = (
    Document("toy-1", "The Han River flows through Seoul and into the Yellow Sea.", "Han River"),
    Document("toy-2", "Busan is a port city in the south-east with a famous fish market.", "Busan"),
    Document("toy-3", "한강은 서울을 가로질러 서해로 흘러가는 강이다.", "한강"),
    Document("toy-4", "부산은 남동쪽에 있는 항구 도시로 수산 시장이 유명하다.", "부산"),
    Document("toy-5", "Kimchi is fermented cabbage seasoned with chili and garlic.", "Kimchi"),
    Document("toy-6", "김치는 배추를 고춧가루와 마늘로 양념해 발효시킨 음식이다.", "김치"),
    Document("toy-7", "The abacus is a counting frame used for arithmetic.", "Abacus"),
    Document("toy-8", "Jeju Island has a volcano called Hallasan.", "Jeju"),
)
TOY_QUESTIONS: tuple[Question, ...] = (
    Question("tq-1", "Which river flows through Seoul?", ("Han River",), doc_ids=("toy-1",)),
    Question("tq-2", "김치는 무엇으로 만드는 음식인가?", ("배추",), doc_ids=("toy-6",)),
    Question("tq-3", "What is the volcano on Jeju Island called?", ("Hallasan",), doc_ids=("toy-8",)),
)


@contextlib.contextmanager
def registered_plugin(plugin: Any, name: str) -> Iterator[Any]:
    """Register a plugin object (hook implementations) for the duration of a ``with`` block, e.g. in a fixture."""
    pm = plugins.get_plugin_manager()
    pm.register(plugin, name=name)
    plugins.invalidate()
    try:
        yield plugin
    finally:
        pm.unregister(plugin)
        plugins.invalidate()


def write_toy_files(
    directory: Any, documents: Sequence[Document] = TOY_DOCUMENTS, questions: Sequence[Question] = TOY_QUESTIONS
) -> tuple[Any, Any]:
    """Write ``documents`` and ``questions`` as ``corpus.jsonl`` and ``questions.jsonl`` in ``directory`` (the
    layout ``odqa`` reads); returns the two paths, for CLI tests."""
    from pathlib import Path

    corpus, question_file = Path(directory) / "corpus.jsonl", Path(directory) / "questions.jsonl"
    corpus.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in documents))
    rows = [
        {"id": q.id, "question": q.text, "answers": list(q.answers), "doc_ids": list(q.doc_ids)} for q in questions
    ]
    question_file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return corpus, question_file


def run_cli(command: str) -> Any:
    """Run an ``odqa`` command line in-process (click's CliRunner); returns the click ``Result``."""
    from click.testing import CliRunner

    from odqa_core._cli import cli

    return CliRunner().invoke(cli, shlex.split(command))


def run_and_read_summary(command: str, output_dir: str | Path) -> dict[str, Any]:
    """``odqa <command> --output-dir <output_dir>`` must succeed (its output is the failure message); returns the
    ``summary.json`` it wrote there."""
    result = run_cli(f"{command} --output-dir {output_dir}")
    assert result.exit_code == 0, result.output
    return json.loads((Path(output_dir) / "summary.json").read_text(encoding="utf-8"))


def heavy_modules_imported(script: str, modules: Sequence[str], cwd: str | Path) -> list[str]:
    """Which of ``modules`` (torch, faiss, ...) a fresh Python process running ``script`` in ``cwd`` has imported by
    its end; the script must succeed. What discovery and the CLI import is checked in a new process, since this one
    has long imported everything."""
    check = f"{script}\nimport sys\nprint(','.join(m for m in {tuple(modules)!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=cwd)
    assert out.returncode == 0, out.stderr
    imported = out.stdout.splitlines()[-1]  # the check's line, empty when none was imported
    return [m for m in imported.split(",") if m]


#: Runs the odqa command line as the console script does, then prints the modules the process imported.
_CLI_MODULES_RUNNER = """
import json, sys
from odqa_core._cli import cli
status = None
try:
    cli(sys.argv[1:], prog_name="odqa")
except SystemExit as exit:
    status = exit.code
print("\\nMODULES " + json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def cli_modules_imported(*args: str, env: dict[str, str] | None = None) -> tuple[str, list[str], str]:
    """``odqa args`` in a fresh process (the command must succeed): its output, the modules it imported and its
    stderr. What a command imports is checked in a new process, since this one has long imported everything."""
    done = subprocess.run(
        [sys.executable, "-c", _CLI_MODULES_RUNNER, *args], capture_output=True, text=True, env=env, timeout=300
    )
    output, _, report = done.stdout.rpartition("\nMODULES ")
    assert report, done.stdout + done.stderr
    result = json.loads(report)
    assert result["status"] in (0, None), done.stdout + done.stderr
    return output, result["modules"], done.stderr


def assert_one_line_error(result: Any, code: int | None = None, contains: str = "") -> None:
    """Bad input: a non-zero exit and one line saying what is wrong, never a traceback."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert contains in lines[0], lines[0]


def assert_refused_writing_nothing(
    command: str, output: str | Path, code: int | None = None, contains: str = ""
) -> None:
    """``odqa <command>`` is bad input (:func:`assert_one_line_error`) and leaves no ``output`` behind."""
    assert_one_line_error(run_cli(command), code, contains)
    assert not Path(output).exists()


@contextlib.contextmanager
def output_held_elsewhere(path: str | Path) -> Iterator[int]:
    """Another process holds :func:`odqa_core.outputs.output_lock` on ``path`` for the block; yields its pid (a lock
    is re-entrant within a process, so only a second process shows what a concurrent odqa command meets)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom odqa_core.storage import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.communicate("")


def _toy_tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class RetrieverContract:
    """Behaviour every retriever must have. Override the ``make_retriever`` fixture."""

    @pytest.fixture
    def make_retriever(self) -> Callable[[], Retriever]:
        raise NotImplementedError("override the make_retriever fixture")

    @pytest.fixture
    def documents(self) -> list[Document]:
        return list(TOY_DOCUMENTS)

    @pytest.fixture
    def queries(self) -> list[str]:
        return [q.text for q in TOY_QUESTIONS] + ["abacus arithmetic", "서울 한강"]

    @pytest.fixture
    def indexed(self, make_retriever, documents) -> Retriever:
        retriever = make_retriever()
        retriever.index(documents)
        return retriever

    def test_is_a_registered_retriever(self, make_retriever):
        retriever = make_retriever()
        assert isinstance(retriever, Retriever)
        assert plugins.get_component_class("retriever", retriever.name) is type(retriever)

    def test_config_is_json_and_rebuilds(self, make_retriever):
        retriever = make_retriever()
        config = json.loads(json.dumps(retriever.config()))
        assert type(retriever).from_options(config).config() == retriever.config()

    def test_unknown_option_is_a_usage_error(self, make_retriever):
        with pytest.raises(UsageError, match="no_such_option"):
            type(make_retriever()).from_options({"no_such_option": 1})

    def test_empty_corpus_is_a_data_error(self, make_retriever):
        with pytest.raises(DataError):
            make_retriever().index([])

    def test_documents_table_is_the_corpus(self, indexed, documents):
        assert [d.id for d in indexed.documents] == [d.id for d in documents]

    def test_result_shapes_and_types(self, indexed, queries):
        results = indexed.search(queries, 3)
        assert isinstance(results, RankedResults)
        assert results.indices.shape == results.scores.shape == (len(queries), 3)
        assert results.indices.dtype == np.int64 and results.scores.dtype == np.float32
        assert ((results.indices >= 0) & (results.indices < len(indexed.documents))).all()
        for row in results.indices:
            assert len(set(row.tolist())) == len(row), "a document appears twice in one ranking"

    def test_sorted_best_first_ties_by_index(self, indexed, queries):
        results = indexed.search(queries, len(indexed.documents))
        scores, indices = results.scores, results.indices
        assert (np.diff(scores, axis=1) <= 0).all()
        tied = np.diff(scores, axis=1) == 0
        assert (np.diff(indices, axis=1)[tied] > 0).all()

    def test_k_is_clamped_to_corpus(self, indexed, queries):
        assert indexed.search(queries, 1000).k == len(indexed.documents)

    def test_no_queries(self, indexed):
        results = indexed.search([], 5)
        assert results.indices.shape == (0, 5)

    def test_batch_equals_one_by_one(self, indexed, queries):
        batch = indexed.search(queries, 4)
        for i, query in enumerate(queries):
            single = indexed.search([query], 4)
            np.testing.assert_array_equal(single.indices[0], batch.indices[i])
            np.testing.assert_allclose(single.scores[0], batch.scores[i], rtol=1e-5, atol=1e-6)

    def test_top_k_is_prefix_of_larger_k(self, indexed, queries):
        small, large = indexed.search(queries, 2), indexed.search(queries, 5)
        np.testing.assert_allclose(small.scores, large.scores[:, :2], rtol=1e-5, atol=1e-6)

    def test_save_load_round_trip(self, indexed, queries, tmp_path):
        indexed.save(tmp_path / "index")
        loaded = type(indexed).load(tmp_path / "index")
        before, after = indexed.search(queries, 5), loaded.search(queries, 5)
        np.testing.assert_array_equal(before.indices, after.indices)
        np.testing.assert_array_equal(before.scores, after.scores)
        assert [d.to_dict() for d in loaded.documents] == [d.to_dict() for d in indexed.documents]

    def test_corrupted_file_is_detected(self, indexed, tmp_path):
        path = tmp_path / "index"
        indexed.save(path)
        victim = max((f for f in path.iterdir() if f.name != "manifest.json"), key=lambda f: f.stat().st_size)
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        with pytest.raises(IndexFormatError, match="checksum"):
            type(indexed).load(path)

    def test_truncated_file_is_detected(self, indexed, tmp_path):
        path = tmp_path / "index"
        indexed.save(path)
        victim = max((f for f in path.iterdir() if f.name != "manifest.json"), key=lambda f: f.stat().st_size)
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
        with pytest.raises(IndexFormatError, match="truncated"):
            type(indexed).load(path)

    def test_other_format_version_is_refused(self, indexed, tmp_path):
        path = tmp_path / "index"
        indexed.save(path)
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["format_version"] = indexed.format_version + 1
        (path / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(IndexFormatError, match="format version"):
            type(indexed).load(path)

    def test_failed_save_keeps_previous_index(self, indexed, queries, tmp_path, monkeypatch):
        path = tmp_path / "index"
        indexed.save(path)
        expected = indexed.search(queries, 3)

        def explode(writer):
            raise RuntimeError("disk full")

        monkeypatch.setattr(indexed, "save_state", explode)
        with pytest.raises(RuntimeError):
            indexed.save(path)
        monkeypatch.undo()
        np.testing.assert_array_equal(type(indexed).load(path).search(queries, 3).indices, expected.indices)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


class FuserContract:
    """Behaviour every fuser must have. Override ``make_fuser``; ``retrievers`` may be overridden too."""

    @pytest.fixture
    def make_fuser(self) -> Callable[[], Fuser]:
        raise NotImplementedError("override the make_fuser fixture")

    @pytest.fixture
    def retrievers(self) -> list[Retriever]:
        built = []
        for weights in ("words", "chars"):
            retriever = FakeRetriever(tokens=weights)
            retriever.index(list(TOY_DOCUMENTS))
            built.append(retriever)
        return built

    def test_is_a_registered_fuser(self, make_fuser):
        fuser = make_fuser()
        assert isinstance(fuser, Fuser)
        assert plugins.get_component_class("fuser", fuser.name) is type(fuser)

    def test_shapes_sorted_and_unique(self, make_fuser, retrievers):
        queries = [q.text for q in TOY_QUESTIONS]
        results = make_fuser().fuse(retrievers, queries, 4)
        assert results.indices.shape == results.scores.shape == (len(queries), 4)
        assert (np.diff(results.scores, axis=1) <= 0).all()
        for row in results.indices:
            assert len(set(row.tolist())) == len(row)

    def test_batch_equals_one_by_one(self, make_fuser, retrievers):
        fuser = make_fuser()
        queries = [q.text for q in TOY_QUESTIONS]
        batch = fuser.fuse(retrievers, queries, 3)
        for i, query in enumerate(queries):
            np.testing.assert_array_equal(fuser.fuse(retrievers, [query], 3).indices[0], batch.indices[i])

    def test_config_is_json_and_rebuilds(self, make_fuser):
        fuser = make_fuser()
        config = json.loads(json.dumps(fuser.config()))
        assert type(fuser).from_options(config).config() == fuser.config()

    def test_unknown_option_is_a_usage_error(self, make_fuser):
        with pytest.raises(UsageError, match="no_such_option"):
            type(make_fuser()).from_options({"no_such_option": 1})

    def test_rows_of_the_shared_table(self, make_fuser, retrievers):
        queries = [q.text for q in TOY_QUESTIONS] + ["abacus arithmetic", "서울 한강"]
        results = make_fuser().fuse(retrievers, queries, 5)
        assert results.indices.dtype == np.int64 and results.scores.dtype == np.float32
        assert ((results.indices >= 0) & (results.indices < len(retrievers[0].documents))).all()
        assert [d.id for d in results.documents] == [d.id for d in retrievers[0].documents]

    def test_ties_by_index(self, make_fuser, retrievers):
        results = make_fuser().fuse(retrievers, [q.text for q in TOY_QUESTIONS], len(TOY_DOCUMENTS))
        tied = np.diff(results.scores, axis=1) == 0
        assert (np.diff(results.indices, axis=1)[tied] > 0).all()

    def test_k_is_clamped_to_corpus(self, make_fuser, retrievers):
        assert make_fuser().fuse(retrievers, [TOY_QUESTIONS[0].text], 1000).k == len(TOY_DOCUMENTS)

    def test_no_queries(self, make_fuser, retrievers):
        assert make_fuser().fuse(retrievers, [], 3).indices.shape == (0, 3)

    def test_deterministic(self, make_fuser, retrievers):
        queries = [q.text for q in TOY_QUESTIONS]
        first, second = make_fuser().fuse(retrievers, queries, 4), make_fuser().fuse(retrievers, queries, 4)
        np.testing.assert_array_equal(first.indices, second.indices)
        np.testing.assert_array_equal(first.scores, second.scores)

    def test_selects_enough_retrievers(self, make_fuser):
        fuser = make_fuser()
        names = fuser.select_retrievers([])
        assert len(names) >= fuser.min_retrievers and len(set(names)) == len(names)
        assert fuser.select_retrievers(names) == names

    def test_unindexed_retriever_is_a_usage_error(self, make_fuser, retrievers):
        fresh = type(retrievers[0]).from_options(retrievers[0].config())
        if fresh.scores_unindexed:
            pytest.skip("this retriever can be fused without an index")
        with pytest.raises(UsageError, match="no index"):
            make_fuser().fuse([fresh, *retrievers[1:]], [TOY_QUESTIONS[0].text], 3)

    def test_different_corpora_is_a_usage_error(self, make_fuser, retrievers):
        other = type(retrievers[-1]).from_options(retrievers[-1].config())
        other.index(list(TOY_DOCUMENTS[:-1]))
        with pytest.raises(UsageError, match="different corpora"):
            make_fuser().fuse([*retrievers[:-1], other], [TOY_QUESTIONS[0].text], 3)


class ReaderContract:
    """Behaviour every reader must have. Override ``make_reader``."""

    @pytest.fixture
    def make_reader(self) -> Callable[[], Reader]:
        raise NotImplementedError("override the make_reader fixture")

    @pytest.fixture
    def results(self) -> RankedResults:
        retriever = FakeRetriever()
        retriever.index(list(TOY_DOCUMENTS))
        return retriever.search([q.text for q in TOY_QUESTIONS], 3)

    def test_is_a_registered_reader(self, make_reader):
        reader = make_reader()
        assert isinstance(reader, Reader)
        assert plugins.get_component_class("reader", reader.name) is type(reader)

    def test_one_ranked_list_per_question(self, make_reader, results):
        reader = make_reader()
        reader.warm_up()
        predictions = reader.read(list(TOY_QUESTIONS), results, n_best=3)
        assert len(predictions) == len(TOY_QUESTIONS)
        for question, preds in zip(TOY_QUESTIONS, predictions):
            assert 1 <= len(preds) <= 3
            assert all(p.question_id == question.id for p in preds)
            assert [p.score for p in preds] == sorted((p.score for p in preds), reverse=True)

    def test_answers_come_from_the_passages(self, make_reader, results):
        predictions = make_reader().read(list(TOY_QUESTIONS), results, n_best=1)
        texts = {d.id: d.text for d in TOY_DOCUMENTS}
        for preds in predictions:
            if preds[0].doc_id is not None and preds[0].start is not None:
                start = preds[0].start
                assert texts[preds[0].doc_id][start : start + len(preds[0].answer)] == preds[0].answer


def _toy_span(question: Question, doc_index: int, text: str, score: float) -> Prediction:
    """A prediction of ``text``, at its first occurrence in toy document ``doc_index``."""
    doc = TOY_DOCUMENTS[doc_index]
    return Prediction(question.id, text, score, doc.id, doc.text.index(text))


class PostprocessorContract:
    """Behaviour every postprocessor must have. Override ``make_postprocessor``; ``nbest`` may be overridden too."""

    @pytest.fixture
    def make_postprocessor(self) -> Callable[[], Postprocessor]:
        raise NotImplementedError("override the make_postprocessor fixture")

    @pytest.fixture
    def nbest(self) -> list[tuple[Question, list[Prediction]]]:
        """Each question with an n-best list, best first: the fake reader's, and messy hand-made spans (edge
        whitespace and punctuation, Korean particles, one answer from several passages, negative scores)."""
        retriever = FakeRetriever()
        retriever.index(list(TOY_DOCUMENTS))
        results = retriever.search([q.text for q in TOY_QUESTIONS], 3)
        read = FakeReader().read(list(TOY_QUESTIONS), results, n_best=4)
        q1, q2, q3 = TOY_QUESTIONS
        messy = [
            (
                q1,
                [
                    _toy_span(q1, 0, " Han River", 3.5),
                    _toy_span(q1, 0, "Yellow Sea.", 2.0),
                    _toy_span(q1, 0, "Han River", 2.0),
                    _toy_span(q1, 0, "Seoul and", 1.0),
                    _toy_span(q1, 1, "south-east with", -1.0),
                ],
            ),
            (
                q2,
                [
                    _toy_span(q2, 5, "배추를", 1.5),
                    _toy_span(q2, 5, "김치는", 0.5),
                    _toy_span(q2, 5, "음식이다.", -0.5),
                    _toy_span(q2, 2, "서해로", -2.0),
                    _toy_span(q2, 5, "배추", -3.0),
                ],
            ),
            (q3, [_toy_span(q3, 7, "Hallasan.", -0.25), _toy_span(q3, 7, "Jeju Island", -0.75)]),
        ]
        return [*zip(TOY_QUESTIONS, read), *messy]

    def test_is_a_registered_postprocessor(self, make_postprocessor):
        post = make_postprocessor()
        assert isinstance(post, Postprocessor)
        assert plugins.get_component_class("postprocessor", post.name) is type(post)

    def test_config_is_json_and_rebuilds(self, make_postprocessor):
        post = make_postprocessor()
        config = json.loads(json.dumps(post.config()))
        assert type(post).from_options(config).config() == post.config()

    def test_unknown_option_is_a_usage_error(self, make_postprocessor):
        with pytest.raises(UsageError, match="no_such_option"):
            type(make_postprocessor()).from_options({"no_such_option": 1})

    def test_predictions_of_the_question_best_first(self, make_postprocessor, nbest):
        post = make_postprocessor()
        post.warm_up()
        for question, preds in nbest:
            out = post.process(question, list(preds))
            assert isinstance(out, list)
            assert all(isinstance(p, Prediction) for p in out)
            assert all(p.question_id == question.id for p in out)
            assert [p.score for p in out] == sorted((p.score for p in out), reverse=True)

    def test_empty_list(self, make_postprocessor):
        post = make_postprocessor()
        post.warm_up()
        assert post.process(TOY_QUESTIONS[0], []) == []

    def test_input_is_not_modified(self, make_postprocessor, nbest):
        post = make_postprocessor()
        for question, preds in nbest:
            before = list(preds)
            post.process(question, preds)
            assert preds == before

    def test_deterministic(self, make_postprocessor, nbest):
        for question, preds in nbest:
            assert make_postprocessor().process(question, preds) == make_postprocessor().process(question, preds)

    def test_spans_still_point_into_the_passages(self, make_postprocessor, nbest):
        """An answer that is still passage text keeps a ``start`` that points at it."""
        post = make_postprocessor()
        texts = {d.id: d.text for d in TOY_DOCUMENTS}
        for question, preds in nbest:
            for p in post.process(question, preds):
                if p.doc_id in texts and p.start is not None and p.answer in texts[p.doc_id]:
                    assert texts[p.doc_id][p.start : p.start + len(p.answer)] == p.answer, p


# --- fakes -------------------------------------------------------------------------------------------------------


class FakeRetriever(Retriever):
    """Term-overlap retriever over a dense document × vocabulary matrix (fine for toy corpora only)."""

    name = "fake"

    def __init__(self, *, tokens: str = "words") -> None:
        if tokens not in ("words", "chars"):
            raise UsageError(f"tokens must be 'words' or 'chars', got {tokens!r}")
        self.tokens = tokens
        self._documents: list[Document] = []
        self._vocab: dict[str, int] = {}
        self._matrix = np.zeros((0, 0), np.float32)

    def _split(self, text: str) -> list[str]:
        words = _toy_tokens(text)
        return words if self.tokens == "words" else [c for w in words for c in w]

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        matrix = np.zeros((len(texts), len(self._vocab)), np.float32)
        for row, text in enumerate(texts):
            for token in self._split(text):
                if token in self._vocab:
                    matrix[row, self._vocab[token]] += 1.0
        return matrix

    @property
    def documents(self) -> list[Document]:
        return self._documents

    def index(self, documents: Sequence[Document]) -> None:
        if not documents:
            raise DataError("cannot index an empty corpus")
        self._documents = list(documents)
        vocab: dict[str, int] = {}
        for doc in documents:
            for token in self._split(doc.text):
                vocab.setdefault(token, len(vocab))
        self._vocab = vocab
        self._matrix = self._vectors([d.text for d in documents])

    def search(self, queries: Sequence[str], k: int) -> RankedResults:
        k = min(k, len(self._documents))
        if not queries:
            return RankedResults(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32), self._documents)
        indices, top = top_k_rows(self.score_all(queries), k)
        return RankedResults(indices, top, self._documents)

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        if not self._documents:
            raise UsageError("retriever 'fake' has no index yet")
        return self._vectors(queries) @ self._matrix.T

    def save_state(self, writer: StoreWriter) -> None:
        writer.save_array("matrix", self._matrix)
        writer.save_json("vocabulary", sorted(self._vocab, key=self._vocab.__getitem__))

    @classmethod
    def load_state(cls, reader: StoreReader, documents: list[Document]) -> FakeRetriever:
        retriever = cls(**reader.config)
        retriever._documents = documents
        retriever._vocab = {t: i for i, t in enumerate(reader.load_json("vocabulary"))}
        retriever._matrix = reader.load_array("matrix")
        return retriever


class FakeFuser(Fuser):
    """Sums the retrievers' scores over the union of their top lists."""

    name = "fake-sum"
    min_retrievers = 1

    def __init__(self, *, depth: int = 10) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise UsageError(f"fuser 'fake-sum': option 'depth' must be a positive integer, got {depth!r}")
        self.depth = depth

    def slots(self) -> list[str]:
        return ["fake"]

    def fuse(self, retrievers: Sequence[Retriever], queries: Sequence[str], k: int) -> RankedResults:
        documents = self.check_ready(retrievers)
        total = np.zeros((len(queries), len(documents)), np.float32)
        for retriever in retrievers:
            results = retriever.search(queries, self.depth)
            np.add.at(total, (np.arange(len(queries))[:, None], results.indices), results.scores)
        indices, scores = top_k_rows(total, k)
        return RankedResults(indices, scores, documents)


class FakeReader(Reader):
    """Answers with the passage word that follows the longest run of question words — a toy extractive reader."""

    name = "fake-reader"

    def __init__(self, *, max_words: int = 2, model: str | None = None) -> None:
        self.max_words = max_words
        #: A "trained model" (a :class:`FakeTrainer` checkpoint): its ``max_words`` replaces the option.
        self.model = model

    def warm_up(self) -> None:
        if self.model is not None:
            path = Path(self.model) / "model.json"
            if not path.is_file():
                raise UsageError(f"reader 'fake-reader': no model at {self.model}")
            self.max_words = json.loads(path.read_text())["max_words"]

    def read(self, questions: Sequence[Question], results: RankedResults, n_best: int = 5) -> list[list[Prediction]]:
        out = []
        for row, question in enumerate(questions):
            asked = set(_toy_tokens(question.text))
            preds = []
            for doc, doc_score in results.hits(row):
                spans = [(m.start(), m.group()) for m in re.finditer(r"\w+", doc.text)]
                for i, (start, word) in enumerate(spans):
                    if word.lower() in asked:
                        continue
                    overlap = sum(w.lower() in asked for _, w in spans[max(0, i - 3) : i])
                    end_word = spans[min(i + self.max_words, len(spans)) - 1]
                    end = end_word[0] + len(end_word[1])
                    preds.append(Prediction(question.id, doc.text[start:end], overlap + doc_score, doc.id, start))
            preds.sort(key=lambda p: -p.score)
            out.append(preds[:n_best] or [Prediction(question.id, "", 0.0)])
        return out


class FakePostprocessor(Postprocessor):
    """Strips whitespace and punctuation from both ends of every answer."""

    name = "fake-strip"

    def __init__(self, *, chars: str = " .,!?") -> None:
        self.chars = chars

    def process(self, question: Question, predictions: list[Prediction]) -> list[Prediction]:
        out = []
        for p in predictions:
            kept = p.answer.lstrip(self.chars)
            start = None if p.start is None else p.start + len(p.answer) - len(kept)
            out.append(Prediction(p.question_id, kept.rstrip(self.chars), p.score, p.doc_id, start, p.metadata))
        return out


class FakeTrainer(Trainer):
    """Trains ``fake-reader`` "models": after epoch ``e`` the reader answers with ``e`` words (capped by
    ``max_words``); the dev metric rises until epoch 2 and then stays, so the best checkpoint of a longer run is
    epoch 2. Every call is recorded in :attr:`runs` (tests count trainings)."""

    name = "fake-reader"
    stage = "reader"
    runs: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, *, epochs: int = 2, max_words: int = 5, seed: int = 0, fold: int | None = None) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise UsageError(f"trainer 'fake-reader': epochs must be a positive integer, got {epochs!r}")
        self.epochs, self.max_words, self.seed, self.fold = epochs, max_words, seed, fold

    def train(self, documents, questions, output, *, dev_questions=None):
        if self.fold is not None:  # a fold trains on the questions outside it (every third one held out)
            questions = [q for i, q in enumerate(questions) if i % 3 != self.fold % 3]
        FakeTrainer.runs.append({"epochs": self.epochs, "output": str(output), "questions": len(questions)})
        out = []
        for epoch in range(1, self.epochs + 1):
            target = Path(output) / f"epoch-{epoch}"
            target.mkdir(parents=True, exist_ok=True)
            (target / "model.json").write_text(json.dumps({"max_words": min(epoch, self.max_words)}))
            out.append(EpochCheckpoint(epoch, target, float(min(epoch, 2)), 1.0 / epoch))
        return out


class FakePlugin:
    """A plugin object registering all the fakes; register it on the plugin manager in a fixture."""

    @hookimpl
    def register_retrievers(self, register: Any) -> None:
        register(FakeRetriever)

    @hookimpl
    def register_fusers(self, register: Any) -> None:
        register(FakeFuser)

    @hookimpl
    def register_readers(self, register: Any) -> None:
        register(FakeReader)

    @hookimpl
    def register_postprocessors(self, register: Any) -> None:
        register(FakePostprocessor)

    @hookimpl
    def register_trainers(self, register: Any) -> None:
        register(FakeTrainer)


# Fixtures shared by odqa's test suites (the core's and the plugins'): a conftest.py imports the ones its tests use,
# ``from odqa_core.testing import fake_plugins, odqa, toy_files, toy_index``.


@pytest.fixture
def fake_plugins() -> Iterator[FakePlugin]:
    """The fake components registered as a throwaway plugin ``odqa-fakes`` for one test."""
    with registered_plugin(FakePlugin(), "odqa-fakes") as plugin:
        yield plugin


@pytest.fixture
def odqa() -> Callable[[str], Any]:
    """Run the CLI in-process: ``odqa(f"index --retriever bm25 --corpus {path}")`` → click ``Result``."""
    return run_cli


@pytest.fixture
def toy_files(tmp_path: Path) -> tuple[Path, Path]:
    """The toy corpus and questions as files: ``corpus, questions = toy_files``."""
    return write_toy_files(tmp_path)


@pytest.fixture
def toy_index(fake_plugins: FakePlugin, toy_files: tuple[Path, Path], tmp_path: Path) -> Path:
    """The index directory of the ``fake`` retriever over the toy corpus (``toy_files``' corpus)."""
    corpus, _ = toy_files
    index_dir = tmp_path / "toy-index"
    result = run_cli(f"index --retriever fake --corpus {corpus} --index-dir {index_dir}")
    assert result.exit_code == 0, result.output
    return index_dir
