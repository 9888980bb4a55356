"""The runner: corpus → index → questions → ranked results → (fusion) → (reader → postprocessors) → outputs.

Everything that can fail because of user input (files, names, options) is checked before anything is computed or
written, and each output file is written atomically, so a failed run never leaves half a file behind.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odqa_core import plugins
from odqa_core.errors import UsageError
from odqa_core.evaluation import DEFAULT_KS, RetrievalReport, evaluate_retrieval, hits_from_results
from odqa_core.interfaces import Fuser, Postprocessor, Reader, Retriever
from odqa_core.options import check_finite_options, parse_ks, parse_options  # noqa: F401 - re-exported
from odqa_core.progress import progress
from odqa_core.qa_metrics import evaluate_predictions
from odqa_core.runs import write_run
from odqa_core.storage import atomic_write_text, open_store, write_output_dir
from odqa_core.timing import StageTimer
from odqa_core.types import Document, Prediction, Question, RankedResults


def load_retriever(index_dir: str | Path, options: Mapping[str, Any] | None = None) -> Retriever:
    """Open any stored retriever: the manifest names the retriever, the registry supplies its class.

    ``options`` override the retriever's runtime options (device, batch size, search effort).
    """
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


def split_stage_options(options: Mapping[str, Any], stages: Sequence[str], default: str) -> dict[str, dict]:
    """Route ``name.key`` options to the stage called ``name``; unprefixed keys go to ``default``."""
    routed: dict[str, dict] = {stage: {} for stage in stages}
    for key, value in options.items():
        stage, dot, rest = key.partition(".")
        if dot and stage in routed:
            routed[stage][rest] = value
        elif dot and stage not in routed:
            raise UsageError(
                f"option {key!r} names stage {stage!r}, which is not in this pipeline ({', '.join(stages)})"
            )
        else:
            routed[default][key] = value
    return routed


def stage_options(options: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """The ``stage.key=value`` options of one stage, prefix removed."""
    prefix = stage + "."
    return {k[len(prefix) :]: v for k, v in options.items() if k.startswith(prefix)}


def fused_retrievers(fuser: Fuser, given: Sequence[str]) -> list[str]:
    """The retrievers ``fuser`` combines given the user's (:meth:`Fuser.select_retrievers`), each checked to be
    registered and to fit the fuser's options (:meth:`Fuser.check_names`) before anything is built."""
    names = fuser.select_retrievers(given)
    for name in names:
        plugins.get_component_class("retriever", name)
    fuser.check_names(names)
    return names


def route_options(
    options: Mapping[str, Any],
    retrievers: Sequence[str],
    fuser: str | None = None,
    others: Sequence[str] = (),
) -> tuple[list[str], dict[str, dict]]:
    """The retrievers a pipeline runs and each stage's options, from ``[stage.]key=value`` options.

    With a fuser, the fuser chooses its retrievers (:meth:`Fuser.select_retrievers`): the given ones fill its
    slots and the rest are its defaults, created later through the registry by name. Options prefixed with a
    stage name go to that stage; unprefixed ones go to the first retriever given (else the first one fused).
    """
    names = list(dict.fromkeys(retrievers))
    if fuser is not None:
        names = fused_retrievers(plugins.create("fuser", fuser, stage_options(options, fuser)), names)
    if not names:
        raise UsageError("a pipeline needs at least one retriever (--retriever)")
    stages = [*names, *([fuser] if fuser else []), *others]
    return names, split_stage_options(options, stages, retrievers[0] if retrievers else names[0])


def load_retrievers(
    index_dirs: Sequence[str | Path],
    retrievers: Sequence[str],
    fuser: str | None,
    options: Mapping[str, Any],
) -> tuple[list[Retriever], Fuser | None]:
    """Retrievers opened from stored indexes (and, for a fuser, created by name) plus the fuser, checked.

    Each index's manifest names its retriever; ``retrievers`` adds retrievers without an index (a fuser's
    second stage that scores candidates itself). Options are ``[stage.]key=value`` as in :func:`route_options`;
    an indexed retriever takes only its runtime options.
    """
    stored: dict[str, Path] = {}
    for index_dir in index_dirs:
        name = open_store(index_dir, kind="retriever", verify=False).manifest["name"]
        if name in stored:
            raise UsageError(f"two indexes of retriever {name!r} ({stored[name]} and {index_dir}); give one of each")
        stored[name] = Path(index_dir)
    given = [*stored, *(n for n in retrievers if n not in stored)]
    if fuser is None and len(given) != 1:
        raise UsageError(
            f"{len(given)} retrievers ({', '.join(given) or 'none'}) need a fuser (--fuser) to combine them"
            if given
            else "give the index to search (--index-dir)"
        )
    names, routed = route_options(options, given, fuser)
    built = [
        load_retriever(stored[name], routed[name])
        if name in stored
        else plugins.create("retriever", name, routed[name])
        for name in names
    ]
    fuser_component = plugins.create("fuser", fuser, routed[fuser]) if fuser is not None else None
    for retriever in built:
        retriever.warm_up()
    if fuser_component is not None:
        fuser_component.check_ready(built)
    return built, fuser_component


@dataclass
class RunConfig:
    retrievers: list[str]
    fuser: str | None = None
    reader: str | None = None
    postprocessors: list[str] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    top_k: int = 100
    ks: tuple[int, ...] = DEFAULT_KS
    n_best: int = 5
    batch_size: int = 1024
    #: How reader answers are scored: ``korquad`` (character F1) or ``squad`` (token F1).
    metric: str = "korquad"
    #: Passages the reader reads per question: the best of the ``top_k`` retrieved (retrieval is still evaluated
    #: at every cut-off up to ``top_k``).
    reader_top_k: int = 10


@dataclass
class Pipeline:
    """Built components of a run. Create with :meth:`from_config` (validates names and options eagerly)."""

    config: RunConfig
    retrievers: list[Retriever]
    fuser: Fuser | None
    reader: Reader | None
    postprocessors: list[Postprocessor]

    @classmethod
    def from_config(cls, config: RunConfig) -> Pipeline:
        """Build the components; with a fuser, ``config.retrievers`` may name fewer retrievers than it fuses
        (its defaults fill the rest, see :func:`route_options`), and the resolved names replace them."""
        if config.top_k < 1:
            raise UsageError(f"top-k must be at least 1, got {config.top_k}")
        if config.reader_top_k < 1:
            raise UsageError(f"reader top-k must be at least 1, got {config.reader_top_k}")
        opts = config.options
        fuser = plugins.create("fuser", config.fuser, opts.get(config.fuser)) if config.fuser else None
        names = fused_retrievers(fuser, config.retrievers) if fuser else list(dict.fromkeys(config.retrievers))
        if not names:
            raise UsageError("a pipeline needs at least one retriever (--retriever)")
        if len(names) > 1 and fuser is None:
            raise UsageError("several retrievers need a fuser (--fuser) to combine them")
        config = dataclasses.replace(config, retrievers=names)
        retrievers = [plugins.create("retriever", n, opts.get(n)) for n in names]
        reader = plugins.create("reader", config.reader, opts.get(config.reader)) if config.reader else None
        posts = [plugins.create("postprocessor", n, opts.get(n)) for n in config.postprocessors]
        return cls(config, retrievers, fuser, reader, posts)

    def index(self, documents: Sequence[Document]) -> None:
        if self.fuser is not None:
            self.fuser.index(self.retrievers, documents)
            self.fuser.check_ready(self.retrievers)
            return
        for retriever in self.retrievers:
            retriever.warm_up()
            retriever.index(documents)

    def retrieve(self, questions: Sequence[Question]) -> RankedResults:
        return retrieve(self.retrievers, self.fuser, questions, self.config.top_k, self.config.batch_size)

    def read(self, questions: Sequence[Question], results: RankedResults) -> list[list[Prediction]]:
        assert self.reader is not None
        self.reader.warm_up()
        k = min(self.config.reader_top_k, results.k)
        read = RankedResults(results.indices[:, :k], results.scores[:, :k], results.documents)
        nbest = self.reader.read(questions, read, n_best=self.config.n_best)
        for post in self.postprocessors:
            post.warm_up()
            nbest = [post.process(q, preds) for q, preds in zip(questions, nbest)]
        return nbest


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
    (:class:`~odqa_core.timing.StageTimer`): ``train_s`` (models trained on the way, e.g. the sample's demo models
    on first use), ``index_s``, ``retrieve_s``, ``read_s`` (loading the reader's model included).

    ``index=False`` takes the pipeline's retrievers as already indexed over ``documents`` (``odqa sweep`` loads
    them from its index cache). The outputs are one unit (:func:`~odqa_core.storage.write_output_dir`): they
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

    report: RetrievalReport = evaluate_retrieval(questions, hits_from_results(results), pipeline.config.ks)
    config = pipeline.config
    summary: dict[str, Any] = {
        "retrievers": config.retrievers,
        "fuser": config.fuser,
        "reader": config.reader,
        "postprocessors": config.postprocessors,
        "components": {},  # filled in after reading: a reader's options from its checkpoint are known by then
        # The run's other settings (top_k and reader_top_k are below, as they always were).
        "settings": {
            "n_best": config.n_best if pipeline.reader else None,
            "batch_size": config.batch_size,
            "ks": list(config.ks),
            "metric": config.metric if pipeline.reader else None,
        },
        **({"inputs": dict(inputs)} if inputs is not None else {}),
        "n_documents": len(documents),
        "n_questions": len(questions),
        "top_k": pipeline.config.top_k,
        **({"reader_top_k": min(pipeline.config.reader_top_k, pipeline.config.top_k)} if pipeline.reader else {}),
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
        qa_report = evaluate_predictions(predictions, questions, pipeline.config.metric)
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
        atomic_write_text(output_dir / "predictions.json", json.dumps(predictions, ensure_ascii=False, indent=1))
        nbest_json = {q.id: nbest_entries(preds) for q, preds in zip(questions, nbest)}
        atomic_write_text(output_dir / "nbest_predictions.json", json.dumps(nbest_json, ensure_ascii=False, indent=1))
    atomic_write_text(output_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=1))
    return summary, report, qa_report, nbest


def nbest_entries(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    """One question's n-best list as HuggingFace's ``nbest_predictions.json`` writes it (text, probability:
    softmax over the list's scores) plus the score, passage id and character offset."""
    scores = np.array([p.score for p in predictions], np.float64)
    probs = np.exp(scores - scores.max()) if len(scores) else scores
    probs = probs / probs.sum() if len(scores) else probs
    return [
        {"text": p.answer, "probability": float(prob), "score": p.score, "doc_id": p.doc_id, "start": p.start}
        for p, prob in zip(predictions, probs.tolist())
    ]


def route_analyzer(names: Sequence[str], routed: dict[str, dict[str, Any]], analyzer: str | None, analyzer_options):
    """``analyzer`` (and its options) go to every retriever of the pipeline that takes an analyzer (the sparse
    ones); an error when none does."""
    if analyzer is None and not analyzer_options:
        return
    takers = [n for n in names if "analyzer" in plugins.get_component_class("retriever", n).option_names()]
    if not takers:
        raise UsageError(f"--analyzer: none of the retrievers ({', '.join(names)}) takes an analyzer")
    for name in takers:
        routed[name] = {
            **routed[name],
            **({"analyzer": analyzer} if analyzer is not None else {}),
            **({"analyzer_options": dict(analyzer_options)} if analyzer_options else {}),
        }


def run_config(settings: Mapping[str, Any], *, sample: bool = False) -> RunConfig:
    """The :class:`RunConfig` of pipeline settings as a pipeline file gives them (:func:`read_pipeline_file`:
    ``retrievers``, ``fuser``, ``reader``, ``post``, ``top_k``, ..., ``options`` flat as ``{"cross.lam": 1.1}``).

    Options are routed to their stages, ``analyzer`` to the sparse retrievers; with ``sample`` (the bundled
    sample corpus) the stages get their :meth:`~odqa_core.interfaces.Component.sample_defaults` under the
    options given. Corpus, questions and output paths are not part of it.
    """
    retrievers = list(settings.get("retrievers") or [])
    fuser, reader = settings.get("fuser"), settings.get("reader")
    posts = [p for p in settings.get("post") or [] if p]
    if not retrievers and not fuser:
        raise UsageError("name a retriever (--retriever bm25), or a fuser that brings its own (--fuser cross)")
    if posts and not reader:
        raise UsageError("postprocessors (--post) rewrite a reader's answers; add a --reader")
    n_best = settings.get("n_best", 5)
    if n_best < 1:
        raise UsageError(f"--n-best must be at least 1, got {n_best}")
    names, routed = route_options(
        dict(settings.get("options") or {}), retrievers, fuser, [*([reader] if reader else []), *posts]
    )
    route_analyzer(names, routed, settings.get("analyzer"), settings.get("analyzer_options"))
    if sample:  # the bundled sample: demo models (and the fuser's demo λ) for the stages given none
        demo_stages = [("fuser", fuser)] if fuser else []
        demo_stages += [*(("retriever", n) for n in names), *([("reader", reader)] if reader else [])]
        for kind, stage in demo_stages:
            routed[stage] = {**plugins.get_component_class(kind, stage).sample_defaults(), **routed[stage]}
    return RunConfig(
        retrievers=names,
        fuser=fuser,
        reader=reader,
        postprocessors=posts,
        options=routed,
        top_k=settings.get("top_k", 100),
        ks=tuple(settings.get("ks") or DEFAULT_KS),
        n_best=n_best,
        batch_size=settings.get("batch_size", 1024),
        metric=settings.get("metric", "korquad"),
        reader_top_k=settings.get("reader_top_k", 10),
    )


#: The keys of a pipeline file (``odqa run --config pipeline.toml``) and the type each must have.
PIPELINE_KEYS: dict[str, tuple[type, ...]] = {
    "retrievers": (list,),
    "fuser": (str,),
    "reader": (str,),
    "post": (list,),
    "corpus": (str,),
    "questions": (str,),
    "output_dir": (str,),
    "top_k": (int,),
    "n_best": (int,),
    "reader_top_k": (int,),
    "ks": (list,),
    "metric": (str,),
    "batch_size": (int,),
    "analyzer": (str,),
    "split_words": (int,),
    "stride": (int,),
    "dedupe": (bool,),
    "options": (dict,),
}


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file's tables; an unreadable or invalid file is a one-line usage error naming ``what`` it is."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def check_type(label: str, value: Any, types: tuple[type, ...]) -> None:
    """``value`` is one of ``types`` (a bool only where ``bool`` is listed); else a one-line error on ``label``."""
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        raise UsageError(f"{label} must be a {types[0].__name__}, got {value!r}")


def read_pipeline_file(path: str | Path) -> dict[str, Any]:
    """A pipeline file's settings, checked: every key known and of the right type, one-line errors naming it.

    ``options`` is a table of stage tables (``[options.cross] lam = 1.1``); it comes back flattened to
    ``{"cross.lam": 1.1}``, the form ``-o`` gives. ``retriever = "bm25"`` is accepted for one retriever.
    """
    return check_pipeline_settings(read_toml(path, "pipeline file"), str(path))


def check_pipeline_settings(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Pipeline settings (a pipeline file's, or a sweep grid's ``[pipeline]`` table) checked and normalised:
    every key known and of the right type (one-line errors naming it, prefixed by ``where``), ``retriever``
    folded into ``retrievers`` and the ``options`` table flattened to ``{"stage.key": value}``."""
    raw = dict(raw)
    if "retriever" in raw:
        if "retrievers" in raw:
            raise UsageError(f"{where}: give 'retriever' or 'retrievers', not both")
        value = raw.pop("retriever")
        raw["retrievers"] = [value] if isinstance(value, str) else value
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in PIPELINE_KEYS:
            raise UsageError(f"{where}: unknown key {key!r}; valid keys: retriever, {', '.join(PIPELINE_KEYS)}")
        check_type(f"{where}: {key!r}", value, PIPELINE_KEYS[key])
        settings[key] = value
    for key, item_type in (("retrievers", str), ("post", str), ("ks", int)):
        if key in settings and not all(isinstance(v, item_type) and not isinstance(v, bool) for v in settings[key]):
            raise UsageError(f"{where}: {key!r} must be a list of {item_type.__name__}s, got {settings[key]!r}")
    flat: dict[str, Any] = {}
    for stage, table in settings.pop("options", {}).items():
        if not isinstance(table, dict):
            raise UsageError(f"{where}: options.{stage} must be a table of that stage's options, got {table!r}")
        for key, value in table.items():
            flat[f"{stage}.{key}"] = value
    check_finite_options(flat, where)
    settings["options"] = flat
    return settings
