"""What odqa builds once and reuses: where it is cached, and the bundled sample's demo models.

``odqa run`` on the bundled sample works on a fresh machine with nothing downloaded: a component whose ``model``
option is ``sample`` gets a small bootstrap model trained on the sample corpus and the sample's *training*
questions (``odqa_core.data.sample_train_questions_path``, disjoint from the evaluation questions), with progress
bars, once. Each plugin keeps the recipe of its own demo models (the dense retriever's DPR, the readers'); this
module caches them under ``cache_dir()/sample-models/<name>-<hash>``, where the hash covers the recipe and the
sample files, so a changed recipe or sample trains a new one. Training writes to a temporary directory that is
renamed into place only when complete.

These are demonstrations of the pipeline on 60 documents, not models to measure anything with: train real ones
with ``odqa train dpr`` / ``odqa train reader`` (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odqa_core.outputs import remove_abandoned_temporaries, temporary_sibling
from odqa_core.progress import stderr_echo, training
from odqa_core.storage import cache_dir


def sample_digest(name: str, recipe: dict[str, Any]) -> str:
    """A hash of what a demo model is made from: its recipe and the bundled sample's corpus and questions."""
    from odqa_core import data

    digest = hashlib.sha256(f"{name}\0{json.dumps(recipe, sort_keys=True)}\0".encode())
    for path in (data.sample_corpus_path(), data.sample_train_questions_path()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_model(name: str, recipe: dict[str, Any], train: Callable[[Path], None]) -> Path:
    """The ``best/`` checkpoint of demo model ``name``; ``train(directory)`` makes it when it is not cached."""
    target = cache_dir() / "sample-models" / f"{name}-{sample_digest(name, recipe)}"
    best = target / "best"
    if (best / "manifest.json").is_file():
        return best
    stderr_echo(f"first use: training the bundled sample's demo {name} model (cached in {target})")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temporaries(target)  # left by a process killed while writing it
    tmp = temporary_sibling(target)
    try:
        with training():  # a run's summary counts this as training, not as the indexing or reading it happened in
            train(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first; its model is as good
            if not (best / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return best
