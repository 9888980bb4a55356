"""What the server answers with: a built pipeline, asked a batch of questions at a time.

:func:`build_pipeline` makes the pipeline as ``odqa ask`` does — the components of the pipeline settings, the
reader's model loaded, the corpus indexed (or stored indexes opened) — once, at start. :class:`Engine` answers a
batch of questions that share their settings with one batched retrieve and one batched read (the pipeline's fast
paths), and gives each answer in the form ``odqa run`` writes (``predictions.json``, ``nbest_predictions.json``),
so that an answer over HTTP is the run's prediction for the same question and settings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odqa_core import __version__, data, plugins
from odqa_core.pipeline import Pipeline, nbest_json, retrieve
from odqa_core.spec import PipelineSpec
from odqa_core.types import Question, RankedResults


def build_pipeline(settings: Mapping[str, Any], index_dirs: Sequence[str | Path] = ()) -> Pipeline:
    """The pipeline of ``settings`` (a pipeline file's form), ready to answer: its reader's model loaded (a missing
    model fails here, before the corpus is indexed), then its corpus (default: the bundled sample) indexed, or with
    ``index_dirs`` its stored indexes opened. Bad settings raise the usual one-line :class:`~odqa_core.OdqaError`."""
    spec = PipelineSpec.from_settings(settings, index_dirs=index_dirs)
    corpus = spec.data
    if not index_dirs and corpus.corpus is not None:
        data.check_input(corpus.corpus)  # before building anything
    pipeline = Pipeline.from_spec(spec)
    if pipeline.reader is not None:
        pipeline.reader.warm_up()
    if not index_dirs:
        documents = data.load_corpus(
            corpus.corpus or data.sample_corpus_path(),
            split_words=corpus.split_words,
            stride=corpus.stride,
            dedupe=corpus.dedupe,
        )
        pipeline.index(documents)
    return pipeline


@dataclass(frozen=True)
class Settings:
    """A request's settings: questions with equal settings are answered in one batch."""

    top_k: int
    reader_top_k: int
    n_best: int
    read: bool  # False: retrieve only (/v1/retrieve, or a pipeline without a reader)


@dataclass
class Result:
    """One question's answer: ``nbest`` None when it was not read."""

    question: str
    nbest: list[dict[str, Any]] | None
    passages: list[dict[str, Any]]
    retrieve_ms: float
    read_ms: float


class Engine:
    """Answers batches of questions with a built :class:`~odqa_core.pipeline.Pipeline`. Not thread-safe: one
    batch at a time (the server runs them on one worker thread)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        spec = pipeline.spec
        self.has_reader = pipeline.reader is not None
        self.defaults = Settings(spec.top_k, min(spec.reader_top_k, spec.top_k), spec.n_best, self.has_reader)

    def settings(
        self, top_k: int | None = None, reader_top_k: int | None = None, n_best: int | None = None, read: bool = True
    ) -> Settings:
        """A request's settings, the pipeline's where it gives none. A ``top_k`` below ``reader_top_k`` lowers
        it, as in ``odqa run`` (the reader reads the best of the passages retrieved)."""
        top_k = self.defaults.top_k if top_k is None else top_k
        reader_top_k = self.defaults.reader_top_k if reader_top_k is None else reader_top_k
        n_best = self.defaults.n_best if n_best is None else n_best
        return Settings(top_k, min(reader_top_k, top_k), n_best, read and self.has_reader)

    def answer(self, texts: Sequence[str], settings: Settings) -> list[Result]:
        """Answer ``texts`` together: one batched retrieve, and with ``settings.read`` one batched read."""
        questions = [Question(f"q{i}", text) for i, text in enumerate(texts)]
        pipeline = self.pipeline
        started = time.perf_counter()
        results = retrieve(
            pipeline.retrievers, pipeline.fuser, questions, settings.top_k, pipeline.spec.batch_size, bar=False
        )
        retrieved = time.perf_counter()
        nbest = None
        if settings.read:
            nbest = pipeline.read(questions, results, reader_top_k=settings.reader_top_k, n_best=settings.n_best)
        read = time.perf_counter()
        shown = settings.reader_top_k if settings.read else settings.top_k
        return [
            Result(
                question=q.text,
                nbest=nbest_json(nbest[row]) if nbest is not None else None,
                passages=passages(results, row, shown),
                retrieve_ms=(retrieved - started) * 1000,
                read_ms=(read - retrieved) * 1000,
            )
            for row, q in enumerate(questions)
        ]

    def describe(self) -> dict[str, Any]:
        """The resolved pipeline: each component's options (defaults filled in), the settings, the versions."""
        pipeline = self.pipeline
        spec = pipeline.spec
        stages = [*pipeline.retrievers, pipeline.fuser, pipeline.reader, *pipeline.postprocessors]
        return {
            "retrievers": list(spec.retrievers),
            "fuser": spec.fuser,
            "reader": spec.reader,
            "postprocessors": list(spec.postprocessors),
            "components": {c.name: c.resolved_config() for c in stages if c is not None},
            "settings": {
                "top_k": self.defaults.top_k,
                "reader_top_k": self.defaults.reader_top_k if self.has_reader else None,
                "n_best": self.defaults.n_best if self.has_reader else None,
                "batch_size": spec.batch_size,
            },
            "indexes": dict(spec.data.indexes),
            "corpus": None if spec.data.indexes else (spec.data.corpus or "sample"),
            "n_documents": len(pipeline.retrievers[0].documents) if pipeline.retrievers[0].is_indexed else None,
            "versions": versions(),
        }


def passages(results: RankedResults, row: int, limit: int) -> list[dict[str, Any]]:
    """The question's best ``limit`` passages with their scores (a short ranking's ``-1`` padding left out)."""
    found = []
    for index, score in zip(results.indices[row, :limit].tolist(), results.scores[row, :limit].tolist()):
        if index >= 0:
            doc = results.documents[index]
            found.append({"doc_id": doc.id, "title": doc.title, "text": doc.text, "score": float(score)})
    return found


def versions() -> dict[str, str]:
    """odqa's version and each loaded plugin distribution's."""
    found = {"odqa": __version__}
    for row in plugins.list_plugins():
        if row["distribution"] and row["version"] and row["error"] is None:
            found[row["distribution"]] = row["version"]
    return found
