"""The core's fakes pass the same contracts the plugins' components must pass."""

from __future__ import annotations

import pytest

from odqa_core.testing import (
    FakeFuser,
    FakePostprocessor,
    FakeReader,
    FakeRetriever,
    FuserContract,
    PostprocessorContract,
    ReaderContract,
    RetrieverContract,
)


@pytest.fixture(autouse=True)
def _fakes(fake_plugins):
    yield


class TestFakeRetriever(RetrieverContract):
    @pytest.fixture
    def make_retriever(self):
        return lambda: FakeRetriever(tokens="words")


class TestFakeCharRetriever(RetrieverContract):
    @pytest.fixture
    def make_retriever(self):
        return lambda: FakeRetriever(tokens="chars")


class TestFakeFuser(FuserContract):
    @pytest.fixture
    def make_fuser(self):
        return lambda: FakeFuser(depth=5)


class TestFakeReader(ReaderContract):
    @pytest.fixture
    def make_reader(self):
        return lambda: FakeReader()


class TestFakePostprocessor(PostprocessorContract):
    @pytest.fixture
    def make_postprocessor(self):
        return lambda: FakePostprocessor()
