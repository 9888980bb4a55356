"""Helpers shared by the benchmark scripts: their argument parser and run header (command, machine, versions,
code), KorQuAD's location and splits, the settings several benchmarks compare against, timing, memory and output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_KORQUAD = "../shared/data/korquad/KorQuAD_v1.0_dev.json"  # relative to the repository root
DEFAULT_OUT = "/tmp/odqa-bench"
#: The DPR checkpoint ``korquad_fusion.py`` trains (with its default ``--out``), reused by later benchmarks.
FUSION_DPR = f"{DEFAULT_OUT}/fusion/dpr/best"
#: BM25 lucene over character bigrams: the best sparse setting of ``korquad_retrieval.py``, the BM25 that the
#: KorQuAD dense, fusion and reader benchmarks run beside their models.
BM25_LUCENE_BIGRAMS = {"variant": "lucene", "analyzer": "char-ngram", "analyzer_options": {"n": 2}}
#: KorQuAD's reader protocol: readers train on the questions of the articles before this one and select their
#: epoch on (at most) ``EPOCH_SELECTION_QUESTIONS`` questions of the articles from it to the 100th.
FIT_ARTICLES = 92
EPOCH_SELECTION_QUESTIONS = 300

SINGLE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def single_thread_env() -> None:
    """Pin the numeric libraries to one thread; call before numpy / numba are imported."""
    for key, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)


def benchmark_parser(
    doc: str | None, *, korquad: bool = False, out: str | None = None, render: str | None = None
) -> argparse.ArgumentParser:
    """The scripts' argument parser: ``doc`` (the script's docstring, its protocol) as ``--help``; ``--korquad``
    for a script that reads KorQuAD; ``--out`` defaulting to the subdirectory ``out`` of :data:`DEFAULT_OUT`
    (``""``: :data:`DEFAULT_OUT` itself) for a script that writes there; ``--render`` for a script whose result
    file (``render``, e.g. ``korquad_fusion.json``) can be printed again as Markdown (see :func:`print_rendered`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if korquad:
        parser.add_argument("--korquad", default=None, help=f"KorQuAD 1.0 dev JSON (default {DEFAULT_KORQUAD})")
    if out is not None:
        default = f"{DEFAULT_OUT}/{out}" if out else DEFAULT_OUT
        parser.add_argument("--out", default=default, help="Scratch directory for results (never the repository).")
    if render is not None:
        parser.add_argument("--render", default=None, help=f"Only print the Markdown of a {render}.")
    return parser


def print_rendered(args: argparse.Namespace, render: Callable[[Any], str]) -> bool:
    """With ``--render FILE``: print ``render`` of that result file and return True (the script stops there)."""
    if not args.render:
        return False
    print(render(json.loads(Path(args.render).read_text())))
    return True


def korquad_path(option: str | None) -> Path:
    """The KorQuAD file: the option as given (absolute, or relative to the cwd then the repository root)."""
    p = Path(option or DEFAULT_KORQUAD)
    if p.is_absolute() or p.exists():
        return p
    return REPO / p


def require_korquad(option: str | None) -> Path | None:
    """The KorQuAD file, or None (with a message saying how to point at it) when it is absent: skip the part."""
    p = korquad_path(option)
    if not p.is_file():
        print(f"KorQuAD not found at {p} (pass --korquad PATH); skipping the KorQuAD part.")
        return None
    return p


def korquad_split(path: Path) -> tuple[list, list, list, list]:
    """``(contexts, passages, train, test)`` by the conventions of ../shared/data/korquad/README.md: the distinct
    contexts (document level), their consecutive 30-word windows (passage level), the questions of the first 100
    articles (file order) to train on and those of the last 40 to evaluate on."""
    from odqa_core import data

    docs = data.load_corpus(path)
    passages = data.split_passages(docs, 30)
    questions = data.load_questions(path)
    train = [q for q in questions if q.metadata["article"] < 100]
    test = [q for q in questions if q.metadata["article"] >= 100]
    return docs, passages, train, test


def epoch_selection_split(train: list, fit_articles: int = FIT_ARTICLES) -> tuple[list, list]:
    """``(fit, dev)`` of KorQuAD's training questions for a reader: it trains on the questions of the first
    ``fit_articles`` articles and selects its epoch on questions held out by article (never the evaluation ones)."""
    dev = [q for q in train if q.metadata["article"] >= FIT_ARTICLES][:EPOCH_SELECTION_QUESTIONS]
    fit = [q for q in train if q.metadata["article"] < fit_articles]
    return fit, dev


def train_korquad_dpr(
    passages: list, train: list, test: list, out: Path, *, size: str = "tiny", epochs: int = 1, device: str = "auto"
) -> str:
    """The KorQuAD benchmarks' DPR (``korquad_fusion.py``'s, reused by ``korquad_reader.py``): a bootstrap BERT of
    ``size`` trained ``epochs`` epochs on ``train`` (``test`` selects the epoch) into ``out/dpr``; an already trained
    one is reused. Returns the best checkpoint's path."""
    from odqa_dense.training import TrainConfig, train_dpr

    run = out / "dpr"
    if (run / "best" / "manifest.json").is_file():
        return str(run / "best")
    config = TrainConfig(
        bootstrap_size=size,
        vocab_size=16000,
        epochs=epochs,
        batch_size=32,
        hard_negatives=1,
        passage_max_length=128,
        query_max_length=64,
        device=device,
        eval_ks=(1, 5, 20, 100),
        seed=42,
    )
    train_dpr(passages, train, config, run, dev_questions=test)
    return str(run / "best")


def sample_reading_inputs(k: int = 5) -> tuple[list, list, list, Any, Any]:
    """The bundled sample as the reader benchmarks read it: ``(corpus, training questions, evaluation questions,
    the evaluation questions' gold passages, their BM25 top k)``."""
    from odqa_core import data, plugins
    from odqa_core.data import gold_results
    from odqa_core.pipeline import retrieve

    documents = data.load_corpus(data.sample_corpus_path())
    train = data.load_questions(data.sample_train_questions_path())
    test = data.load_questions(data.sample_questions_path())
    bm25 = plugins.create("retriever", "bm25")
    bm25.index(documents)
    return documents, train, test, gold_results(test, documents), retrieve([bm25], None, test, k, bar=False)


def top_k(results: Any, k: int) -> Any:
    """The first ``k`` hits of every question of ``results`` (a ``RankedResults``)."""
    from odqa_core.types import RankedResults

    return RankedResults(results.indices[:, :k], results.scores[:, :k], results.documents)


def best_answer_report(questions: list, nbest: list) -> Any:
    """EM / F1 of each question's best answer in ``nbest`` (one list of predictions per question; a question
    without one scores 0), as ``odqa evaluate`` computes them."""
    from odqa_core.qa_metrics import evaluate_predictions

    return evaluate_predictions({q.id: (p[0].answer if p else "") for q, p in zip(questions, nbest)}, questions)


def import_now(*modules: str) -> None:
    """Import the code a long run will use before it starts, so that editing the sources while it goes on cannot
    mix versions."""
    import importlib

    for module in modules:
        importlib.import_module(module)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": mem_gb,
        "gpu": "none",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": utc_now(),
    }


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def versions(*names: str) -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "absent"
    return out


def source_state(path: str = "plugins/odqa-sparse/odqa_sparse") -> str:
    """The last commit touching ``path`` (and whether its working tree differs), to name the code measured."""
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", path], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", path], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{path} at {commit or 'no commit'}" + (" + uncommitted changes" if dirty else "")


def run_header(source: str, *packages: str) -> dict[str, Any]:
    """What every result file starts with: the command, the machine, the versions of ``packages`` and the state of
    the code measured (``source``, a path in the repository)."""
    return {
        "command": command_line(),
        "machine": machine(),
        "versions": versions(*packages),
        "source": source_state(source),
    }


def header_lines(header: dict[str, Any]) -> str:
    """A run header as printed before a script's results: command, machine, versions and code, one a line."""
    return f"{header['command']}\n{header['machine']}\n{header['versions']}\n{header['source']}\n"


def markdown_header(header: dict[str, Any]) -> str:
    """A run header as the first lines of a Markdown copy of the tables: date, machine, code, then the command."""
    m = header["machine"]
    return (
        f"{m['date_utc']}; {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, no GPU; {header['source']}\n\n"
        f"`{header['command']}`\n\n"
    )


def headline(header: dict[str, Any]) -> str:
    """A run header in one line: date, command, code."""
    return f"{header['machine']['date_utc']}; `{header['command']}`; {header['source']}"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_json(out_dir: str | Path, name: str, payload: Any) -> Path:
    return write_text(out_dir, name, json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def write_text(out_dir: str | Path, name: str, text: str) -> Path:
    """``text`` written to ``out_dir/name`` (UTF-8), the directory made if needed."""
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    file = path / name
    file.write_text(text, encoding="utf-8")
    return file


def show_markdown(out_dir: str | Path, name: str, text: str) -> None:
    """Print a script's Markdown tables and keep a copy as ``out_dir/name``."""
    write_text(out_dir, name, text)
    print(text)


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)
