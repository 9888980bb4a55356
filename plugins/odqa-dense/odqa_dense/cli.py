"""``odqa train dpr``: the command-line face of :func:`odqa_dense.training.train_dpr`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
from odqa_transformers.cli import echo_best, one_model_options, run_options, training_data
from odqa_transformers.encoder_checkpoint import ENCODERS, POOLINGS

from odqa_core.options import parse_ks, parse_options


@click.command(name="dpr")
@click.option("--corpus", default=None, help="Passages to retrieve from (default: the bundled sample).")
@click.option(
    "--questions",
    default=None,
    help="Training questions with answers / gold ids (default: the sample's training set).",
)
@click.option("--dev-questions", default=None, help="Questions that select the best epoch (default: 10% held out).")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Directory for checkpoints + report.")
@click.option("--model", default=None, help="Start from this HF encoder / odqa checkpoint (path or id).")
@click.option(
    "--bootstrap",
    "bootstrap_size",
    default="tiny",
    show_default=True,
    help="Without --model: train a tokenizer on the corpus and a BERT of this size (micro, tiny, mini, "
    "small, medium, base).",
)
@click.option("--vocab-size", type=int, default=16000, show_default=True, help="Bootstrap WordPiece vocabulary size.")
@click.option(
    "--encoders",
    type=click.Choice(ENCODERS),
    default="shared",
    show_default=True,
    help="One encoder for questions and passages, two, or one plus a linear head per side (identity at the start).",
)
@click.option(
    "--pooling",
    type=click.Choice(POOLINGS),
    default=None,
    help="Default: cls with --model (DPR), mean for a bootstrap model (learns faster from scratch).",
)
@click.option("--title/--no-title", "include_title", default=True, show_default=True, help="Encode title + passage.")
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate (default 2e-5 pretrained, 1e-4 bootstrap).")
@click.option(
    "--head-lr",
    type=float,
    default=None,
    help="With --encoders shared-heads: peak learning rate of the two heads, ICT included (default: the encoder's).",
)
@click.option(
    "--warmup", type=float, default=0.1, show_default=True, help="Warmup: fraction of steps, or steps if ≥1."
)
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option(
    "--batch-size", type=int, default=16, show_default=True, help="Questions per step (in-batch negatives)."
)
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Gradient accumulation steps.")
@click.option("--hard-negatives", type=int, default=1, show_default=True, help="Hard negatives per question.")
@click.option("--negative-retriever", default="bm25", show_default=True, help="Retriever that mines hard negatives.")
@click.option(
    "--negative-option",
    "negative_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option of the negative retriever (e.g. analyzer=kiwi).",
)
@click.option("--negative-depth", type=int, default=30, show_default=True, help="Candidates searched per question.")
@click.option("--query-max-length", type=int, default=64, show_default=True)
@click.option("--passage-max-length", type=int, default=256, show_default=True)
@run_options
@click.option("--eval-k", "eval_ks", default="1,5,20,100", show_default=True, help="Top-k cut-offs evaluated.")
@click.option("--select", default="acc@20", show_default=True, help="Dev metric that picks the best epoch.")
@click.option(
    "--hit",
    type=click.Choice(["auto", "answer", "doc"]),
    default="auto",
    show_default=True,
    help="Hit definition for --select (auto: answer containment when answers exist).",
)
@click.option("--folds", type=int, default=1, show_default=True, help="K-fold training over the training questions.")
@click.option(
    "--keep-folds",
    type=click.Choice(["best", "all"]),
    default="best",
    show_default=True,
    help="Keep the best fold's checkpoints only, or every fold's.",
)
@one_model_options
@click.option(
    "--ict-epochs",
    type=int,
    default=None,
    help="Inverse Cloze Task epochs over the corpus first (self-supervised). Default: 3 for a bootstrap "
    "model, 0 with --model.",
)
@click.option("--ict-lr", type=float, default=None, help="ICT learning rate (default 5e-4 bootstrap, else --lr).")
@click.option("--ict-samples", type=int, default=2, show_default=True, help="ICT pseudo-questions per passage.")
@click.option("--resume", is_flag=True, help="Continue a stopped run in --output from its last epoch.")
@click.option("--split-words", type=int, default=None, help="Split corpus documents into passages of N words.")
@click.option("--stride", type=int, default=None, help="Words between passage starts (default: N).")
@click.option(
    "--nproc",
    type=int,
    default=None,
    help="Train with N local processes under torch DDP (gloo on CPU, nccl on GPU); --batch-size is per process, "
    "in-batch negatives are gathered across them. For several machines use torchrun -m odqa_dense instead.",
)
def train_dpr(
    corpus, questions, dev_questions, output, resume, negative_options, eval_ks, split_words, stride, nproc, **opts
):
    """Train a DPR bi-encoder: in-batch + hard negatives, top-k evaluation after every epoch, best epoch kept.

    \b
    Writes OUTPUT/report.json, OUTPUT/best/ (use with 'odqa index --retriever dpr --model OUTPUT/best')
    and OUTPUT/last/ (resumable); with --keep-epochs also OUTPUT/epoch-1 ... epoch-N; with --folds K
    also OUTPUT/fold-1 ... fold-K (with --fold N only fold N, laid out as a one-fold run in OUTPUT).

    \b
    Examples:
      odqa train dpr --output runs/dpr-sample --epochs 5           # bundled sample, bootstrap tiny BERT
      odqa train dpr --corpus wiki.json --questions train.json --dev-questions dev.json \\
          --model klue/bert-base --epochs 3 --batch-size 32 --hard-negatives 2 --output runs/dpr
      odqa train dpr --corpus wiki.json --questions train.json --folds 5 --epochs 2 --output runs/dpr-5fold
      odqa train dpr ... --folds 5 --fold 2 --keep-epochs --output runs/dpr-fold2   # one fold, every epoch
      odqa train dpr ... --output runs/dpr --resume                  # continue after an interruption
      odqa train dpr ... --nproc 2 --batch-size 8 --output runs/dpr  # 2 processes, 16 questions per step
      torchrun --nnodes 2 --nproc-per-node 4 ... -m odqa_dense --output runs/dpr ...  # several machines
    """
    from odqa_dense.training import TrainConfig
    from odqa_dense.training import train_dpr as run_training

    config = TrainConfig(
        **opts, negative_options=parse_options(negative_options), eval_ks=parse_ks(eval_ks, "--eval-k")
    ).validate()
    if nproc is not None:
        from odqa_dense import launch

        launch.check_nproc(nproc, config.device)
        if nproc > 1:
            spec = {
                "config": dataclasses.asdict(config),
                "corpus": corpus,
                "questions": questions,
                "dev_questions": dev_questions,
                "split_words": split_words,
                "stride": stride,
                "output": output,
                "resume": resume,
            }
            launch.launch(spec, nproc)
            report = json.loads((Path(output) / "report.json").read_text())
            echo_best(report, output, config.select, ".4f")
            return
    documents, train_qs, dev_qs = training_data(corpus, questions, dev_questions, split_words, stride)
    report = run_training(documents, train_qs, config, output, dev_questions=dev_qs, resume=resume)
    from odqa_dense import distributed

    if distributed.is_main():  # under torchrun the other ranks have no report of their own
        echo_best(report, output, config.select, ".4f")
