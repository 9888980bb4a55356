"""The runner: corpus → index → questions → ranked results → (fusion) → (reader → postprocessors) → outputs.

Everything that can fail because of user input (files, names, options) is checked before anything is computed or
written, and each output file is written atomically, so a failed run never leaves half a file behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core import plugins
from odqa_core._runs import nbest_entries, nbest_predictions_json_text, predictions_json_text, write_run
from odqa_core.errors import UsageError
from odqa_core.evaluation import RetrievalReport, evaluate_retrieval, hits_from_results
from odqa_core.interfaces import Fuser, Postprocessor, Reader, Retriever
from odqa_core.outputs import atomic_write_text, write_output_dir
from odqa_core.progress import StageTimer, progress
from odqa_core.qa_metrics import evaluate_predictions
from odqa_core.spec import PipelineSpec
from odqa_core.storage import open_store
from odqa_core.types import Document, Prediction, Question, RankedResults


def load_retriever(index_dir: str | Path, options: Mapping[str, Any] | None = None) -> Retriever:
    """Open any stored retriever: the manifest names the retriever, the registry supplies its class.

    ``options`` override the retriever's runtime options (device, batch size, search effort). A sharded index
    (``odqa index --shards N``) opens as one :class:`~odqa_core.shards.ShardedRetriever` over its shards.
    """
    from odqa_core import shards

    if shards.is_sharded(index_dir):
        return shards.ShardedRetriever.load(index_dir, options)
    manifest = open_store(index_dir, kind="retriever", verify=False).manifest
    cls = plugins.get_component_class("retriever", manifest["name"])
    return cls.load(index_dir, options)


def search_in_batches(
    search: Any, questions: Sequence[Question], k: int, batch_size: int = 1024, desc: str = "retrieve"
) -> RankedResults:
    """Call ``search(texts, k)`` on chunks of questions (bounded memory, a progress bar unless ``desc`` is empty)
    and stack the results."""
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    texts = [q.text for q in questions]
    parts: list[RankedResults] = []
    with progress(len(texts), desc, "q", disable=not desc) as bar:
        for start in range(0, len(texts), batch_size):
            parts.append(search(texts[start : start + batch_size], k))
            bar.update(len(parts[-1]))
    if not parts:
        return search([], k)
    return RankedResults(
        np.concatenate([p.indices for p in parts]), np.concatenate([p.scores for p in parts]), parts[0].documents
    )


def retrieve(
    retrievers: Sequence[Retriever],
    fuser: Fuser | None,
    questions: Sequence[Question],
    k: int,
    batch_size: int = 1024,
    bar: bool = True,
) -> RankedResults:
    """Every question's top ``k``: from the one retriever, or fused from all of them; in batches of questions."""
    if fuser is None:
        return search_in_batches(retrievers[0].search, questions, k, batch_size, "retrieve" if bar else "")
    fuser.warm_up()
    fuse = fuser.fuse
    return search_in_batches(
        lambda texts, n: fuse(retrievers, texts, n), questions, k, batch_size, "fuse" if bar else ""
    )


@dataclass
class Pipeline:
    """Built components of a run. Create with :meth:`from_spec`."""

    spec: PipelineSpec
    retrievers: list[Retriever]
    fuser: Fuser | None
    reader: Reader | None
    postprocessors: list[Postprocessor]

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> Pipeline:
        """The pipeline of ``spec``, whose names and options were checked when it was made: its components
        (:meth:`PipelineSpec.create_components <odqa_core.spec.PipelineSpec.create_components>`; the fuser that
        chose the retrievers among them), and the retrievers of stored indexes opened, warmed up and checked
        against the fuser."""
        created = spec.create_components()
        indexes = dict(spec.data.indexes)
        retrievers = [
            load_retriever(indexes[name], spec.options_of(name)) if name in indexes else created["retriever", name]
            for name in spec.retrievers
        ]
        fuser = created["fuser", spec.fuser] if spec.fuser else None
        reader = created["reader", spec.reader] if spec.reader else None
        posts = [created["postprocessor", name] for name in spec.postprocessors]
        if indexes:  # opened from stored indexes: ready to search now, as indexing would leave them
            for retriever in retrievers:
                retriever.warm_up()
            if fuser is not None:
                fuser.check_ready(retrievers)
        return cls(spec, retrievers, fuser, reader, posts)

    def index(self, documents: Sequence[Document]) -> None:
        if self.fuser is not None:
            self.fuser.index(self.retrievers, documents)
            self.fuser.check_ready(self.retrievers)
            return
        for retriever in self.retrievers:
            retriever.warm_up()
            retriever.index(documents)

    def retrieve(self, questions: Sequence[Question]) -> RankedResults:
        return retrieve(self.retrievers, self.fuser, questions, self.spec.top_k, self.spec.batch_size)

    def read(
        self,
        questions: Sequence[Question],
        results: RankedResults,
        *,
        reader_top_k: int | None = None,
        n_best: int | None = None,
    ) -> list[list[Prediction]]:
        """Each question's n-best answers from its best ``reader_top_k`` passages, postprocessed. ``reader_top_k``
        and ``n_best`` default to the spec's; a served request may set its own (odqa-serve)."""
        assert self.reader is not None
        self.reader.warm_up()
        k = min(self.spec.reader_top_k if reader_top_k is None else reader_top_k, results.k)
        read = RankedResults(results.indices[:, :k], results.scores[:, :k], results.documents)
        nbest = self.reader.read(questions, read, n_best=self.spec.n_best if n_best is None else n_best)
        for post in self.postprocessors:
            post.warm_up()
            nbest = [post.process(q, preds) for q, preds in zip(questions, nbest)]
        return nbest


def nbest_json(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    """One question's n-best list as ``nbest_predictions.json`` gives it: text, probability (softmax over the list's
    scores), score, passage id and character offset of each answer."""
    return nbest_entries(predictions)


def run_pipeline(
    pipeline: Pipeline,
    documents: Sequence[Document],
    questions: Sequence[Question],
    output_dir: str | Path,
    *,
    save_indexes: bool = True,
    index: bool = True,
    overwrite: bool = False,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Index, retrieve, optionally read, evaluate, and write the outputs. Returns the summary, with the
    retrieval ``report``, the reader's ``qa_report`` and ``nbest`` (each question's predictions) added.

    ``summary.json`` records every setting the run used: each component's resolved options
    (:meth:`~odqa_core.interfaces.Component.resolved_config`, defaults filled in), the run's settings, and
    ``inputs`` (where the corpus and questions came from); and the seconds of each stage apart
    (:class:`~odqa_core.progress.StageTimer`): ``train_s`` (models trained on the way, e.g. the sample's demo models
    on first use), ``index_s``, ``retrieve_s``, ``read_s`` (loading the reader's model included).

    ``index=False`` takes the pipeline's retrievers as already indexed over ``documents`` (``odqa sweep`` loads
    them from its index cache). The outputs are one unit (:func:`~odqa_core.outputs.write_output_dir`): they
    replace the previous run's in ``output_dir`` only once all are written, and files of that run this one does
    not write are removed. A non-empty ``output_dir`` that is not an odqa output is refused unless ``overwrite``,
    and so is one another odqa process is writing; both are checked before anything is computed.
    """
    with write_output_dir(output_dir, overwrite=overwrite) as staging:
        summary, report, qa_report, nbest = _run_into(
            pipeline, documents, questions, staging, save_indexes, index, inputs
        )
    summary["report"] = report
    summary["qa_report"] = qa_report
    summary["nbest"] = nbest
    return summary


def _run_into(
    pipeline: Pipeline,
    documents: Sequence[Document],
    questions: Sequence[Question],
    output_dir: Path,
    save_indexes: bool,
    index: bool,
    inputs: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], RetrievalReport, Any, list[list[Prediction]] | None]:
    clock = StageTimer()
    if pipeline.reader is not None:  # a missing or broken model fails here, before any indexing
        with clock.stage("read_s"):
            pipeline.reader.warm_up()

    if index:
        with clock.stage("index_s"):
            pipeline.index(documents)

    with clock.stage("retrieve_s"):
        results = pipeline.retrieve(questions)

    spec = pipeline.spec
    report: RetrievalReport = evaluate_retrieval(questions, hits_from_results(results), spec.ks)
    summary: dict[str, Any] = {
        "retrievers": list(spec.retrievers),
        "fuser": spec.fuser,
        "reader": spec.reader,
        "postprocessors": list(spec.postprocessors),
        "components": {},  # filled in after reading: a reader's options from its checkpoint are known by then
        # The run's other settings (top_k and reader_top_k are below, as they always were).
        "settings": {
            "n_best": spec.n_best if pipeline.reader else None,
            "batch_size": spec.batch_size,
            "ks": list(spec.ks),
            "metric": spec.metric if pipeline.reader else None,
        },
        **({"inputs": dict(inputs)} if inputs is not None else {}),
        "n_documents": len(documents),
        "n_questions": len(questions),
        "top_k": spec.top_k,
        **({"reader_top_k": min(spec.reader_top_k, spec.top_k)} if pipeline.reader else {}),
        "retrieval": report.to_json(),
    }

    nbest = None
    predictions: dict[str, str] = {}
    qa_report = None
    if pipeline.reader is not None:
        with clock.stage("read_s"):
            nbest = pipeline.read(questions, results)
        # A question whose retrieval came back empty, or whose reader found nothing, is answered "".
        predictions = {q.id: (preds[0].answer if preds else "") for q, preds in zip(questions, nbest)}
        qa_report = evaluate_predictions(predictions, questions, spec.metric)
        summary["reader_metrics"] = qa_report.to_json()
    stages = [*pipeline.retrievers, pipeline.fuser, pipeline.reader, *pipeline.postprocessors]
    summary["components"] = {c.name: c.resolved_config() for c in stages if c is not None}
    timings = clock.as_dict()
    summary["timings"] = {k: timings[k] for k in ("train_s", "index_s", "retrieve_s", "read_s") if k in timings}

    if save_indexes:
        for retriever in pipeline.retrievers:
            if retriever.is_indexed:  # a fuser may use a retriever without its own index (sequential's 2nd stage)
                retriever.save(output_dir / "index" / retriever.name)
    write_run(output_dir / "run.jsonl", questions, results)
    if nbest is not None:
        atomic_write_text(output_dir / "predictions.json", predictions_json_text(questions, nbest))
        atomic_write_text(output_dir / "nbest_predictions.json", nbest_predictions_json_text(questions, nbest))
    atomic_write_text(output_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=1))
    return summary, report, qa_report, nbest
