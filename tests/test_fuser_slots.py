"""Fuser slot filling (:meth:`Fuser.select_retrievers`) and the routing of ``-o`` options to the stages
(:meth:`~odqa_core.spec.PipelineSpec.from_settings`), with the core's fake components (retriever ``fake``, fuser
``fake-sum``) and a few slot fusers of its own."""

from __future__ import annotations

import pytest

from odqa_core.errors import UsageError
from odqa_core.hookspecs import hookimpl
from odqa_core.interfaces import Fuser
from odqa_core.spec import PipelineSpec
from odqa_core.testing import FakeRetriever, registered_plugin
from odqa_core.types import RankedResults


@pytest.fixture(autouse=True)
def _fakes(fake_plugins):
    yield


# --- fuser slot filling ------------------------------------------------------------------------------------------


class TwoSlotFuser(Fuser):
    """A fuser of two named slots (bm25 and dpr by default), at most ``max_retrievers`` retrievers."""

    name = "two-slot"

    def __init__(self, *, second: str = "dpr") -> None:
        self.second = second

    def slots(self) -> list[str]:
        return ["bm25", self.second]

    def fuse(self, retrievers, queries, k) -> RankedResults:  # pragma: no cover - never called
        raise NotImplementedError


class AtMostTwoFuser(TwoSlotFuser):
    name = "at-most-two"
    max_retrievers = 2


@pytest.mark.parametrize(
    "given, expected",
    [
        ([], ["bm25", "dpr"]),
        (["bm25"], ["bm25", "dpr"]),
        (["dpr"], ["bm25", "dpr"]),
        (["tfidf"], ["tfidf", "dpr"]),
        (["dpr", "bm25"], ["bm25", "dpr"]),
        (["bm25", "tfidf", "dpr"], ["bm25", "dpr", "tfidf"]),
        (["tfidf", "vec"], ["tfidf", "vec"]),
        (["tfidf", "dpr", "vec"], ["tfidf", "dpr", "vec"]),
        (["bm25", "bm25"], ["bm25", "dpr"]),  # a name given twice is one retriever
    ],
)
def test_select_retrievers_fills_the_slots(given, expected):
    assert TwoSlotFuser().select_retrievers(given) == expected


def test_select_retrievers_too_many_is_a_usage_error():
    assert AtMostTwoFuser().select_retrievers(["tfidf"]) == ["tfidf", "dpr"]
    with pytest.raises(UsageError, match="exactly 2") as info:
        AtMostTwoFuser().select_retrievers(["bm25", "tfidf", "dpr"])
    assert "3" in str(info.value) and "tfidf" in str(info.value)


def test_select_retrievers_too_few_is_a_usage_error():
    class NoSlots(TwoSlotFuser):
        name = "no-slots"

        def slots(self):
            return []

    with pytest.raises(UsageError, match="at least 2"):
        NoSlots().select_retrievers(["bm25"])
    assert NoSlots().select_retrievers(["bm25", "tfidf"]) == ["bm25", "tfidf"]


# --- the retrievers and options of a pipeline spec ---------------------------------------------------------------


class SlotA(FakeRetriever):
    name = "slot-a"


class SlotB(FakeRetriever):
    name = "slot-b"


class SlotC(FakeRetriever):
    name = "slot-c"


class RoutedFuser(TwoSlotFuser):
    """Slots ``slot-a`` and ``second`` (slot-b); ``second`` given in the options fixes that slot."""

    name = "routed"

    def __init__(self, *, second: str | None = None) -> None:
        self.second = second

    def slots(self) -> list[str]:
        return ["slot-a", self.second or "slot-b"]

    def fixed_slots(self) -> set[int]:
        return {1} if self.second else set()

    def check_names(self, names) -> None:
        super().check_names(names)
        if "slot-c" in names and self.second == "slot-b":
            raise UsageError("routed: slot-c cannot go with slot-b")


class _SlotPlugin:
    @hookimpl
    def register_fusers(self, register):
        register(TwoSlotFuser)
        register(RoutedFuser)

    @hookimpl
    def register_retrievers(self, register):
        for cls in (SlotA, SlotB, SlotC):
            register(cls)


@pytest.fixture
def two_slot():
    with registered_plugin(_SlotPlugin(), "odqa-two-slot"):
        yield


def route(options, retrievers, fuser=None, reader=None):
    """The retrievers a pipeline runs and each stage's options, as its spec resolves them."""
    settings = {"retrievers": retrievers, "fuser": fuser, "reader": reader, "options": options}
    spec = PipelineSpec.from_settings(settings, sample=False)
    return list(spec.retrievers), {stage: spec.options_of(stage) for stage, _ in spec.options}


def test_options_without_fuser():
    names, routed = route({"tokens": "chars"}, ["fake"])
    assert names == ["fake"] and routed == {"fake": {"tokens": "chars"}}
    names, routed = route({"fake.tokens": "chars", "fake-reader.max_words": 3}, ["fake"], reader="fake-reader")
    assert routed == {"fake": {"tokens": "chars"}, "fake-reader": {"max_words": 3}}


def test_options_with_a_fuser():
    names, routed = route({"fake-sum.depth": 4, "tokens": "chars"}, [], "fake-sum")
    assert names == ["fake"]  # the fuser's own retriever
    assert routed == {"fake": {"tokens": "chars"}, "fake-sum": {"depth": 4}}


def test_the_fuser_fills_its_slots(two_slot):
    names, routed = route({"slot-b.tokens": "chars", "tokens": "words"}, ["slot-c"], "routed")
    assert names == ["slot-c", "slot-b"]  # the given retriever takes the free first slot
    assert routed == {"slot-c": {"tokens": "words"}, "slot-b": {"tokens": "chars"}, "routed": {}}
    names, _ = route({}, [], "routed")
    assert names == ["slot-a", "slot-b"]
    names, _ = route({}, ["slot-b", "slot-a"], "routed")
    assert names == ["slot-a", "slot-b"]  # a retriever named like a slot takes that slot
    names, _ = route({}, ["slot-a", "slot-c", "slot-b"], "routed")
    assert names == ["slot-a", "slot-b", "slot-c"]


def test_slots_fixed_by_options_are_kept(two_slot):
    # second=slot-c fixes the second slot: slot-b, given, cannot take it, so it comes after the slots
    names, _ = route({"routed.second": "slot-c"}, ["slot-a", "slot-b"], "routed")
    assert names == ["slot-a", "slot-c", "slot-b"]
    # a given retriever fills only the slots the options left free
    names, _ = route({"routed.second": "slot-c"}, ["slot-b"], "routed")
    assert names == ["slot-b", "slot-c"]


def test_unknown_retriever_is_reported_before_the_options_are_checked(two_slot):
    with pytest.raises(UsageError, match="'nope' is not available"):
        route({"routed.second": "nope"}, [], "routed")
    with pytest.raises(UsageError, match="cannot go with"):
        route({"routed.second": "slot-b"}, ["slot-c"], "routed")


def test_routing_errors():
    with pytest.raises(UsageError, match="nope"):
        route({"nope.x": 1}, ["fake"])
    with pytest.raises(UsageError, match="nope"):
        route({"nope.x": 1}, [], "fake-sum")
    with pytest.raises(UsageError, match="--retriever"):
        route({}, [])
    with pytest.raises(UsageError, match="depth"):
        route({"fake-sum.depth": 0}, [], "fake-sum")  # the fuser is built to choose its retrievers
    with pytest.raises(UsageError, match="no-such-fuser"):
        route({}, ["fake"], "no-such-fuser")
