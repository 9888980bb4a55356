"""The main job with the real sparse plugin: the bundled sample, analyzers through the CLI, KorQuAD regressions.

Skipped in the ``core`` tox env (odqa alone); run in ``sparse``.
"""

from __future__ import annotations

import json

import pytest

import odqa_core._cli
from odqa_core import data, plugins
from odqa_core.errors import UsageError
from odqa_core.evaluation import evaluate_retrieval, hits_from_results
from odqa_core.spec import PipelineSpec
from odqa_core.testing import assert_one_line_error

pytest.importorskip("odqa_sparse")


def test_main_job_on_the_bundled_sample(odqa, tmp_path):
    out = tmp_path / "out"
    result = odqa(f"run --retriever bm25 --output-dir {out}")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_documents"] == 58  # 60 written, two exact duplicates merged
    assert summary["n_questions"] == 107
    metrics = summary["retrieval"]["metrics"]
    assert metrics["doc"]["acc@5"] >= 0.9 and metrics["answer"]["acc@20"] >= 0.95
    lines = (out / "run.jsonl").read_text().splitlines()
    assert len(lines) == 107 and len(json.loads(lines[0])["hits"]) == 58


def test_sample_defaults_to_character_bigrams_and_the_user_wins(odqa, tmp_path):
    # Korean particles: on the sample "훈민정음이 반포된 해는 언제인가?" shares no whole word with its document
    corpus = data.sample_corpus_path()
    result = odqa(f"run --retriever bm25 --output-dir {tmp_path / 'run'}")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["components"]["bm25"]["analyzer"] == "char-ngram"
    assert summary["retrieval"]["metrics"]["doc"]["acc@1"] >= 0.95
    result = odqa(f"index --retriever bm25 --corpus {corpus} --index-dir {tmp_path / 'idx'}")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["config"]["analyzer"] == "char-ngram"
    result = odqa(f"index --retriever bm25 --corpus {corpus} --index-dir {tmp_path / 'words'} --analyzer regex")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "words" / "manifest.json").read_text())["config"]["analyzer"] == "regex"
    for index_dir, first in (("idx", "doc-004"), ("words", None)):
        result = odqa(f"ask --index-dir {tmp_path / index_dir} --json '훈민정음이 반포된 해는 언제인가?'")
        assert result.exit_code == 0, result.output
        top = json.loads(result.output)[0]["passages"][0]
        assert top["doc_id"] == first if first else top["score"] == 0.0  # whole words: no word in common


def test_summary_records_bm25_parameters_as_used(odqa, tmp_path):
    from odqa_sparse.weighting import BM25_DEFAULTS

    result = odqa(f"run --retriever bm25 --output-dir {tmp_path / 'out'} -o bm25.variant=lucene")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    bm25 = summary["components"]["bm25"]
    k1, b, delta = BM25_DEFAULTS["lucene"]
    assert (bm25["variant"], bm25["k1"], bm25["b"], bm25["delta"]) == ("lucene", k1, b, delta)  # not null
    assert summary["inputs"]["corpus"] == "sample" and summary["inputs"]["questions"] == "sample"


def test_duplicate_documents_still_count_as_gold():
    documents = data.load_corpus(data.sample_corpus_path())
    merged = [d for d in documents if len(d.source_ids) > 1]
    assert {tuple(d.source_ids) for d in merged} == {("doc-012", "doc-059"), ("doc-049", "doc-060")}
    questions = [
        q for q in data.load_questions(data.sample_questions_path()) if q.doc_ids[0] in ("doc-059", "doc-060")
    ]
    assert questions, "the sample has questions whose gold id is a merged duplicate"
    bm25 = plugins.create("retriever", "bm25")
    bm25.index(documents)
    report = evaluate_retrieval(questions, hits_from_results(bm25.search([q.text for q in questions], 10)), (10,))
    assert report.metrics["doc"]["acc@10"] == 1.0


def test_analyzer_through_the_cli_is_stored_and_reused(odqa, tmp_path):
    corpus, questions = data.sample_corpus_path(), data.sample_questions_path()
    index_dir, run_file = tmp_path / "idx", tmp_path / "run.jsonl"
    result = odqa(
        f"index --retriever tfidf --corpus {corpus} --index-dir {index_dir} --analyzer char-ngram "
        "--analyzer-option n=2 --split-words 40 --stride 20"
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["config"]["analyzer"] == "char-ngram" and manifest["config"]["analyzer_options"]["n"] == 2
    result = odqa(f"retrieve --index-dir {index_dir} --questions {questions} --top-k 20 --output {run_file}")
    assert result.exit_code == 0, result.output
    first_hit = json.loads(run_file.read_text().splitlines()[0])["hits"][0]
    assert "#" in first_hit["doc_id"] and first_hit["source_ids"]  # passages remember their document
    result = odqa(f"evaluate --run {run_file} --questions {questions} --index-dir {index_dir} --json")
    assert json.loads(result.output)["metrics"]["doc"]["acc@20"] >= 0.9


@pytest.mark.parametrize(
    "option, culprit",
    [
        ("--analyzer nope", "'nope' is not available"),
        ("-o variant=bm99", "bm99"),
        ("-o k1=Infinity", "option 'k1' must be a finite number, got Infinity"),
        ("--analyzer-option 'pattern=\\w*'", "option 'pattern' can match the empty string"),
        ("--analyzer char-ngram --analyzer-option n=NaN", "option 'n' must be a finite number, got NaN"),
    ],
)
def test_bad_sparse_options_are_one_line_errors(odqa, tmp_path, option, culprit):
    result = odqa(
        f"index --retriever bm25 --corpus {data.sample_corpus_path()} --index-dir {tmp_path / 'idx'} {option}"
    )
    assert_one_line_error(result, 2, culprit)
    assert not (tmp_path / "idx").exists()


# --- KorQuAD 1.0 dev: golden results (benchmarks/RESULTS.md), tolerances for tie order only ---------------------


@pytest.fixture(scope="module")
def korquad(korquad_path):
    return data.load_questions(korquad_path), korquad_path


@pytest.mark.korquad
@pytest.mark.parametrize(
    "level, retriever, options, metric",
    [
        ("document", "bm25", {}, {"doc": {"acc@1": 0.7627, "acc@20": 0.9293, "acc@100": 0.9503}}),
        ("passage", "bm25", {}, {"answer": {"acc@1": 0.6226, "acc@20": 0.8500, "acc@100": 0.8869}}),
    ],
)
def test_korquad_regression(korquad, level, retriever, options, metric):
    questions, path = korquad
    documents = data.load_corpus(path, split_words=30 if level == "passage" else None)
    assert len(documents) == (4286 if level == "passage" else 961)  # 964 paragraphs, 961 distinct texts
    searcher = plugins.create("retriever", retriever, options)
    searcher.index(documents)
    report = evaluate_retrieval(questions, hits_from_results(searcher.search([q.text for q in questions], 100)))
    for kind, values in metric.items():
        for name, value in values.items():
            assert report.metrics[kind][name] == pytest.approx(value, abs=0.002), (kind, name)


def test_the_analyzer_goes_to_the_retrievers_that_take_one(fake_plugins, odqa, toy_files, tmp_path, monkeypatch):
    corpus, _ = toy_files
    settings = {"retrievers": ["bm25"], "corpus": str(corpus), "analyzer": "char-ngram"}
    spec = PipelineSpec.from_settings({**settings, "analyzer_options": {"n": 3}})
    assert spec.options_of("bm25") == {"analyzer": "char-ngram", "analyzer_options": {"n": 3}}
    seen = []  # the spec 'odqa run' would run with (nothing is run)
    monkeypatch.setattr(odqa_core._cli, "_run", lambda spec, *rest: seen.append(spec))
    assert odqa(f"run --retriever bm25 --corpus {corpus} --analyzer char-ngram").exit_code == 0
    assert seen == [PipelineSpec.from_settings(settings)]
    with pytest.raises(UsageError, match="none of the retrievers"):
        PipelineSpec.from_settings({**settings, "retrievers": ["fake"]})
    # A stored index keeps the analyzer it was built with: the setting is for the retrievers indexed now.
    index = tmp_path / "idx"
    assert odqa(f"index --retriever bm25 --corpus {corpus} --index-dir {index}").exit_code == 0
    stored = PipelineSpec.from_settings({"analyzer": "char-ngram"}, index_dirs=[index])
    assert stored.options_of("bm25") == {}
