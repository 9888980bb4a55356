"""What a sweep computes once and reuses: loaded corpora and questions, trained models, built indexes.

Trained models go to ``<cache_dir>/models/<component>-<hash>`` and indexes to ``<cache_dir>/indexes/<retriever>-
<hash>``, the hash covering everything they are made from (settings, corpus file content and passage split,
question files and selection), so cells with identical settings share them, across sweeps too. A model is trained
in a ``.partial-<pid>`` directory renamed when complete, so a killed training is started over, never half-used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odqa_core import data
from odqa_core.errors import UsageError
from odqa_core.interfaces import EpochCheckpoint, Retriever
from odqa_core.outputs import atomic_write_text, pid_alive
from odqa_core.shards import ShardedRetriever, build_sharded_index, is_sharded
from odqa_core.spec import DataSpec
from odqa_core.types import Document, Question
from odqa_experiments.grid import QuestionSource, select_articles

if TYPE_CHECKING:
    from odqa_core.pipeline import Pipeline

MODEL_MANIFEST = "checkpoints.json"
MODEL_FORMAT = "odqa-sweep-model"
MODEL_FORMAT_VERSION = 1


def digest(value: Any) -> str:
    """A short hash of a JSON-able value: the key of a cached model, index or result row."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def utc_now() -> str:
    """The time stamp of model manifests and result rows."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class CorpusCache:
    """Corpora, questions and file fingerprints, each loaded once per sweep."""

    def __init__(self) -> None:
        self._fingerprints: dict[str, str] = {}
        self._corpora: dict[str, list[Document]] = {}
        self._questions: dict[str, list[Question]] = {}

    def fingerprint(self, path: str | None, sample: Callable[[], Path]) -> str:
        real = str(path or sample())
        if real not in self._fingerprints:
            h = hashlib.blake2b(digest_size=16)
            with open(real, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            self._fingerprints[real] = h.hexdigest()
        return self._fingerprints[real]

    def corpus_id(self, source: DataSpec) -> dict[str, Any]:
        """What a pipeline's passages are made from: the corpus file's content and how it is split."""
        return {
            "corpus": self.fingerprint(source.corpus, data.sample_corpus_path),
            "split_words": source.split_words,
            "stride": source.stride,
            "dedupe": source.dedupe,
        }

    def questions_id(self, source: QuestionSource | None, sample: Callable[[], Path]) -> dict[str, Any] | None:
        if source is None:
            return None
        return {"questions": self.fingerprint(source.path, sample), "articles": source.articles}

    def corpus(self, source: DataSpec) -> list[Document]:
        """The passages of a pipeline's corpus (the bundled sample's when it names none)."""
        key = json.dumps(self.corpus_id(source), sort_keys=True)
        if key not in self._corpora:
            self._corpora[key] = data.load_corpus(
                source.corpus or data.sample_corpus_path(),
                split_words=source.split_words,
                stride=source.stride,
                dedupe=source.dedupe,
            )
        return self._corpora[key]

    def questions(self, source: QuestionSource, sample: Callable[[], Path]) -> list[Question]:
        path = str(source.path or sample())
        if path not in self._questions:
            self._questions[path] = data.load_questions(path)
        questions = self._questions[path]
        return select_articles(questions, source.articles, path) if source.articles else questions


class ModelCache:
    """Trained models: one directory per trainer and key, with a manifest of its per-epoch checkpoints."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, trainer: str, key: str) -> Path:
        return self.root / f"{trainer}-{key}"

    def is_trained(self, trainer: str, key: str) -> bool:
        return (self.directory(trainer, key) / MODEL_MANIFEST).is_file()

    def checkpoints(
        self,
        trainer: str,
        key: str,
        train: Callable[[Path], Sequence[EpochCheckpoint]],
        record: Mapping[str, Any],
    ) -> list[EpochCheckpoint]:
        """The model's checkpoints; when it is not cached, ``train(output)`` trains it into a fresh directory
        first, and the manifest keeps ``record`` (what it was trained from)."""
        target = self.directory(trainer, key)
        if (target / MODEL_MANIFEST).is_file():
            return load_checkpoints(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(f"{target.name}.partial-*"):
            if not _running_elsewhere(stale.name.rpartition("-")[2]):  # a training that was killed: start over
                shutil.rmtree(stale, ignore_errors=True)
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        started = time.perf_counter()
        checkpoints = train(partial)
        if not checkpoints:
            raise UsageError(f"trainer {trainer!r} returned no checkpoints")
        rows = []
        for ckpt in checkpoints:
            try:
                relative = Path(ckpt.path).resolve().relative_to(partial.resolve())
            except ValueError:
                raise UsageError(f"trainer {trainer!r} saved a checkpoint outside its output: {ckpt.path}") from None
            rows.append(
                {"epoch": ckpt.epoch, "path": str(relative), "dev_metric": ckpt.dev_metric, "loss": ckpt.loss}
            )
        manifest = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "trainer": trainer,
            **record,
            "epochs": rows,
            "train_s": round(time.perf_counter() - started, 2),
            "finished": utc_now(),
        }
        atomic_write_text(partial / MODEL_MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        try:
            partial.rename(target)
        except OSError:  # another sweep on the same cache finished the same model first: use that one
            if not (target / MODEL_MANIFEST).is_file():
                raise
            shutil.rmtree(partial, ignore_errors=True)
        return load_checkpoints(target)


def load_checkpoints(target: Path) -> list[EpochCheckpoint]:
    """The checkpoints a cached model's manifest lists, each checked to be inside ``target``."""
    manifest = json.loads((target / MODEL_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != MODEL_FORMAT or manifest.get("format_version") != MODEL_FORMAT_VERSION:
        raise UsageError(f"{target}: not a sweep model of format version {MODEL_FORMAT_VERSION}; delete it")
    out = []
    for row in manifest["epochs"]:
        path = target / row["path"]
        if Path(os.path.realpath(target)) not in Path(os.path.realpath(path)).parents:
            raise UsageError(f"{target}: checkpoint {row['path']!r} is not inside the model directory; delete it")
        if not path.exists():
            raise UsageError(f"{target}: checkpoint {row['path']} is missing; delete {target} to retrain")
        out.append(EpochCheckpoint(int(row["epoch"]), path, float(row["dev_metric"]), float(row["loss"])))
    return out


def _running_elsewhere(pid: str) -> bool:
    """Whether ``pid`` is another live process (a sweep training into its own ``.partial-<pid>`` directory)."""
    return pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))


class IndexCache:
    """Built indexes, one directory per retriever and key; the retrievers the last cell used stay loaded.

    With ``shards`` > 1 each index is built as a sharded index (:func:`odqa_core.shards.build_sharded_index`, in
    this process) and searched through its shards; its key differs from the single index's, so the two never
    stand in for each other.
    """

    def __init__(self, root: Path, *, shards: int = 1) -> None:
        self.root = root
        self.shards = shards
        self._loaded: dict[str, Retriever] = {}

    def index(self, pipeline: Pipeline, corpus_id: Mapping[str, Any], documents: Sequence[Document]) -> None:
        """Index with every retriever the pipeline needs indexed, from the cache when it was built before."""
        used: dict[str, Retriever] = {}
        for i, retriever in enumerate(pipeline.retrievers):
            if pipeline.fuser is not None and pipeline.fuser.unindexed_ok(retriever, pipeline.retrievers):
                retriever.warm_up()
                continue
            identity = {"retriever": retriever.name, "config": retriever.config(), "corpus": corpus_id}
            if self.shards > 1:  # only then: the keys of single indexes cached before shards existed still hold
                identity["shards"] = self.shards
            key = digest(identity)
            path = self.root / f"{retriever.name}-{key}"
            if key in self._loaded:
                pipeline.retrievers[i] = self._loaded[key]
            elif (path / "manifest.json").is_file():
                loaded = ShardedRetriever.load(path) if is_sharded(path) else type(retriever).load(path)
                loaded.warm_up()
                pipeline.retrievers[i] = loaded
            elif self.shards > 1:
                build_sharded_index(retriever, documents, path, self.shards)
                loaded = ShardedRetriever.load(path)
                loaded.warm_up()
                pipeline.retrievers[i] = loaded
            else:
                retriever.warm_up()
                retriever.index(documents)
                retriever.save(path)
            used[key] = pipeline.retrievers[i]
        self._loaded = used  # keep what this cell used for the next one, drop the rest
        if pipeline.fuser is not None:
            pipeline.fuser.check_ready(pipeline.retrievers)
