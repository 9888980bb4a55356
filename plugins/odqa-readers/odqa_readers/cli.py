"""``odqa train reader``: the command-line face of :func:`odqa_readers.training.train_reader`."""

from __future__ import annotations

import click
from odqa_transformers.cli import echo_best, one_model_options, run_options, training_data

from odqa_core.options import parse_options


@click.command(name="reader")
@click.option("--reader", "reader", default="extractive", show_default=True, help="Reader: extractive, generative.")
@click.option("--corpus", default=None, help="Passages (default: the bundled sample).")
@click.option(
    "--questions", default=None, help="Training questions with answers (default: the sample's training set)."
)
@click.option(
    "--dev-questions", default=None, help="Questions whose EM/F1 select the best epoch (default: 10% held out)."
)
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Directory for checkpoints + report.")
@click.option(
    "--model",
    default=None,
    help="Start from this HF model / reader checkpoint (path or id), or a DPR checkpoint's encoder (extractive); "
    "'lexical': train the extractive reader's lexical span scorer instead (no pretrained model, seconds on a CPU).",
)
@click.option(
    "--bootstrap",
    "bootstrap_size",
    default="tiny",
    show_default=True,
    help="Without --model: a tokenizer trained on the corpus and a BERT (extractive) or T5 (generative) of this "
    "size (micro, tiny, mini, small, medium, base).",
)
@click.option("--vocab-size", type=int, default=16000, show_default=True, help="Bootstrap WordPiece vocabulary size.")
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate (default 5e-5 pretrained, 5e-4 bootstrap).")
@click.option("--warmup", type=float, default=0.1, show_default=True, help="Fraction of steps, or steps if ≥1.")
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True, help="Features (windows, chunks) per step.")
@click.option("--grad-accum", type=int, default=1, show_default=True)
@run_options
@click.option("--metric", type=click.Choice(["korquad", "squad"]), default="korquad", show_default=True)
@click.option("--select", type=click.Choice(["f1", "exact_match"]), default="f1", show_default=True)
@click.option("--folds", type=int, default=1, show_default=True, help="K-fold training over the training questions.")
@click.option("--keep-folds", type=click.Choice(["best", "all"]), default="best", show_default=True)
@one_model_options
@click.option(
    "--retrieved",
    type=int,
    default=0,
    show_default=True,
    help="Add each training question's top N retrieved passages (no-answer when they lack the answer).",
)
@click.option(
    "--retriever",
    "retrievers",
    multiple=True,
    help="Retriever for --retrieved (repeatable; default bm25). With --fuser, the fuser's defaults fill the rest.",
)
@click.option("--fuser", default=None, help="Fuser for --retrieved (cross, rrf, sequential).")
@click.option(
    "--retrieval-option",
    "retrieval_options",
    multiple=True,
    metavar="[STAGE.]KEY=VALUE",
    help="Option of the retrieval pipeline (dpr.model=runs/dpr/best, cross.lam=1.1).",
)
@click.option(
    "--cloze",
    type=int,
    default=0,
    show_default=True,
    help="Add N synthetic cloze questions per corpus passage (a span blanked out of a sentence): helps a "
    "bootstrap reader learn from few labelled questions.",
)
@click.option(
    "--strip-answer-particles",
    is_flag=True,
    help="Trim each training answer span that ends in a Korean particle (세종대왕이 → 세종대왕), as the "
    "strip-particles postprocessor does to predictions.",
)
@click.option(
    "--lexical-option",
    "lexical_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --model lexical: a setting of the lexical span scorer (l2=1.0, max_iter=150, "
    "features=span,cross,match,ngram,kiwi,align,passage, max_words=4, hash_bits=20).",
)
@click.option(
    "-o",
    "--option",
    "reader_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Reader option (max_length=384, doc_stride=128, mode=fid, ...).",
)
@click.option("--split-words", type=int, default=None, help="Split corpus documents into passages of N words.")
@click.option("--stride", type=int, default=None, help="Words between passage starts (default: N).")
def train_reader(
    corpus,
    questions,
    dev_questions,
    output,
    retrievers,
    retrieval_options,
    reader_options,
    lexical_options,
    split_words,
    stride,
    **opts,
):
    """Train a reader: span (extractive) or seq2seq (generative), EM/F1 on the dev questions after every epoch.

    \b
    Writes OUTPUT/report.json and OUTPUT/best/ (use with 'odqa run --reader extractive
    -o extractive.model=OUTPUT/best'); with --keep-epochs also OUTPUT/epoch-1 ... epoch-N; with --folds K
    also OUTPUT/fold-1 ... fold-K (with --fold N only fold N, laid out as a one-fold run in OUTPUT).

    \b
    Examples:
      odqa train reader --output runs/reader-sample                # bundled sample, bootstrap tiny BERT
      odqa train reader --corpus KorQuAD_v1.0_dev.json --questions train.json --dev-questions dev.json \\
          --model klue/bert-base --epochs 2 --batch-size 32 --output runs/reader
      odqa train reader ... --retrieved 5 --retriever bm25 --output runs/reader-bm25   # + retrieved passages
      odqa train reader ... --retrieved 5 --fuser cross --retrieval-option dpr.model=runs/dpr/best --output ...
      odqa train reader --reader generative -o mode=fid --bootstrap mini --output runs/fid
      odqa train reader ... --folds 5 --epochs 2 --output runs/reader-5fold
      odqa train reader ... --folds 5 --fold 2 --keep-epochs --output runs/reader-fold2   # one fold, every epoch
      odqa train reader --model lexical --output runs/lexical      # lexical span scorer: no network, seconds
      odqa run --retriever bm25 --reader extractive -o extractive.model=runs/lexical/best
    """
    from odqa_readers.training import ReaderTrainConfig
    from odqa_readers.training import train_reader as run_training

    config = ReaderTrainConfig(
        **opts,
        reader_options=parse_options(reader_options),
        lexical_options=parse_options(lexical_options),
        retrievers=list(retrievers) or ["bm25"],
        retrieval_options=parse_options(retrieval_options),
    ).validate()
    documents, train_qs, dev_qs = training_data(corpus, questions, dev_questions, split_words, stride)
    report = run_training(documents, train_qs, config, output, dev_questions=dev_qs)
    echo_best(report, output, config.select, ".2f")
