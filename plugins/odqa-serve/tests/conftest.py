"""The serve tests' shared pieces: the bundled sample's BM25 + extractive pipeline (the lexical demo reader,
``model=sample``, trained once per session into the session's ``ODQA_CACHE_DIR``, which the repository's conftest
points into the session's temporary directory, for the servers started here too), and a real ``odqa serve`` process
on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_testing import PIPELINE_ARGS, PIPELINE_SETTINGS, ServerProcess


@pytest.fixture(scope="session")
def sample_pipeline():
    """The sample's BM25 + extractive pipeline, built once (the corpus indexed, the reader loaded)."""
    from odqa_serve.engine import build_pipeline

    return build_pipeline(PIPELINE_SETTINGS)


@pytest.fixture(scope="session")
def sample_questions():
    from odqa_core import data

    return data.load_questions(data.sample_questions_path())


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One ``odqa serve`` process for the module, ready."""
    process = ServerProcess(tmp_path_factory.mktemp("server"), *PIPELINE_ARGS)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
