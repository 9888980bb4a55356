"""The ``odqa`` command line.

Plugin names are plain strings resolved through the registry at run time (no ``click.Choice``), so ``--help``
never has to import a plugin's heavy dependencies. For the same reason this module imports only light core modules
at the top: what needs numpy (reading and writing runs, evaluation, the pipeline) is imported by the command that
uses it, so that ``odqa --help``, ``odqa --version`` and ``odqa plugins`` start fast (tests/test_cli_start.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from odqa_core import __version__, plugins
from odqa_core.errors import OdqaError, UsageError
from odqa_core.options import (
    INDEX_DIRS_OPTION,
    STAGE_OPTION,
    corpus_options,
    parse_ks,
    parse_options,
    pipeline_options,
)
from odqa_core.outputs import previous_output

if TYPE_CHECKING:
    from odqa_core.pipeline import Pipeline
    from odqa_core.spec import PipelineSpec

#: The choices and defaults the options show in --help, spelled out here because their modules import numpy:
#: ``odqa_core._runs.RUN_FORMATS``, ``odqa_core.qa_metrics.METRICS`` and ``odqa_core.evaluation.DEFAULT_KS``
#: (tests/test_cli_start.py checks that they agree).
RUN_FORMATS: tuple[str, ...] = ("jsonl", "trec", "npz")
METRICS: tuple[str, ...] = ("korquad", "squad")
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50, 100)


class _OdqaGroup(click.Group):
    """Turns :class:`OdqaError` (bad input) into a one-line message and its exit code — never a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Before --help and --version run (they are eager): report each broken plugin in one line, or under
        # ODQA_STRICT_PLUGINS fail. `odqa plugins` lists them instead.
        listing = next((arg for arg in args if not arg.startswith("-")), None) == "plugins"
        report = _ignore_plugin_failure if listing else _warn_plugin_failure
        ctx.meta["odqa.plugin_report"] = report
        try:
            with plugins.failure_reporter(report):
                for failure in _startup_plugin_failures:
                    report(failure)
                _startup_plugin_failures.clear()
                plugins.load_all()  # already done at import, unless plugins were registered in-process since
                broken = plugins.failures()
        except OdqaError as exc:
            raise _CliError(str(exc), exc.exit_code) from None
        if broken and plugins.strict():
            raise _CliError(broken[0].fatal_message(), 1)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with (
                _terminate_as_exception(),
                plugins.failure_reporter(ctx.meta.get("odqa.plugin_report", _warn_plugin_failure)),
            ):
                return super().invoke(ctx)
        except OdqaError as exc:
            raise _CliError(str(exc), exc.exit_code) from None
        except OSError as exc:
            raise _CliError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 1) from None
        except KeyboardInterrupt:
            # Ctrl-C: the shell convention (128 + SIGINT) and one line, not click's "Aborted!" with exit 1 or a
            # traceback. Every writer renames complete files into place, so nothing half-written is left behind.
            click.echo(("\n" if sys.stderr.isatty() else "") + "Interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except _Terminated:
            # SIGTERM (kill, a scheduler, a container stop): the same clean stop, temporaries removed on the way out.
            click.echo("Terminated", err=True)
            raise click.exceptions.Exit(143) from None


class _Terminated(BaseException):
    """Raised by the SIGTERM handler, so that every ``finally`` (temporaries, locks) runs before the exit."""


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`_Terminated` instead of killing the process outright."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _warn_plugin_failure(failure: plugins.PluginFailure) -> None:
    click.echo(f"Warning: {failure.warning_message()}", err=True)


def _ignore_plugin_failure(failure: plugins.PluginFailure) -> None:
    """`odqa plugins` lists broken plugins; no warning besides."""


#: Plugins found broken while the module was imported, reported once the command line is known.
_startup_plugin_failures: list[plugins.PluginFailure] = []


class _CliError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


def _load_corpus(path: str | None, split_words: int | None, stride: int | None, dedupe: bool):
    from odqa_core import data

    return data.load_corpus(path or data.sample_corpus_path(), split_words=split_words, stride=stride, dedupe=dedupe)


def _questions_path(path: str | None):
    """A --questions value with the words ``sample`` and ``sample-train`` read as the bundled sample's evaluation
    and training questions (a file or directory of that name wins); ``None`` stays None."""
    from odqa_core import data

    return None if path is None else data.questions_source(path)


def _load_questions(path: str | None):
    from odqa_core import data

    return data.load_questions(_questions_path(path) or data.sample_questions_path())


def _check_inputs(*paths: str | None) -> None:
    """Fail at once on an input file that is missing or unreadable (``None``: not given), before slow work."""
    from odqa_core import data

    for path in paths:
        if path is not None:
            data.check_input(path)


@click.group(cls=_OdqaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="odqa")
def cli() -> None:
    """Open-domain question answering: retrievers, fusers and readers chosen by name.

    \b
    Examples:
      odqa run --retriever bm25                      # bundled sample: index, retrieve, evaluate
      odqa ask "한글을 만든 임금은?" --retriever bm25 --reader extractive   # one question, answer highlighted
      odqa index --retriever bm25 --corpus KorQuAD_v1.0_dev.json --index-dir idx/bm25
      odqa retrieve --index-dir idx/bm25 --questions KorQuAD_v1.0_dev.json --top-k 100 --output run.jsonl
      odqa evaluate --run run.jsonl --questions KorQuAD_v1.0_dev.json --index-dir idx/bm25
      odqa run --retriever bm25 --fuser cross -o dpr.model=runs/dpr/best   # 1.1 x DPR + BM25 (needs odqa-fusion)
      odqa retrieve --fuser rrf --index-dir idx/bm25 --index-dir idx/dpr --questions dev.jsonl --output rrf.jsonl
      odqa tune --fuser cross --index-dir idx/bm25 --index-dir idx/dpr --questions dev.jsonl --grid lam=0.5,1.1,2
      odqa sweep --config grid.toml                  # a grid of models, epochs, folds, k (needs odqa-experiments)
      odqa plugins
    """


@cli.command()
@click.option("--retriever", "retriever_name", required=True, help="Retriever name (see 'odqa plugins').")
@click.option("--corpus", required=True, help="SQuAD/KorQuAD JSON, KLUE wikipedia_documents.json or JSONL corpus.")
@click.option("--index-dir", required=True, type=click.Path(file_okay=False), help="Where to write the index.")
@click.option("--analyzer", default=None, help="Analyzer for sparse retrievers: regex, char-ngram, hf, kiwi, ...")
@click.option("--analyzer-option", "analyzer_options", multiple=True, metavar="KEY=VALUE", help="Analyzer option.")
@click.option("--model", default=None, help="Model for retrievers that use one (dpr): a checkpoint path or HF id.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Retriever option (JSON value).")
@click.option(
    "--shards",
    type=int,
    default=None,
    help="Split the corpus into N contiguous shards, each its own store, searched as one index (same results).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where the shards are built: in this process (or --workers processes), or on Ray actors.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Workers building shards (--shards): local processes (default 1), or Ray actors of one CPU each "
    "(default: the cluster's CPUs, at most one per shard).",
)
@click.option("--ray-address", default=None, help="A running Ray cluster (--engine ray); default: a local one.")
@corpus_options
def index(
    retriever_name,
    corpus,
    index_dir,
    analyzer,
    analyzer_options,
    model,
    options,
    shards,
    engine,
    workers,
    ray_address,
    split_words,
    stride,
    dedupe,
):
    """Build a retriever's index over a corpus and save it.

    On the bundled sample's corpus the retriever gets the demo defaults 'odqa run' gives it (bm25/tfidf: the
    char-ngram analyzer; dpr: model=sample, trained on first use) unless the options set them.

    \b
    Examples:
      odqa index --retriever bm25 --corpus wikipedia_documents.json --index-dir idx/bm25
      odqa index --retriever bm25 --corpus corpus.jsonl --index-dir idx/bm25-lucene -o variant=lucene -o k1=1.2
      odqa index --retriever tfidf --corpus corpus.jsonl --index-dir idx/tfidf --analyzer char-ngram \\
          --analyzer-option n=2 --split-words 100
      odqa index --retriever dpr --model runs/dpr/best --corpus corpus.jsonl --index-dir idx/dpr -o index_type=hnsw
      odqa index --retriever bm25 --corpus corpus.jsonl --index-dir idx/bm25-sharded --shards 4 --workers 2
      odqa index --retriever bm25 --corpus c.jsonl --index-dir /nfs/ix --shards 4 --engine ray --ray-address HOST:6379
    """
    if shards is None and (engine != "local" or workers is not None or ray_address is not None):
        raise UsageError("--engine, --workers and --ray-address apply to a sharded index (--shards N)")
    if shards is not None and shards < 1:
        raise UsageError(f"--shards must be at least 1, got {shards}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    opts = parse_options(options)
    if analyzer is not None:
        opts["analyzer"] = analyzer
    if analyzer_options:
        opts["analyzer_options"] = parse_options(analyzer_options)
    if model is not None:
        opts["model"] = model
    from odqa_core.outputs import output_lock
    from odqa_core.storage import check_store_target

    retriever = plugins.create("retriever", retriever_name, opts)
    with output_lock(index_dir):  # a second 'odqa index' into the same directory fails now, not after indexing
        check_store_target(index_dir)
        documents = _load_corpus(corpus, split_words, stride, dedupe)
        from odqa_core import data

        if data.is_sample_corpus(documents):  # the bundled sample: the demo defaults 'odqa run' gives it
            retriever = plugins.create("retriever", retriever_name, {**type(retriever).sample_defaults(), **opts})
        if shards is not None:
            from odqa_core.shards import build_sharded_index

            build_sharded_index(
                retriever, documents, index_dir, shards, engine=engine, workers=workers, ray_address=ray_address
            )
            click.echo(
                f"indexed {len(documents)} documents with {retriever_name} into {index_dir} ({shards} shards)",
                err=True,
            )
            return
        retriever.warm_up()
        retriever.index(documents)
        retriever.save(index_dir)
    click.echo(f"indexed {len(documents)} documents with {retriever_name} into {index_dir}", err=True)


_stage_option = STAGE_OPTION


@cli.command()
@click.option(
    "--index-dir", "index_dirs", multiple=True, help="An index written by 'odqa index' (repeat it for a fuser)."
)
@click.option(
    "--retriever",
    "retriever_names",
    multiple=True,
    help="A retriever without an index, for a fuser that scores candidates with it (sequential's second stage).",
)
@click.option("--fuser", default=None, help="Fuser combining the retrievers (cross, rrf, sequential, ...).")
@click.option("--questions", required=True, help="Questions: SQuAD/KorQuAD JSON, KLUE dataset dir or JSONL.")
@click.option("--top-k", type=int, default=100, show_default=True, help="Hits per question.")
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False), help="Run file to write ('-': standard output)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RUN_FORMATS),
    default="jsonl",
    show_default=True,
    help="Run file format: jsonl (a line per question), trec (six columns, trec_eval), npz (the arrays, binary: "
    "smallest and fastest at large k; not to standard output).",
)
@click.option("--batch-size", type=int, default=1024, show_default=True, help="Questions per search call.")
@_stage_option
def retrieve(index_dirs, retriever_names, fuser, questions, top_k, output, fmt, batch_size, options):
    """Search an index (or fuse several) with every question and write a run file.

    An index takes only its search-time options (device, batch size, nprobe, ...); the fuser takes any.

    \b
    Examples:
      odqa retrieve --index-dir idx/bm25 --questions dev.jsonl --top-k 100 --output run.jsonl
      odqa retrieve --index-dir idx/bm25 --questions KorQuAD_v1.0_dev.json --output run.trec --format trec
      odqa retrieve --index-dir idx/bm25 --questions dev.jsonl --top-k 1000 --output run.npz --format npz
      odqa retrieve --index-dir idx/dpr --questions dev.jsonl --output run.jsonl -o device=cuda -o batch_size=256
      odqa retrieve --fuser cross --index-dir idx/bm25 --index-dir idx/dpr --questions dev.jsonl \\
          --output fused.jsonl -o cross.lam=1.1 -o cross.normalization=z-score
      odqa retrieve --fuser rrf --index-dir idx/bm25 --index-dir idx/dpr --questions dev.jsonl --output rrf.jsonl
      odqa retrieve --fuser sequential --index-dir idx/bm25 --retriever dpr -o dpr.model=runs/dpr/best \\
          --questions dev.jsonl --output seq.jsonl      # DPR reranks BM25's top 100, no DPR index needed
    """
    from odqa_core._runs import check_run_output, write_run
    from odqa_core.pipeline import Pipeline
    from odqa_core.spec import PipelineSpec

    if not index_dirs:
        raise UsageError("give the index to search (--index-dir)")
    check_run_output(output, fmt)  # before the (possibly slow) retrieval
    settings = {"retrievers": list(retriever_names), "fuser": fuser, "options": parse_options(options)}
    spec = PipelineSpec.from_settings(
        {**settings, "top_k": top_k, "batch_size": batch_size}, sample=False, index_dirs=index_dirs
    )
    qs = _load_questions(questions)  # a bad questions file fails before the (possibly slow) index loading
    results = Pipeline.from_spec(spec).retrieve(qs)
    write_run(output, qs, results, fmt=fmt)
    click.echo(f"wrote {len(qs)} rankings to {'standard output' if output == '-' else output}", err=True)


@cli.command()
@click.option("--run", "run_path", default=None, help="Run file (jsonl, TREC or npz) from 'odqa retrieve'.")
@click.option(
    "--predictions",
    "predictions_path",
    default=None,
    help="Reader predictions {question_id: answer} (predictions.json of 'odqa run'): EM and F1.",
)
@click.option(
    "--questions",
    required=True,
    help="The questions the run answers (with answers / gold ids); 'sample' or 'sample-train': the bundled "
    "sample's evaluation or training questions.",
)
@click.option(
    "--metric",
    type=click.Choice(METRICS),
    default="korquad",
    show_default=True,
    help="With --predictions: the official script to follow (korquad: character F1; squad: token F1).",
)
@click.option("--corpus", default=None, help="Corpus, for answer-containment hits (or give --index-dir).")
@click.option("--index-dir", default=None, help="Index whose stored documents give the passage texts.")
@click.option("--k", "ks", default=",".join(map(str, DEFAULT_KS)), show_default=True, help="Cut-offs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@corpus_options
def evaluate(
    run_path, predictions_path, questions, metric, corpus, index_dir, ks, as_json, split_words, stride, dedupe
):
    """Evaluate a retrieval run (top-k accuracy, recall@k, MRR@k) or a reader's answers (EM and F1).

    With --run: top-k accuracy (gold document and answer containment), recall@k and MRR@k. With --predictions:
    exact match and F1 as the official KorQuAD 1.0 (default) or SQuAD v1.1 script computes them; questions without
    answers are skipped, questions without a prediction score 0.

    \b
    Examples:
      odqa evaluate --run run.jsonl --questions KorQuAD_v1.0_dev.json --index-dir idx/bm25
      odqa evaluate --run run.jsonl --questions dev.jsonl --k 1,5,20,100 --json
      odqa evaluate --predictions out/predictions.json --questions KorQuAD_v1.0_dev.json
      odqa evaluate --predictions odqa-output/predictions.json --questions sample   # the bundled sample's
      odqa evaluate --predictions out/predictions.json --questions squad_dev.json --metric squad --json
    """
    from odqa_core._runs import read_run
    from odqa_core.evaluation import evaluate_retrieval
    from odqa_core.qa_metrics import evaluate_predictions, load_predictions

    if (run_path is None) == (predictions_path is None):
        raise UsageError(
            "give exactly one of --run (a retrieval run) or --predictions (a reader's answers), not both"
            if run_path is not None
            else "give what to evaluate: --run (a retrieval run) or --predictions (a reader's answers)"
        )
    ctx = click.get_current_context()
    other_mode = ("corpus", "index_dir", "ks", "split_words", "stride", "dedupe") if predictions_path else ("metric",)
    for name in other_mode:
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            flag = "--k" if name == "ks" else "--" + name.replace("_", "-")
            mine, theirs = ("--run", "--predictions") if predictions_path else ("--predictions", "--run")
            raise UsageError(f"{flag} applies to {mine}, not to {theirs}")
    if predictions_path is not None:
        qs = _load_questions(questions)
        qa_report = evaluate_predictions(load_predictions(predictions_path), qs, metric)
        click.echo(json.dumps(qa_report.to_json(), indent=1) if as_json else qa_report.table())
        return
    cutoffs = parse_ks(ks)
    _check_inputs(run_path, corpus)  # before the index's documents or the corpus are loaded
    qs = _load_questions(questions)
    documents = None
    if index_dir is not None:
        from odqa_core.shards import iter_stored_documents

        documents = list(iter_stored_documents(index_dir))
    elif corpus is not None:
        documents = _load_corpus(corpus, split_words, stride, dedupe)
    runs = read_run(run_path, documents)
    missing = [q.id for q in qs if q.id not in runs]
    if missing:
        raise UsageError(
            f"the run has no ranking for {len(missing)} of {len(qs)} questions (first: {missing[0]!r}); "
            "was it made from these questions?"
        )
    report = evaluate_retrieval(qs, [runs[q.id] for q in qs], cutoffs)
    click.echo(json.dumps(report.to_json(), indent=1) if as_json else report.table())


def _pipeline_settings(ctx: click.Context, config_path: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """The pipeline settings of 'odqa run' or 'odqa ask' (:func:`odqa_core.spec.command_line_settings`)."""
    from odqa_core.spec import command_line_settings

    return command_line_settings(ctx, config_path, params)


@cli.command()
@pipeline_options
@click.option(
    "--questions",
    default=None,
    help="Questions (default: the bundled sample's; 'sample-train' names its training questions).",
)
@click.option("--output-dir", default="odqa-output", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write into an --output-dir that holds other files (same-named files are replaced, the rest kept).",
)
@click.option("--k", "ks", default=",".join(map(str, DEFAULT_KS)), show_default=True, help="Evaluation cut-offs.")
@click.option(
    "--metric",
    type=click.Choice(METRICS),
    default="korquad",
    show_default=True,
    help="Reader EM/F1: KorQuAD 1.0 (character F1) or SQuAD v1.1 (token F1).",
)
@click.option(
    "--show",
    "shown",
    type=int,
    default=5,
    show_default=True,
    help="With a reader: questions shown at the end with their gold and predicted answers (0: none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def run(ctx, config_path, **params):
    """Run a whole pipeline: index, retrieve, (fuse), (read), (postprocess), evaluate, write outputs.

    Prints the retrieval metrics, with a reader its EM/F1, and a short table of the first questions with their
    gold and predicted answers (--show). To ask a question of your own: 'odqa ask'.

    \b
    Outputs in --output-dir: run.jsonl (the ranking), summary.json (every option used, defaults resolved;
    retrieval accuracy, EM/F1; seconds spent training models on the way, indexing, retrieving, reading),
    index/<retriever>/ (reusable with 'odqa retrieve' and 'odqa ask --index-dir'), and with a reader
    predictions.json ({question_id: answer}, scoreable by the official KorQuAD/SQuAD scripts) and
    nbest_predictions.json. They replace the previous run's outputs as one unit (odqa-output.json lists them);
    a non-empty directory that is not an odqa output is refused unless --overwrite.

    \b
    On the bundled sample (no --corpus), components that need a model and were given none use the sample's
    demo models (model=sample), trained on the sample's training questions on first use and cached.

    \b
    Examples:
      odqa run --retriever bm25 --fuser cross --reader extractive     # the bundled sample, end to end
      odqa run --retriever bm25 --reader extractive --post clean,strip-particles,vote
      odqa run --retriever bm25 --corpus KorQuAD_v1.0_dev.json --questions KorQuAD_v1.0_dev.json \\
          --reader extractive -o extractive.model=runs/reader/best --top-k 100 --reader-top-k 5
      odqa run --retriever bm25 --fuser cross -o dpr.model=runs/dpr/best -o cross.lam=1.1
      odqa run --retriever bm25 --fuser sequential -o dpr.model=runs/dpr/best -o sequential.candidates=50
      odqa run --reader generative -o generative.mode=fid --retriever bm25 --top-k 5
      odqa run --config pipeline.toml --output-dir out/     # a pipeline file; flags override it
    """
    from odqa_core.spec import PipelineSpec

    settings = _pipeline_settings(ctx, config_path, params)
    output_dir = settings.pop("output_dir")
    _run(PipelineSpec.from_settings(settings), output_dir, params["overwrite"], params["shown"], params["as_json"])


def _run(spec: PipelineSpec, output_dir: str, overwrite: bool, shown: int, as_json: bool) -> None:
    from odqa_core.pipeline import Pipeline, run_pipeline

    data = spec.data
    if shown < 0:
        raise UsageError(f"--show must be 0 or more, got {shown}")
    _check_inputs(data.corpus, _questions_path(data.questions))  # before building or reading a large corpus
    previous_output(output_dir, overwrite=overwrite)  # a directory it may not write is refused before any work
    pipeline = Pipeline.from_spec(spec)
    qs = _load_questions(data.questions)
    documents = _load_corpus(data.corpus, data.split_words, data.stride, data.dedupe)
    inputs = {
        "corpus": data.corpus or "sample",
        "questions": data.questions or "sample",
        "split_words": data.split_words,
        "stride": data.stride,
        "dedupe": data.dedupe,
    }
    summary = run_pipeline(pipeline, documents, qs, output_dir, overwrite=overwrite, inputs=inputs)
    report = summary.pop("report")
    qa_report = summary.pop("qa_report")
    nbest = summary.pop("nbest")
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        click.echo(f"{len(documents)} documents, {len(qs)} questions → {output_dir}")
        click.echo(report.table())
        if qa_report is not None:
            posts = spec.postprocessors
            click.echo(f"reader ({spec.reader}{' + ' + ','.join(posts) if posts else ''}):")
            click.echo(qa_report.table())
        if nbest is not None and shown:
            from odqa_core._answers import answer_table

            table = answer_table(qs, nbest, spec.metric, limit=shown)
            if table:
                click.echo(table)


@cli.command()
@click.argument("questions", nargs=-1, required=True)
@pipeline_options
@INDEX_DIRS_OPTION
@click.option("--passages", type=int, default=3, show_default=True, help="Top passages shown per question.")
@click.option("--json", "as_json", is_flag=True, help="Print the answers as JSON (one object per question).")
@click.pass_context
def ask(ctx, questions, config_path, index_dirs, passages, as_json, **params):
    """Answer questions of your own: the answer, its passage with the answer highlighted, the next-best answers
    with their probabilities and the top passages with their scores.

    The pipeline is given as for 'odqa run' (the same options and --config files); without --index-dir the
    corpus (default: the bundled sample) is indexed first. Without a --reader only the passages are shown.
    The answer is highlighted in colour on a terminal and in [brackets] otherwise (NO_COLOR=1 too).

    \b
    Examples:
      odqa ask "훈민정음이 반포된 해는?" --retriever bm25 --reader extractive    # the bundled sample
      odqa ask "부산의 인구는?" "한강은 어디로 흐르나?" --retriever bm25 --fuser cross --reader extractive
      odqa ask "Where is Hallasan?" --retriever bm25                       # passages only, no reader
      odqa ask "질문" --index-dir odqa-output/index/bm25 --reader extractive -o extractive.model=runs/reader/best
      odqa ask "질문" --config pipeline.toml --json
    """
    from odqa_core._answers import answer_json, format_answer
    from odqa_core.types import Question

    settings = _pipeline_settings(ctx, config_path, params)
    if passages < 0:
        raise UsageError(f"--passages must be 0 or more, got {passages}")
    blank = [i for i, text in enumerate(questions, 1) if not text.strip()]
    if blank:
        raise UsageError(f"question {blank[0]} is empty; give the question's text")
    qs = [Question(f"q{i}", " ".join(text.split())) for i, text in enumerate(questions, 1)]
    pipeline = _ask_pipeline(settings, index_dirs)
    results = pipeline.retrieve(qs)
    nbest = pipeline.read(qs, results) if pipeline.reader is not None else None
    if as_json:
        rows = [answer_json(q, nbest[i] if nbest else None, results, i, passages) for i, q in enumerate(qs)]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    blocks = [
        format_answer(q, nbest[i] if nbest else None, results, i, color=color, passages=passages)
        for i, q in enumerate(qs)
    ]
    click.echo("\n\n".join(blocks), color=color)


def _ask_pipeline(settings: dict[str, Any], index_dirs: tuple[str, ...]) -> Pipeline:
    """The pipeline 'odqa ask' answers with, ready to retrieve: its corpus indexed now, or its indexes opened.

    With --index-dir the indexes' manifests name the retrievers; on indexes of the bundled sample the fuser and the
    reader get the sample's demo defaults (model=sample) where not given, as 'odqa run' gives them."""
    from odqa_core.pipeline import Pipeline
    from odqa_core.spec import PipelineSpec

    spec = PipelineSpec.from_settings(settings, index_dirs=index_dirs)
    if not index_dirs:
        _check_inputs(spec.data.corpus)
    pipeline = Pipeline.from_spec(spec)
    if pipeline.reader is not None:  # a missing model fails now, before the corpus is indexed
        pipeline.reader.warm_up()
    if not index_dirs:
        data = spec.data
        pipeline.index(_load_corpus(data.corpus, data.split_words, data.stride, data.dedupe))
    return pipeline


@cli.group()
def train() -> None:
    """Train a model. Plugins add the subcommands (odqa-dense: 'odqa train dpr').

    \b
    Examples:
      odqa train dpr --corpus corpus.jsonl --questions train.jsonl --dev-questions dev.jsonl --output runs/dpr
    """


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_command(as_json):
    """List installed plugins, their distributions and the components they register, and the broken ones with
    their errors (skipped by every other command, with one warning line).

    \b
    Environment: ODQA_LOAD_PLUGINS=a,b loads only those plugins; ODQA_BLOCK_PLUGINS=a,b skips them;
    ODQA_STRICT_PLUGINS=1 makes a broken plugin an error for every command.
    """
    rows = plugins.list_plugins()
    for row in rows:
        if row["error"] is None and _plugin_commands.get(row["name"]):
            row["commands"] = [f"odqa {path}" for path in _plugin_commands[row["name"]]]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plugins installed (pip install odqa-sparse, or see the README)")
    for row in rows:
        version = f" {row['version']}" if row["version"] else ""
        click.echo(f"{row['name']} ({row['distribution'] or 'not a distribution'}{version})")
        if row["error"] is not None:
            click.echo(f"  BROKEN, skipped: {row['error']}")
        for kind, names in row["components"].items():
            click.echo(f"  {kind}: {', '.join(names)}")
        if row.get("commands"):
            click.echo(f"  commands: {', '.join(row['commands'])}")
        for conflict in row["conflicts"]:
            others = ", ".join(repr(p) for p in dict.fromkeys(conflict["plugins"]) if p != row["name"])
            click.echo(
                f"  conflict: {conflict['kind']} {conflict['name']!r} is also registered by plugin {others} "
                "(an error when used)"
            )
    broken = [row["name"] for row in rows if row["error"] is not None]
    if broken:
        click.echo(f"skip the broken ones with ODQA_BLOCK_PLUGINS={','.join(broken)}")


def _command_groups(group: click.Group) -> list[tuple[click.Group, dict[str, click.Command]]]:
    """``group`` and every group under it with a copy of its commands, to undo a plugin's half-done registration."""
    saved = [(group, dict(group.commands))]
    for command in group.commands.values():
        if isinstance(command, click.Group):
            saved.extend(_command_groups(command))
    return saved


#: The commands each plugin added (``odqa plugins`` lists them): ``"train dpr"`` for one under ``odqa train``.
_plugin_commands: dict[str, list[str]] = {}


def _command_paths(saved: list[tuple[click.Group, dict[str, click.Command]]]) -> set[str]:
    paths = set()
    for group, commands in saved:
        prefix = "" if group is cli else f"{group.name} "
        paths.update(prefix + name for name in commands)
    return paths


def _register_plugin_commands() -> None:
    """Add the plugins' commands, one plugin at a time: one that raises loses whatever it added and is reported
    like any broken plugin, the others keep theirs."""
    try:
        with plugins.failure_reporter(_startup_plugin_failures.append):
            for name, register_commands in plugins.command_hooks():
                saved = _command_groups(cli)
                try:
                    register_commands(cli=cli)
                    added = _command_paths(_command_groups(cli)) - _command_paths(saved)
                    _plugin_commands[name] = sorted(added)
                except (Exception, SystemExit) as exc:
                    for group, commands in saved:
                        group.commands.clear()
                        group.commands.update(commands)
                    plugins.mark_broken(name, f"register_commands raised {type(exc).__name__}: {exc}")
    except OdqaError:
        pass  # ODQA_STRICT_PLUGINS: parse_args turns the broken plugin into a one-line error before any command


_register_plugin_commands()
