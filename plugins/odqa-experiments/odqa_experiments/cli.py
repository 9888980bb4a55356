"""``odqa tune`` and ``odqa sweep``. The work is imported inside the commands, so ``odqa --help`` stays light."""

from __future__ import annotations

import json

import click

from odqa_core.errors import UsageError
from odqa_core.options import STAGE_OPTION


@click.command()
@click.option("--fuser", required=True, help="The fuser to tune (cross, rrf, sequential, ...).")
@click.option("--index-dir", "index_dirs", multiple=True, help="A retriever's index (repeat for each retriever).")
@click.option("--retriever", "retriever_names", multiple=True, help="A retriever name (with --corpus, or unindexed).")
@click.option("--corpus", default=None, help="Index the --retriever's over this corpus in memory instead.")
@click.option("--questions", required=True, help="Dev questions with answers or gold document ids.")
@click.option(
    "--grid",
    "grid_pairs",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="An option of the fuser and the values to try (repeat for more axes; a JSON array also works).",
)
@click.option("--metric", default="acc@20", show_default=True, help="What to maximise: acc@K, mrr@K or recall@K.")
@click.option("--hit", default=None, help="doc (gold document) or answer (answer string); default doc when known.")
@click.option("--top-k", type=int, default=100, show_default=True, help="Fused hits per question.")
@click.option("--k", "ks", default="1,5,10,20,100", show_default=True, help="Cut-offs reported for every cell.")
@click.option("--batch-size", type=int, default=1024, show_default=True, help="Questions per fuse call.")
@click.option("--output", default=None, type=click.Path(dir_okay=False), help="Write every cell as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@STAGE_OPTION
@click.option("--split-words", type=int, default=None, help="Split documents into passages of N words.")
@click.option("--stride", type=int, default=None, help="Words between passage starts (default: N, no overlap).")
@click.option("--dedupe/--no-dedupe", default=True, show_default=True, help="Merge documents with identical text.")
def tune(
    fuser,
    index_dirs,
    retriever_names,
    corpus,
    questions,
    grid_pairs,
    metric,
    hit,
    top_k,
    ks,
    batch_size,
    output,
    as_json,
    options,
    split_words,
    stride,
    dedupe,
):
    """Evaluate a grid of a fuser's options (λ, weights, normalization, ...) on dev questions; report the best.

    Each cell runs the real fuser; the retrievers' searches and scores are computed once and shared by the cells.
    Fixed options go in -o (cross.mode=union), tuned ones in --grid (lam=0.5,1,2); they may not overlap.

    \b
    Examples:
      odqa tune --fuser cross --index-dir idx/bm25 --index-dir idx/dpr --questions dev.jsonl \\
          --grid lam=0.1,0.5,1,1.1,2,5 --grid normalization=none,min-max,z-score
      odqa tune --fuser rrf --index-dir idx/bm25 --index-dir idx/dpr --questions dev.jsonl \\
          --grid rrf_k=10,30,60,100 --metric mrr@10 --hit answer --output tune.json
      odqa tune --fuser cross --retriever bm25 --retriever dpr --corpus corpus.jsonl --questions dev.jsonl \\
          -o dpr.model=runs/dpr/best --grid 'weights=[{"dpr": 1}, {"dpr": 2}, {"dpr": 4}]'
    """
    from odqa_core import data
    from odqa_core.options import parse_ks, parse_options
    from odqa_core.outputs import atomic_write_text
    from odqa_core.pipeline import Pipeline
    from odqa_core.spec import PipelineSpec
    from odqa_experiments.tuning import parse_grid, tune_fuser

    grid = parse_grid(grid_pairs)
    cutoffs = parse_ks(ks)
    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {top_k}")
    parsed = parse_options(options)
    if corpus is not None and index_dirs:
        raise UsageError("give either --corpus (indexed in memory) or --index-dir, not both")
    if corpus is None and not index_dirs:
        raise UsageError("give the retrievers' indexes (--index-dir) or a --corpus to index")
    if corpus is not None:
        data.check_input(corpus)
    qs = data.load_questions(data.questions_source(questions))  # a bad file fails before indexes load or build
    settings = {"retrievers": list(retriever_names), "fuser": fuser, "options": parsed, "top_k": top_k}
    spec = PipelineSpec.from_settings(settings, sample=False, index_dirs=index_dirs)
    pipeline = Pipeline.from_spec(spec)
    if corpus is not None:
        pipeline.index(data.load_corpus(corpus, split_words=split_words, stride=stride, dedupe=dedupe))
    report = tune_fuser(
        fuser,
        spec.options_of(fuser),
        grid,
        pipeline.retrievers,
        qs,
        top_k=top_k,
        ks=cutoffs,
        metric=metric,
        hit=hit,
        batch_size=batch_size,
    )
    if output is not None:
        atomic_write_text(output, json.dumps(report.to_json(), ensure_ascii=False, indent=1))
    click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=1) if as_json else report.table())


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Grid file (TOML): [sweep], [pipeline], [train.<component>], [axes], [variants] tables.",
)
@click.option(
    "--output-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Where results go (default: the grid's sweep.output_dir, else sweep-<grid name> in the current directory).",
)
@click.option("--dry-run", is_flag=True, help="List the cells, which are done and what they train; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the finished rows (or with --dry-run the plan) as JSON.")
def sweep(config_path, output_dir, dry_run, as_json):
    """Run a grid of pipeline and training settings; one row per cell in results.csv, with tables and plots.

    Each cell trains the models it needs (reused across cells and sweeps with identical settings), indexes
    (reused the same way), retrieves, reads and evaluates, then appends its row. Running the same grid again
    continues an interrupted sweep: finished cells are never recomputed.

    \b
    Outputs in the output directory: results.csv (every finished cell), results.md (ranked table, best
    cell, fold spread), plot-topk.png, plot-<axis>.png (e.g. accuracy against epochs), plot-folds.png,
    best.toml (the best cell as a pipeline file: odqa run --config best.toml), cells/<key>/ (each cell's
    run.jsonl, summary.json, predictions), cache/ (trained models and indexes).

    \b
    Examples:
      odqa sweep --config benchmarks/grids/sample_dpr_cross.toml     # the bundled sample, under a minute
      odqa sweep --config benchmarks/grids/korquad_dpr_sizes_epochs.toml
      odqa sweep --config grid.toml --dry-run           # the cells, done or not, and what they will train
      odqa sweep --config grid.toml --output-dir sweeps/try2

    \b
    A grid file:
      [pipeline]
      retriever = "bm25"
      fuser = "cross"
      [train.dpr]
      epochs = 2
      [axes]
      "train.dpr.bootstrap_size" = ["micro", "tiny"]
      "pipeline.options.cross.lam" = [0.5, 1.1, 2.0]
    """
    from odqa_experiments.grid import read_grid
    from odqa_experiments.reports import row_label
    from odqa_experiments.runner import SweepRunner

    grid = read_grid(config_path, output_dir)
    runner = SweepRunner(grid)
    if dry_run:
        plan = runner.describe()
        if as_json:
            click.echo(json.dumps(plan, ensure_ascii=False, indent=1))
            return
        todo = [c for c in plan if not c["done"]]
        click.echo(f"{len(plan)} cells, {len(plan) - len(todo)} done, {len(todo)} to run → {grid.output_dir}")
        for cell in runner.cells:
            entry = plan[cell.index - 1]
            models = "; ".join(
                f"{m['trainer']} {'cached' if m['cached'] else 'to train'}"
                + (f", epoch {m['epoch']}" if m["epoch"] is not None else "")
                for m in entry["models"]
            )
            status = "done" if entry["done"] else "todo"
            click.echo(f"  {cell.index:>3}  {status}  {cell.label()}" + (f"  [{models}]" if models else ""))
        return
    rows = runner.run()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    metric = runner.metric()
    best = runner.best(rows)
    click.echo(f"{len(rows)} cells → {grid.output_dir}/results.csv, results.md")
    if best is not None:
        click.echo(f"best: {row_label(best, list(grid.dimensions))} with {metric} = {best[metric]:.4f} (best.toml)")
