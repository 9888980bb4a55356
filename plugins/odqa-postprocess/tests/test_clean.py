"""``clean``: whitespace and unbalanced bracket/quote cleanup, with ``start`` kept on the passage text."""

from __future__ import annotations

import pytest
from odqa_postprocess.postprocessors import CleanPostprocessor, clean_span

from odqa_core import Prediction, Question, UsageError

QUESTION = Question("q", "?")


def _in_passage(raw: str, before: str = "앞 문장의 내용, ", after: str = " 그리고 뒤.") -> tuple[str, Prediction]:
    """A passage holding ``raw`` and the reader's prediction of it."""
    passage = before + raw + after
    return passage, Prediction("q", raw, 1.0, "d", len(before))


def _clean(raw: str, **options) -> tuple[str, Prediction]:
    passage, pred = _in_passage(raw)
    (out,) = CleanPostprocessor(**options).process(QUESTION, [pred])
    return passage, out


@pytest.mark.parametrize(
    "raw, expected",
    [
        # unmatched brackets and quotes at either end go
        ("삼성(", "삼성"),
        ("(삼성", "삼성"),
        ("서울)", "서울"),
        (")서울", "서울"),
        ("“서울", "서울"),
        ("서울”", "서울"),
        ("‘한강", "한강"),
        ("「춘향전", "춘향전"),
        ("춘향전」", "춘향전"),
        ("『삼국유사』의", "『삼국유사』의"),
        ("《반지의 제왕", "반지의 제왕"),
        ("반지의 제왕》", "반지의 제왕"),
        ("〈님의 침묵", "님의 침묵"),
        ("[1", "1"),
        ("{x", "x"),
        ("（주식회사", "주식회사"),
        ('"사랑', "사랑"),
        ('사랑"', "사랑"),
        ("'90s", "90s"),
        ("Jones'", "Jones"),
        # balanced ones stay
        ("(주)삼성", "(주)삼성"),
        ("삼성(주)", "삼성(주)"),
        ('"사랑"', '"사랑"'),
        ("“서울”", "“서울”"),
        ("《토지》", "《토지》"),
        ("f(g(x))", "f(g(x))"),
        ("[1]", "[1]"),
        ("rock 'n' roll", "rock 'n' roll"),
        # stray punctuation at the ends goes, inside it stays
        ("서울,", "서울"),
        ("서울.", "서울"),
        ("서울:", "서울"),
        ("서울;", "서울"),
        ("서울·", "서울"),
        ("서울…", "서울"),
        (", 서울", "서울"),
        (": 서울", "서울"),
        ("1,000", "1,000"),
        ("3.14", "3.14"),
        ("12:30", "12:30"),
        (".5", ".5"),
        ("U.S.", "U.S."),
        ("Washington D.C.", "Washington D.C."),
        ("Yahoo!", "Yahoo!"),
        # several layers, and whitespace that a removal uncovers
        ("서울),", "서울"),
        ("(삼성 ", "삼성"),
        ("서울 (", "서울"),
        ('“ "사랑', "사랑"),
        ("((서울", "서울"),
        ("(서울))", "(서울)"),
        ('서울"),', "서울"),
        # whitespace: stripped and collapsed
        ("  Han River  ", "Han River"),
        ("\n세종\t대왕\n", "세종 대왕"),
        ("Han\u00a0River", "Han River"),
        ("Han \n\u3000 River", "Han River"),
        # nothing to do
        ("세종대왕", "세종대왕"),
        ("Han River", "Han River"),
        ("", ""),
    ],
)
def test_cleans_the_answer_and_keeps_start_on_it(raw, expected):
    passage, out = _clean(raw)
    assert out.answer == expected
    if "span_end" in out.metadata:  # whitespace inside was collapsed: the answer stands for passage[start:span_end]
        assert " ".join(passage[out.start : out.metadata["span_end"]].split()) == expected
    else:
        assert passage[out.start : out.start + len(out.answer)] == out.answer


@pytest.mark.parametrize("raw", ["(", ")", '"', "...", ",", "“”", "( )"])
def test_never_empties_an_answer(raw):
    passage, out = _clean(raw)
    assert out.answer == raw.strip()
    assert passage[out.start : out.start + len(out.answer)] == out.answer


def test_start_moves_by_what_the_front_lost():
    passage = "회사 이름은 “ (주)삼성전자 이다"
    pred = Prediction("q", "“ (주)삼성전자", 2.0, "d", passage.index("“"))
    (out,) = CleanPostprocessor().process(QUESTION, [pred])
    assert out.answer == "(주)삼성전자"
    assert out.start == pred.start + 2 == passage.index("(주)")
    assert (out.score, out.doc_id, out.question_id) == (2.0, "d", "q")


def test_collapsed_whitespace_records_the_span_end():
    passage = "강 이름은 Han \n River 이다."
    pred = Prediction("q", " Han \n River,", 1.0, "d", passage.index(" Han"))
    (out,) = CleanPostprocessor().process(QUESTION, [pred])
    assert out.answer == "Han River"
    assert out.start == passage.index("Han")
    assert passage[out.start : out.metadata["span_end"]] == "Han \n River"


def test_without_start_only_the_text_changes():
    (out,) = CleanPostprocessor().process(QUESTION, [Prediction("q", " 삼성( ", 1.0)])
    assert (out.answer, out.start, out.doc_id) == ("삼성", None, None)
    assert "span_end" not in out.metadata


def test_metadata_is_kept():
    pred = Prediction("q", "서울,", 1.0, "d", 0, {"passage_rank": 3})
    (out,) = CleanPostprocessor().process(QUESTION, [pred])
    assert out.metadata == {"passage_rank": 3}


def test_unchanged_predictions_are_returned_as_they_are():
    pred = Prediction("q", "세종대왕", 1.0, "d", 4)
    assert CleanPostprocessor().process(QUESTION, [pred])[0] is pred


def test_keeps_the_order_and_scores():
    preds = [Prediction("q", a, s, "d", 0) for a, s in (("(a", 3.0), ("b)", 2.0), ("c", 2.0), (" d ", -1.0))]
    out = CleanPostprocessor().process(QUESTION, preds)
    assert [(p.answer, p.score) for p in out] == [("a", 3.0), ("b", 2.0), ("c", 2.0), ("d", -1.0)]


@pytest.mark.parametrize("raw", ["  “(주)삼성,  ", "서울),", "a \n b", "《토지》", "(", "“ 세종 ” 대왕”"])
def test_idempotent(raw):
    clean = CleanPostprocessor()
    once = clean.process(QUESTION, [Prediction("q", raw, 1.0, "d", 5)])
    assert clean.process(QUESTION, once) == once


def test_brackets_off_only_touches_whitespace():
    passage, out = _clean("  (삼성,  ", brackets=False)
    assert out.answer == "(삼성,"
    assert passage[out.start : out.start + len(out.answer)] == out.answer


def test_whitespace_off_keeps_spaces_not_uncovered_by_a_bracket():
    passage, out = _clean(" 서울 (", whitespace=False)
    assert out.answer == " 서울"
    assert passage[out.start : out.start + len(out.answer)] == out.answer
    assert _clean("Han \n River)", whitespace=False)[1].answer == "Han \n River"


def test_both_off_changes_nothing():
    pred = Prediction("q", " (삼성, ", 1.0, "d", 0)
    assert CleanPostprocessor(brackets=False, whitespace=False).process(QUESTION, [pred]) == [pred]


def test_clean_span_offsets():
    assert clean_span("  (삼성,  ") == (3, 5, "삼성")
    assert clean_span("(주)삼성") == (0, 5, "(주)삼성")
    assert clean_span("a  b") == (0, 4, "a b")


@pytest.mark.parametrize(
    "options, culprit",
    [({"brackets": "yes"}, "brackets"), ({"whitespace": 1}, "whitespace"), ({"whitespace": None}, "whitespace")],
)
def test_bad_options_are_usage_errors(options, culprit):
    with pytest.raises(UsageError, match=culprit) as info:
        CleanPostprocessor.from_options(options)
    assert "\n" not in str(info.value)
