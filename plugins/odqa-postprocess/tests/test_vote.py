"""``vote``: answers merged across passages and ranked by an aggregate of their members' scores."""

from __future__ import annotations

import math

import pytest
from odqa_postprocess.postprocessors import VotePostprocessor, normalize_answer, softmax

from odqa_core import DataError, Prediction, Question, UsageError

QUESTION = Question("q", "?")


def _preds(*rows) -> list[Prediction]:
    """``(answer, score, doc_id)`` rows → predictions with a start of 10 × their rank."""
    return [Prediction("q", a, s, d, 10 * i, {"rank": i}) for i, (a, s, d) in enumerate(rows)]


#: Three passages agree on 서울 (scores 2, 1, 0.5), one says 부산 (3), one 대구 (1).
ROWS = (("부산", 3.0, "d1"), ("서울", 2.0, "d2"), ("서울", 1.0, "d3"), ("대구", 1.0, "d4"), (" 서울 ", 0.5, "d5"))


def _vote(rows, **options):
    out = VotePostprocessor(**options).process(QUESTION, _preds(*rows))
    return [(p.answer, p.score, p.doc_id, p.metadata["votes"]) for p in out]


def test_sum():
    # 서울: 2 + 1 + 0.5 = 3.5 > 부산: 3 > 대구: 1
    assert _vote(ROWS, aggregate="sum") == [("서울", 3.5, "d2", 3), ("부산", 3.0, "d1", 1), ("대구", 1.0, "d4", 1)]


def test_max():
    # 부산: 3 > 서울: max(2, 1, 0.5) = 2 > 대구: 1
    assert _vote(ROWS, aggregate="max") == [("부산", 3.0, "d1", 1), ("서울", 2.0, "d2", 3), ("대구", 1.0, "d4", 1)]


def test_count():
    # 서울: 3 > 부산: 1 = 대구: 1, the tie broken by rank (부산 came first)
    assert _vote(ROWS, aggregate="count") == [("서울", 3.0, "d2", 3), ("부산", 1.0, "d1", 1), ("대구", 1.0, "d4", 1)]


def test_sum_softmax_by_hand():
    z = math.exp(3) + math.exp(2) + math.exp(1) + math.exp(1) + math.exp(0.5)  # ≈ 34.560
    busan = math.exp(3) / z  # ≈ 0.5812
    seoul = (math.exp(2) + math.exp(1) + math.exp(0.5)) / z  # ≈ 0.3402: unlike "sum", one strong passage wins
    daegu = math.exp(1) / z  # ≈ 0.0787
    out = _vote(ROWS)
    assert [(a, d, v) for a, _, d, v in out] == [("부산", "d1", 1), ("서울", "d2", 3), ("대구", "d4", 1)]
    assert [s for _, s, _, _ in out] == pytest.approx([busan, seoul, daegu], rel=1e-12)
    assert [s for _, s, _, _ in out] == pytest.approx([0.5812, 0.3402, 0.0787], abs=1e-4)
    assert sum(s for _, s, _, _ in out) == pytest.approx(1.0)


def test_sum_softmax_is_the_default_and_handles_negative_logits():
    # raw sums of negative logits would rank the lone answer first; softmax probabilities add up as votes
    rows = (("A", -1.0, "d1"), ("B", -1.5, "d2"), ("B", -1.6, "d3"))
    assert [a for a, *_ in _vote(rows, aggregate="sum")] == ["A", "B"]
    z = math.exp(-1.0) + math.exp(-1.5) + math.exp(-1.6)
    out = _vote(rows)
    assert [a for a, *_ in out] == ["B", "A"]
    assert out[0][1] == pytest.approx((math.exp(-1.5) + math.exp(-1.6)) / z)
    assert out[1][1] == pytest.approx(math.exp(-1.0) / z)


def test_temperature():
    rows = (("A", 2.0, "d1"), ("B", 0.0, "d2"))
    out = _vote(rows, temperature=2.0)
    assert [s for _, s, _, _ in out] == pytest.approx([math.e / (math.e + 1), 1 / (math.e + 1)])


def test_softmax_is_shift_invariant_and_stable():
    assert softmax([1000.0, 999.0]) == pytest.approx(softmax([1.0, 0.0]))
    assert softmax([-1e9, -1e9]) == [0.5, 0.5]
    assert softmax([math.inf, 1.0, math.inf]) == [0.5, 0.0, 0.5]
    assert softmax([-math.inf, -math.inf]) == [0.5, 0.5]


def test_the_representative_is_the_best_member():
    # the best 서울 is the second one: its doc_id, start, text and metadata are kept
    rows = (("서울시", 0.1, "d1"), ("SEOUL", 0.2, "d2"), ("Seoul", 0.9, "d3"), ("seoul", 0.9, "d4"))
    out = VotePostprocessor(aggregate="max").process(QUESTION, _preds(*rows))
    assert [(p.answer, p.doc_id, p.start, p.metadata) for p in out] == [
        ("Seoul", "d3", 20, {"rank": 2, "votes": 3}),  # tie with "seoul": the earlier one
        ("서울시", "d1", 0, {"rank": 0, "votes": 1}),
    ]


def test_ties_between_groups_by_rank_of_first_member():
    rows = (("A", 1.0, "d1"), ("B", 2.0, "d2"), ("C", 1.0, "d3"), ("B", 0.0, "d4"), ("A", 1.0, "d5"))
    # sum: A = 2, B = 2, C = 1 — A before B because A's first member came first
    assert [(a, s) for a, s, *_ in _vote(rows, aggregate="sum")] == [("A", 2.0), ("B", 2.0), ("C", 1.0)]
    # count: A = 2, B = 2, C = 1
    assert [(a, s) for a, s, *_ in _vote(rows, aggregate="count")] == [("A", 2.0), ("B", 2.0), ("C", 1.0)]


@pytest.mark.parametrize(
    "a, b",
    [
        ("Han River", "han river"),
        ("Han  River", "Han River"),
        ("Han\u00a0River", "Han River"),
        (" 서울 ", "서울"),
        ("서울\n특별시", "서울 특별시"),
        ("ＡＢＣ", "abc"),  # NFKC: full-width letters
        ("１９５０", "1950"),
        ("㈜삼성", "(주)삼성"),
        ("\u1112\u1161\u11ab\u1100\u1161\u11bc", "한강"),  # NFKC composes decomposed jamo
    ],
)
def test_normalization_groups_variants(a, b):
    assert normalize_answer(a) == normalize_answer(b)
    out = VotePostprocessor(aggregate="count").process(QUESTION, _preds((a, 1.0, "d1"), (b, 0.5, "d2")))
    assert len(out) == 1 and out[0].metadata["votes"] == 2 and out[0].answer == a


def test_different_answers_stay_apart():
    assert normalize_answer("서울") != normalize_answer("서울시")
    assert normalize_answer("Han River") != normalize_answer("HanRiver")


def test_one_prediction_and_empty_list():
    (out,) = VotePostprocessor().process(QUESTION, _preds(("A", -7.0, "d1")))
    assert (out.answer, out.score, out.metadata["votes"]) == ("A", 1.0, 1)
    assert VotePostprocessor().process(QUESTION, []) == []


def test_nan_score_is_a_data_error():
    with pytest.raises(DataError, match="NaN"):
        VotePostprocessor().process(QUESTION, _preds(("A", math.nan, "d1")))


def test_vote_after_clean_and_strip_particles():
    from odqa_postprocess.postprocessors import CleanPostprocessor, StripParticlesPostprocessor

    preds = _preds(("부산", 1.2, "d1"), ("서울이", 1.0, "d2"), ("“서울", 0.9, "d3"), ("서울,", 0.8, "d4"))
    assert [p.answer for p in VotePostprocessor().process(QUESTION, preds)][0] == "부산"  # variants split the vote
    for post in (CleanPostprocessor(), StripParticlesPostprocessor()):
        preds = post.process(QUESTION, preds)
    out = VotePostprocessor().process(QUESTION, preds)
    assert [(p.answer, p.doc_id, p.metadata["votes"]) for p in out] == [("서울", "d2", 3), ("부산", "d1", 1)]


@pytest.mark.parametrize(
    "options, culprit",
    [
        ({"aggregate": "mean"}, "aggregate"),
        ({"aggregate": None}, "aggregate"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": "1"}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"temperature": True}, "temperature"),
    ],
)
def test_bad_options_are_usage_errors(options, culprit):
    with pytest.raises(UsageError, match=culprit) as info:
        VotePostprocessor.from_options(options)
    assert "\n" not in str(info.value)
