from __future__ import annotations

import pytest

from odqa_core.testing import (  # noqa: F401 - the fixtures the core's tests use too
    FakeTrainer,
    fake_plugins,
    odqa,
    toy_files,
    toy_index,
)


@pytest.fixture(autouse=True)
def _fresh_trainer_log():
    """``FakeTrainer.runs`` (the training runs a test started) starts empty in every test."""
    FakeTrainer.runs.clear()
    yield
    FakeTrainer.runs.clear()
