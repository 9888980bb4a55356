"""The main job with the real sparse plugin: the bundled sample, analyzers through the CLI, KorQuAD regressions.

Skipped in the ``core`` tox env (odqa alone); run in ``sparse``.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from odqa_core import data, plugins
from odqa_core.cli import cli
from odqa_core.evaluation import evaluate_retrieval, hits_from_results

pytest.importorskip("odqa_sparse")


def test_main_job_on_the_bundled_sample(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--retriever", "bm25", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_documents"] == 58  # 60 written, two exact duplicates merged
    assert summary["n_questions"] == 107
    metrics = summary["retrieval"]["metrics"]
    assert metrics["doc"]["acc@5"] >= 0.9 and metrics["answer"]["acc@20"] >= 0.95
    lines = (out / "run.jsonl").read_text().splitlines()
    assert len(lines) == 107 and len(json.loads(lines[0])["hits"]) == 58


def test_duplicate_documents_still_count_as_gold(tmp_path):
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


def test_analyzer_through_the_cli_is_stored_and_reused(tmp_path):
    runner = CliRunner()
    index_dir = tmp_path / "idx"
    result = runner.invoke(
        cli,
        [
            "index",
            "--retriever",
            "tfidf",
            "--corpus",
            str(data.sample_corpus_path()),
            "--index-dir",
            str(index_dir),
            "--analyzer",
            "char-ngram",
            "--analyzer-option",
            "n=2",
            "--split-words",
            "40",
            "--stride",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["config"]["analyzer"] == "char-ngram" and manifest["config"]["analyzer_options"]["n"] == 2
    run_file = tmp_path / "run.jsonl"
    result = runner.invoke(
        cli,
        [
            "retrieve",
            "--index-dir",
            str(index_dir),
            "--questions",
            str(data.sample_questions_path()),
            "--top-k",
            "20",
            "--output",
            str(run_file),
        ],
    )
    assert result.exit_code == 0, result.output
    first_hit = json.loads(run_file.read_text().splitlines()[0])["hits"][0]
    assert "#" in first_hit["doc_id"] and first_hit["source_ids"]  # passages remember their document
    result = runner.invoke(
        cli,
        [
            "evaluate",
            "--run",
            str(run_file),
            "--questions",
            str(data.sample_questions_path()),
            "--index-dir",
            str(index_dir),
            "--json",
        ],
    )
    assert json.loads(result.output)["metrics"]["doc"]["acc@20"] >= 0.9


def test_unknown_analyzer_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "index",
            "--retriever",
            "bm25",
            "--corpus",
            str(data.sample_corpus_path()),
            "--index-dir",
            str(tmp_path / "idx"),
            "--analyzer",
            "nope",
        ],
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'nope' is not available" in lines[0] and "regex" in lines[0]
    assert not (tmp_path / "idx").exists()


def test_unknown_bm25_variant_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "index",
            "--retriever",
            "bm25",
            "--corpus",
            str(data.sample_corpus_path()),
            "--index-dir",
            str(tmp_path / "idx"),
            "-o",
            "variant=bm99",
        ],
    )
    assert result.exit_code == 2 and "bm99" in result.output and len(result.output.strip().splitlines()) == 1


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
