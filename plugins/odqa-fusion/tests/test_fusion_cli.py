"""The fusers end to end through the ``odqa`` CLI on the bundled sample: run, retrieve, evaluate and tune.

BM25 (odqa-sparse) and a random micro DPR (odqa-dense, mean pooling: distinct scores without training) are built once
for the module. Bad input must give one ``Error:`` line, exit code 2, and write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("odqa_sparse")
pytest.importorskip("odqa_dense")

from odqa_core import data  # noqa: E402
from odqa_core.testing import (  # noqa: E402
    assert_one_line_error,
    heavy_modules_imported,
    run_and_read_summary,
    run_cli,
)

SAMPLE_CORPUS = data.sample_corpus_path()
SAMPLE_QUESTIONS = data.sample_questions_path()
N_DOCUMENTS = 58
N_QUESTIONS = 107
TOP_K = 20
# The lengths the DPR index below is built with; an unindexed DPR must encode the same way.
LENGTHS = "-o dpr.passage_max_length=64 -o dpr.query_max_length=32"

#: ``odqa run`` settings: (fuser, extra arguments). Union depth and sequential candidates stay below the corpus size.
RUNS = {
    "cross-whole-none": ("cross", "-o cross.normalization=none"),  # no --retriever: the fuser brings bm25 + dpr
    "cross-whole-min-max": ("cross", "--retriever bm25 -o cross.normalization=min-max"),
    "cross-whole-z-score": ("cross", "--retriever dpr -o cross.normalization=z-score -o cross.lam=0.5"),
    "cross-union-none": ("cross", "--retriever bm25 -o cross.mode=union -o cross.depth=20"),
    "cross-union-min-max": (
        "cross",
        "--retriever bm25 -o cross.mode=union -o cross.depth=25 -o cross.normalization=min-max -o cross.missing=zero",
    ),
    "cross-union-z-score": (
        "cross",
        "--retriever bm25 -o cross.mode=union -o cross.depth=30 -o cross.normalization=z-score "
        "-o cross.missing=exact",
    ),
    "rrf": ("rrf", "--retriever bm25 --retriever dpr -o rrf.rrf_k=10 -o rrf.depth=40"),
    "sequential": ("sequential", "--retriever bm25 -o sequential.candidates=30"),
}


@pytest.fixture(scope="module", autouse=True)
def _single_threaded():
    """torch on one thread: faster for micro matrices on a busy 2-core machine, and reproducible."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fusion-cli")


@pytest.fixture(scope="module")
def model(work) -> str:
    """A random micro bi-encoder checkpoint (seed 0, mean pooling) with a vocabulary of the sample."""
    from odqa_dense.encoder import BiEncoder
    from odqa_transformers.bootstrap import bootstrap_encoder

    texts = [f"{d.title} {d.text}" for d in data.load_corpus(SAMPLE_CORPUS)]
    texts += [q.text for q in data.load_questions(SAMPLE_QUESTIONS)]
    tokenizer, encoder = bootstrap_encoder(texts, "micro", 500, 512, 0)
    path = work / "model"
    BiEncoder.from_models(tokenizer, encoder, pooling="mean").save(path)
    return str(path)


@pytest.fixture(scope="module")
def dpr(model) -> str:
    """The options a run (or an unindexed DPR) needs."""
    return f"-o dpr.model={model} {LENGTHS}"


def _index(work: Path, name: str, args: str) -> Path:
    path = work / name
    result = run_cli(f"index --corpus {SAMPLE_CORPUS} --index-dir {path} {args}")
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def bm25_index(work) -> Path:
    return _index(work, "bm25", "--retriever bm25")


@pytest.fixture(scope="module")
def dpr_index(work, model) -> Path:
    return _index(work, "dpr", f"--retriever dpr --model {model} -o passage_max_length=64 -o query_max_length=32")


@pytest.fixture(scope="module")
def bm25_split_index(work) -> Path:
    """BM25 over another document table: the sample cut into passages of 20 words."""
    return _index(work, "bm25-split", "--retriever bm25 --split-words 20")


@pytest.fixture(scope="module")
def fused_run(work, dpr):
    """``odqa run`` of a :data:`RUNS` setting, run once per module: ``(output_dir, click result)``."""
    done: dict[str, tuple[Path, object]] = {}

    def get(setting: str):
        if setting not in done:
            fuser, args = RUNS[setting]
            out = work / f"run-{setting}"
            result = run_cli(f"run --fuser {fuser} {args} {dpr} --top-k {TOP_K} --output-dir {out} --json")
            assert result.exit_code == 0, result.output
            done[setting] = (out, result)
        return done[setting]

    return get


def read_jsonl_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return {row["id"]: [(hit["doc_id"], hit["score"]) for hit in row["hits"]] for row in rows}


def doc_ids(run: dict[str, list[tuple[str, float]]]) -> dict[str, list[str]]:
    return {qid: [doc for doc, _ in hits] for qid, hits in run.items()}


def assert_same_run(a: dict, b: dict, tolerance: float = 1e-4) -> None:
    assert doc_ids(a) == doc_ids(b)
    for qid in a:
        assert [s for _, s in a[qid]] == pytest.approx([s for _, s in b[qid]], abs=tolerance), qid


def evaluate(run_file: Path, index_dir: Path, ks: str = "1,5,10,20") -> dict:
    result = run_cli(
        f"evaluate --run {run_file} --questions {SAMPLE_QUESTIONS} --index-dir {index_dir} --k {ks} --json"
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- odqa run ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", list(RUNS))
def test_run_with_a_fuser_writes_every_output(fused_run, setting):
    out, result = fused_run(setting)
    fuser = RUNS[setting][0]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert json.loads(result.stdout) == summary
    assert summary["fuser"] == fuser and summary["retrievers"] == ["bm25", "dpr"]
    assert set(summary["components"]) == {"bm25", "dpr", fuser}
    assert summary["n_documents"] == N_DOCUMENTS and summary["n_questions"] == N_QUESTIONS
    assert summary["top_k"] == TOP_K
    metrics = summary["retrieval"]["metrics"]
    assert summary["retrieval"]["evaluated"]["doc"] == N_QUESTIONS
    for name in ("acc@1", "acc@5", "acc@20", "mrr@20", "recall@20"):
        assert 0.0 <= metrics["doc"][name] <= 1.0
    assert metrics["doc"]["acc@1"] <= metrics["doc"]["acc@5"] <= metrics["doc"]["acc@20"]
    assert "answer" in metrics

    run = read_jsonl_run(out / "run.jsonl")
    assert len(run) == N_QUESTIONS
    for hits in run.values():
        assert len(hits) == TOP_K and len({doc for doc, _ in hits}) == TOP_K
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)

    assert (out / "index" / "bm25" / "manifest.json").is_file()
    # sequential's DPR encodes only BM25's candidates: it has no index to save
    assert (out / "index" / "dpr" / "manifest.json").is_file() == (fuser != "sequential")
    assert not (out / "index" / "dpr").exists() or fuser != "sequential"


def test_run_options_reach_the_fuser(fused_run):
    out, _ = fused_run("cross-union-z-score")
    cross = json.loads((out / "summary.json").read_text())["components"]["cross"]
    assert (cross["mode"], cross["depth"], cross["normalization"], cross["missing"]) == (
        "union",
        30,
        "z-score",
        "exact",
    )
    out, _ = fused_run("sequential")
    summary = json.loads((out / "summary.json").read_text())
    # unset stages are filled by the pipeline's retrievers, in stage order
    assert summary["components"]["sequential"] == {"first": None, "second": None, "candidates": 30}
    assert summary["retrievers"] == ["bm25", "dpr"]


def test_run_rrf_of_two_sparse_retrievers_needs_no_dpr(work):
    out = work / "run-rrf-sparse"
    summary = run_and_read_summary(f"run --retriever bm25 --retriever tfidf --fuser rrf --top-k {TOP_K}", out)
    assert summary["retrievers"] == ["bm25", "tfidf"] and summary["fuser"] == "rrf"
    assert "dpr" not in summary["components"]
    assert sorted(p.name for p in (out / "index").iterdir()) == ["bm25", "tfidf"]
    assert summary["retrieval"]["metrics"]["doc"]["acc@20"] > 0.5  # two real sparse retrievers on an easy sample
    assert len(read_jsonl_run(out / "run.jsonl")) == N_QUESTIONS


def test_a_third_party_retriever_is_fused_by_name(work):
    """The outside test plugin's ``example-title`` retriever, named only inside the fuser's options."""
    from odqa_core import plugins

    if "example-title" not in plugins.registry("retriever"):
        pytest.skip("the outside test plugin (tests/outside_plugin) is not installed")
    out = work / "run-third-party"
    summary = run_and_read_summary(
        f'run --fuser cross -o \'cross.retrievers=["bm25","example-title"]\' -o cross.lam_on=example-title '
        f"-o cross.normalization=z-score --top-k {TOP_K}",
        out,
    )
    assert summary["retrievers"] == ["bm25", "example-title"]
    assert sorted(p.name for p in (out / "index").iterdir()) == ["bm25", "example-title"]
    assert len(read_jsonl_run(out / "run.jsonl")) == N_QUESTIONS


# --- odqa retrieve / evaluate ------------------------------------------------------------------------------------


def _retrieve_args(setting: str) -> str:
    """The fuser options of a run setting, without its --retriever names (the indexes name the retrievers)."""
    words = RUNS[setting][1].split()
    return " ".join(
        w for i, w in enumerate(words) if w != "--retriever" and (i == 0 or words[i - 1] != "--retriever")
    )


@pytest.mark.parametrize("setting", list(RUNS))
def test_retrieve_with_two_indexes_equals_run(fused_run, bm25_index, dpr_index, dpr, tmp_path, setting):
    out, _ = fused_run(setting)
    fuser = RUNS[setting][0]
    if fuser == "sequential":  # what the run did: DPR scores BM25's candidates without an index
        sources = f"--index-dir {bm25_index} --retriever dpr {dpr}"
    else:
        sources = f"--index-dir {bm25_index} --index-dir {dpr_index} -o dpr.device=cpu"
    if fuser == "cross" and "cross.lam=" not in RUNS[setting][1]:
        # A run on the sample uses the demo's λ (lam="sample"); the λ its summary records must reproduce it.
        lam = json.loads((out / "summary.json").read_text())["components"]["cross"]["lam"]
        sources += f" -o cross.lam={lam}"
    run_file = tmp_path / "fused.jsonl"
    result = run_cli(
        f"retrieve --fuser {fuser} {sources} {_retrieve_args(setting)} --questions {SAMPLE_QUESTIONS} "
        f"--top-k {TOP_K} --output {run_file}"
    )
    assert result.exit_code == 0, result.output
    assert_same_run(read_jsonl_run(run_file), read_jsonl_run(out / "run.jsonl"))
    # the fused run evaluates like any run, to the metrics the run reported
    summary = json.loads((out / "summary.json").read_text())
    report = evaluate(run_file, bm25_index)
    assert report["metrics"]["doc"] == pytest.approx(summary["retrieval"]["metrics"]["doc"])
    assert report["metrics"]["answer"] == pytest.approx(summary["retrieval"]["metrics"]["answer"])


def test_retrieve_trec_format_with_a_fuser(fused_run, bm25_index, dpr_index, tmp_path):
    out, _ = fused_run("rrf")
    trec = tmp_path / "fused.trec"
    result = run_cli(
        f"retrieve --fuser rrf --index-dir {dpr_index} --index-dir {bm25_index} -o rrf.rrf_k=10 -o rrf.depth=40 "
        f"--questions {SAMPLE_QUESTIONS} --top-k {TOP_K} --output {trec} --format trec"
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in trec.read_text().splitlines()]
    assert len(lines) == N_QUESTIONS * TOP_K and all(len(parts) == 6 and parts[1] == "Q0" for parts in lines)
    ranked: dict[str, list[str]] = {}
    for qid, _, doc, rank, _, _ in lines:
        ranked.setdefault(qid, []).append(doc)
        assert int(rank) == len(ranked[qid])
    # the index order does not matter: rrf puts bm25 and dpr in its slots either way
    assert ranked == doc_ids(read_jsonl_run(out / "run.jsonl"))
    summary = json.loads((out / "summary.json").read_text())
    assert evaluate(trec, bm25_index)["metrics"]["doc"] == pytest.approx(summary["retrieval"]["metrics"]["doc"])


def test_sequential_unindexed_dpr_equals_the_dpr_index(bm25_index, dpr_index, dpr, tmp_path):
    common = f"--questions {SAMPLE_QUESTIONS} --top-k 5 -o sequential.candidates=10"
    unindexed, indexed = tmp_path / "unindexed.jsonl", tmp_path / "indexed.jsonl"
    result = run_cli(
        f"retrieve --fuser sequential --index-dir {bm25_index} --retriever dpr {dpr} {common} --output {unindexed}"
    )
    assert result.exit_code == 0, result.output
    result = run_cli(
        f"retrieve --fuser sequential --index-dir {bm25_index} --index-dir {dpr_index} {common} --output {indexed}"
    )
    assert result.exit_code == 0, result.output
    assert_same_run(read_jsonl_run(unindexed), read_jsonl_run(indexed), tolerance=1e-4)

    bm25_file, dpr_file = tmp_path / "bm25.jsonl", tmp_path / "dpr.jsonl"
    for index, file, k in ((bm25_index, bm25_file, 10), (dpr_index, dpr_file, N_DOCUMENTS)):
        result = run_cli(f"retrieve --index-dir {index} --questions {SAMPLE_QUESTIONS} --top-k {k} --output {file}")
        assert result.exit_code == 0, result.output
    candidates = doc_ids(read_jsonl_run(bm25_file))
    dpr_scores = {qid: dict(hits) for qid, hits in read_jsonl_run(dpr_file).items()}
    for qid, hits in read_jsonl_run(indexed).items():
        assert len(hits) == 5
        assert {doc for doc, _ in hits} <= set(candidates[qid])  # never outside BM25's top candidates
        # DPR's ranking of BM25's candidates (scores as DPR alone gives them)
        for doc, score in hits:
            assert score == pytest.approx(dpr_scores[qid][doc], abs=1e-4)
        best = sorted(candidates[qid], key=lambda d: -dpr_scores[qid][d])[:5]
        assert [dpr_scores[qid][d] for d, _ in hits] == pytest.approx([dpr_scores[qid][d] for d in best], abs=1e-4)


# --- odqa tune ---------------------------------------------------------------------------------------------------


def test_tune_cross_best_cell_equals_retrieve_and_evaluate(bm25_index, dpr_index, tmp_path):
    tune = (
        f"tune --fuser cross --index-dir {bm25_index} --index-dir {dpr_index} --questions {SAMPLE_QUESTIONS} "
        f"--grid lam=0,0.5,1.1,3 --grid normalization=none,z-score --top-k {TOP_K} --metric acc@5"
    )
    result = run_cli(tune)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["rank", "lam", "normalization"]
    assert len(lines) == 2 + 8 + 1  # header, rule, one row per cell, the best line
    best_line = lines[-1]
    assert best_line.startswith("best (doc acc@5 = ") and f"over {N_QUESTIONS} questions" in best_line
    setting = best_line.partition("): ")[2]
    assert setting.startswith("-o cross.lam=") and "-o cross.normalization=" in setting

    result = run_cli(f"{tune} --json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["cells"]) == 8 and report["best"] == report["cells"][0]
    values = [cell["metrics"]["acc@5"] for cell in report["cells"]]
    assert values == sorted(values, reverse=True)
    assert f"= {report['best']['metrics']['acc@5']:.4f} over" in best_line

    # the printed setting is a working -o list, and doing what it says measures what tune reported
    run_file = tmp_path / "best.jsonl"
    result = run_cli(
        f"retrieve --fuser cross --index-dir {bm25_index} --index-dir {dpr_index} {setting} "
        f"--questions {SAMPLE_QUESTIONS} --top-k {TOP_K} --output {run_file}"
    )
    assert result.exit_code == 0, result.output
    measured = evaluate(run_file, bm25_index, "1,5,10,20")["metrics"]["doc"]
    assert measured == pytest.approx(report["best"]["metrics"])
    assert measured["acc@5"] == pytest.approx(report["best"]["metrics"]["acc@5"])

    # and so does the worst cell, from its JSON options
    worst = report["cells"][-1]["options"]
    options = " ".join(f"-o cross.{k}={json.dumps(v)}" for k, v in worst.items())
    result = run_cli(
        f"retrieve --fuser cross --index-dir {bm25_index} --index-dir {dpr_index} {options} "
        f"--questions {SAMPLE_QUESTIONS} --top-k {TOP_K} --output {run_file}"
    )
    assert result.exit_code == 0, result.output
    assert evaluate(run_file, bm25_index)["metrics"]["doc"] == pytest.approx(report["cells"][-1]["metrics"])


# --- bad input: one line, exit code 2, nothing written ----------------------------------------------------------

RUN_ERRORS = {
    "cross-unknown-retriever": ('--fuser cross -o \'cross.retrievers=["bm25","nope"]\'', "'nope' is not available"),
    "sequential-unknown-second": ("--retriever bm25 --fuser sequential -o sequential.second=nope", "'nope' is not"),
    "rrf-unknown-retriever": ('--fuser rrf -o \'rrf.retrievers=["nope","bm25"]\'', "'nope' is not available"),
    "retriever-outside-explicit-list": (
        '--retriever tfidf --fuser cross -o \'cross.retrievers=["bm25","dpr"]\' {dpr}',
        "'tfidf' is not one of them",
    ),
    "lam-and-weights": (
        "--retriever bm25 --fuser cross -o cross.lam=1 -o 'cross.weights={{\"dpr\":2}}' {dpr}",
        "not both",
    ),
    "lam-on-not-fused": ("--retriever bm25 --retriever tfidf --fuser cross -o cross.lam=2", "lam_on"),
    "weights-unknown-retriever": (
        "--retriever bm25 --retriever tfidf --fuser cross -o 'cross.weights={{\"nope\":2}}'",
        "nope",
    ),
    "rrf-weights-unknown-retriever": (
        "--retriever bm25 --retriever tfidf --fuser rrf -o 'rrf.weights={{\"dpr\":2}}'",
        "dpr",
    ),
    "bad-mode": ("--retriever bm25 --fuser cross -o cross.mode=both {dpr}", "mode"),
    "bad-normalization": ("--retriever bm25 --fuser cross -o cross.normalization=l2 {dpr}", "normalization"),
    "bad-missing": ("--retriever bm25 --fuser cross -o cross.mode=union -o cross.missing=drop {dpr}", "missing"),
    "unknown-fuser-option": ("--retriever bm25 --fuser cross -o cross.nope=1 {dpr}", "nope"),
    "top-k-0": ("--retriever bm25 --fuser cross --top-k 0 {dpr}", "top-k"),
    # On the user's own corpus (not the bundled sample, which gets its demo DPR) a missing model is an error.
    "cross-dpr-without-model": ("--retriever bm25 --fuser cross --corpus {corpus}", "dpr.model"),
    "sequential-dpr-without-model": ("--retriever bm25 --fuser sequential --corpus {corpus}", "dpr.model"),
    "sequential-three-retrievers": (
        "--retriever bm25 --retriever tfidf --retriever dpr --fuser sequential {dpr}",
        "exactly 2 retrievers",
    ),
}


@pytest.mark.parametrize("case", list(RUN_ERRORS))
def test_run_errors_are_one_line_and_write_nothing(dpr, tmp_path, case):
    args, culprit = RUN_ERRORS[case]
    out = tmp_path / "out"
    result = run_cli(f"run {args.format(dpr=dpr, corpus=data.sample_corpus_path())} --output-dir {out}")
    assert_one_line_error(result, 2, culprit)
    assert not out.exists()


RETRIEVE_ERRORS = {
    "cross-unknown-retriever": (
        '--fuser cross {ib} -o \'cross.retrievers=["bm25","nope"]\'',
        "'nope' is not available",
    ),
    "rrf-unknown-retriever": (
        '--fuser rrf {ib} {id} -o \'rrf.retrievers=["bm25","dpr","nope"]\'',
        "'nope' is not available",
    ),
    "index-outside-explicit-list": (
        '--fuser rrf {ib} {id} -o \'rrf.retrievers=["bm25","tfidf"]\'',
        "retriever 'dpr' is not one of them",
    ),
    "cross-index-outside-explicit-list": (
        '--fuser cross {ib} {id} -o \'cross.retrievers=["bm25","nope"]\'',
        "retriever 'dpr' is not one of them",
    ),
    "sequential-unknown-second": ("--fuser sequential {ib} -o sequential.second=nope", "'nope' is not available"),
    "two-indexes-without-fuser": ("{ib} {id}", "--fuser"),
    "two-indexes-of-one-retriever": ("--fuser cross {ib} {split}", "two indexes"),
    "different-corpora": ("--fuser cross {split} {id}", "different corpora"),
    "sequential-first-stage-without-index": ("--fuser sequential {id} --retriever bm25", "no index"),
    "sequential-unindexed-dpr-first": (
        "--fuser sequential {ib} --retriever dpr -o sequential.first=dpr -o sequential.second=bm25 {dpr}",
        "no index",
    ),
    "lam-and-weights": ("--fuser cross {ib} {id} -o cross.lam=1 -o 'cross.weights=[1,2]'", "not both"),
    "lam-on-not-fused": ("--fuser cross {ib} {id} -o cross.lam_on=tfidf", "lam_on"),
    "weights-unknown-retriever": ("--fuser cross {ib} {id} -o 'cross.weights={{\"tfidf\":2}}'", "tfidf"),
    "weights-list-too-long": ("--fuser cross {ib} {id} -o 'cross.weights=[1,2,3]'", "weights"),
    "bad-mode": ("--fuser cross {ib} {id} -o cross.mode=both", "mode"),
    "bad-normalization": ("--fuser cross {ib} {id} -o cross.normalization=l2", "normalization"),
    "bad-missing": ("--fuser cross {ib} {id} -o cross.missing=drop", "missing"),
    "top-k-0": ("--fuser cross {ib} {id} --top-k 0", "top-k"),
    "sequential-dpr-without-model": ("--fuser sequential {ib} --retriever dpr", "dpr.model"),
    "sequential-three-retrievers": ("--fuser sequential {ib} {id} --retriever tfidf", "exactly 2 retrievers"),
    "fixed-dpr-option-of-an-index": ("--fuser cross {ib} {id} -o dpr.passage_max_length=32", "passage_max_length"),
}


@pytest.mark.parametrize("case", list(RETRIEVE_ERRORS))
def test_retrieve_errors_are_one_line_and_write_nothing(bm25_index, dpr_index, bm25_split_index, dpr, tmp_path, case):
    args, culprit = RETRIEVE_ERRORS[case]
    args = args.format(
        ib=f"--index-dir {bm25_index}",
        id=f"--index-dir {dpr_index}",
        split=f"--index-dir {bm25_split_index}",
        dpr=dpr,
    )
    output = tmp_path / "fused.jsonl"
    result = run_cli(f"retrieve {args} --questions {SAMPLE_QUESTIONS} --output {output}")
    assert_one_line_error(result, 2, culprit)
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_tune_errors_are_one_line_and_write_nothing(bm25_index, dpr_index, bm25_split_index, tmp_path):
    output = tmp_path / "tune.json"
    base = f"tune --fuser cross --questions {SAMPLE_QUESTIONS} --output {output}"
    both = f"--index-dir {bm25_index} --index-dir {dpr_index}"
    for args, culprit in (
        (both, "--grid"),
        (f"{both} --grid nope=1,2", "nope"),
        (f"{both} --grid lam=1,2 -o cross.lam=1", "lam"),
        (f"{both} --grid 'weights=[{{\"dpr\": 2}}' ", "weights"),
        (f"{both} --grid normalization=none,l2", "normalization"),
        (f"{both} --grid lam=1 --metric acc@50 --top-k 20", "--metric"),
        (f"--index-dir {bm25_split_index} --index-dir {dpr_index} --grid lam=1,2", "different corpora"),
        (f"{both} --corpus {SAMPLE_CORPUS} --grid lam=1,2", "--corpus"),
        ("--grid lam=1,2", "--index-dir"),
    ):
        result = run_cli(f"{base} {args}")
        assert_one_line_error(result, 2, culprit)
        assert not output.exists()


# --- discovery ---------------------------------------------------------------------------------------------------


def test_plugins_json_lists_the_fusion_plugin():
    result = run_cli("plugins --json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    fusion = rows["fusion"]
    assert fusion["distribution"] == "odqa-fusion"
    assert fusion["components"] == {"fusers": ["cross", "rrf", "sequential"]}
    assert "register_fusers" in fusion["hooks"]


NO_TORCH = r"""
import sys
import odqa_core
from odqa_core import plugins
from odqa_core.spec import PipelineSpec

fusers = odqa_core.plugins.registry("fuser")
assert {"cross", "rrf", "sequential"} <= set(fusers), sorted(fusers)
for kind in ("retriever", "reader", "postprocessor", "analyzer"):
    plugins.registry(kind)
for name in ("cross", "rrf", "sequential"):
    fuser = plugins.create("fuser", name, {})
    assert fuser.select_retrievers([]) == ["bm25", "dpr"], name
settings = {"retrievers": ["bm25"], "fuser": "cross", "options": {"dpr.model": "m"}}
assert PipelineSpec.from_settings(settings, sample=False).retrievers == ("bm25", "dpr")
"""


def test_fuser_discovery_imports_no_torch(tmp_path):
    heavy_libraries = ("torch", "transformers", "faiss", "tokenizers", "safetensors")
    heavy = heavy_modules_imported(NO_TORCH, heavy_libraries, tmp_path)
    assert heavy == [], f"heavy modules imported at fuser discovery: {heavy}"
