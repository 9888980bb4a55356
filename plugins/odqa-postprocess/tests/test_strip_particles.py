"""``strip-particles``: one trailing Korean particle removed, conservatively; ``start`` stays on the passage."""

from __future__ import annotations

import sys

import pytest
from odqa_postprocess import postprocessors
from odqa_postprocess.postprocessors import DEFAULT_PARTICLES, StripParticlesPostprocessor, strip_particle

from odqa_core import Prediction, Question, UsageError

QUESTION = Question("q", "?")


@pytest.mark.parametrize(
    "answer, expected",
    [
        # one particle goes
        ("세종대왕이", "세종대왕"),
        ("세종대왕은", "세종대왕"),
        ("세종대왕의", "세종대왕"),
        ("세종대왕을", "세종대왕"),
        ("세종대왕과", "세종대왕"),
        ("세종대왕께서", "세종대왕"),
        ("세종대왕에게", "세종대왕"),
        ("세종대왕에게서", "세종대왕"),
        ("세종대왕이라고", "세종대왕"),
        ("세종대왕이다", "세종대왕"),
        ("세종대왕이며", "세종대왕"),
        ("세종대왕처럼", "세종대왕"),
        ("세종대왕보다", "세종대왕"),
        ("이순신 장군은", "이순신 장군"),
        ("배추를", "배추"),
        ("김치는", "김치"),
        ("학교가", "학교"),
        ("나무와", "나무"),
        ("나무도", "나무"),
        ("나무만", "나무"),
        ("서울에서", "서울"),
        ("서울에서부터", "서울"),
        ("서울까지", "서울"),
        ("서울부터", "서울"),
        ("서울로", "서울"),  # 로 after ㄹ
        ("서울로부터", "서울"),
        ("학교로", "학교"),
        ("부산으로", "부산"),
        ("부산으로부터", "부산"),
        ("1443년에", "1443년"),
        ("1950년대의", "1950년대"),
        ("BTS가", "BTS"),
        ("KBS에서", "KBS"),
        ("고양이라고", "고양이"),
        ("나라는", "나라"),  # 라는 would leave one character: 는 goes instead
        # exactly one, never two
        ("서울에서도", "서울"),  # 에서도 is one entry of the list
        ("서울까지만", "서울까지"),
        # a one-character stem stays (min_stem=2)
        ("집에", "집에"),
        ("집으로", "집으로"),  # and never "집으" + 로
        ("산이", "산이"),
        ("중화민국 대만", "중화민국 대만"),  # the stem counts in the last word
        # the particle must agree with the final consonant of the stem
        ("국가", "국가"),  # 가 never follows a final consonant
        ("작가", "작가"),
        ("마을", "마을"),  # 을 never follows a vowel
        ("가을", "가을"),
        ("사과", "사과"),  # 과 never follows a vowel
        ("경로", "경로"),  # 로 follows a vowel or ㄹ only
        ("지은", "지은"),  # 은 never follows a vowel
        ("아이", "아이"),
        # known words that end like a particle
        ("제주도", "제주도"),
        ("경기도", "경기도"),
        ("한반도", "한반도"),
        ("충청남도", "충청남도"),
        ("대동여지도", "대동여지도"),
        ("고양이", "고양이"),
        ("어린이", "어린이"),
        ("우리 어린이", "우리 어린이"),
        ("민주주의", "민주주의"),
        ("국제회의", "국제회의"),
        ("결과", "결과"),
        ("정치가", "정치가"),
        ("고속도로", "고속도로"),
        ("을지로", "을지로"),
        ("김정은", "김정은"),
        ("어린이가", "어린이"),  # a known word with a particle still loses the particle
        # not after a digit, not after punctuation or a space, only at a Hangul end
        ("10만", "10만"),
        ("종로3가", "종로3가"),
        ("(주)삼성이", "(주)삼성"),
        ("“토지”를", "“토지”를"),
        ("서울 이", "서울 이"),
        ("Seoul", "Seoul"),
        ("서울.", "서울."),
        ("음식이다.", "음식이다."),
        # nothing to strip
        ("세종대왕", "세종대왕"),
        ("이", "이"),
        ("", ""),
    ],
)
def test_rules(answer, expected):
    assert strip_particle(answer) == expected
    (out,) = StripParticlesPostprocessor().process(QUESTION, [Prediction("q", answer, 1.0, "d", 0)])
    assert out.answer == expected


def test_start_and_the_rest_stay():
    passage = "조선의 네 번째 왕인 세종대왕이 한글을 만들었다."
    start = passage.index("세종대왕이")
    pred = Prediction("q", "세종대왕이", 3.5, "d", start, {"k": 1})
    (out,) = StripParticlesPostprocessor().process(QUESTION, [pred])
    assert out.answer == "세종대왕"
    assert passage[out.start : out.start + len(out.answer)] == out.answer
    assert (out.start, out.score, out.doc_id, out.metadata) == (start, 3.5, "d", {"k": 1})


def test_a_span_end_from_clean_moves_with_the_end():
    pred = Prediction("q", "세종 대왕이", 1.0, "d", 10, {"span_end": 18})
    (out,) = StripParticlesPostprocessor().process(QUESTION, [pred])
    assert out.answer == "세종 대왕" and out.metadata["span_end"] == 17


def test_keeps_the_order_and_scores():
    preds = [Prediction("q", a, s) for a, s in (("서울이", 2.0), ("부산은", 1.0), ("대구", 1.0), ("광주를", -5.0))]
    out = StripParticlesPostprocessor().process(QUESTION, preds)
    assert [(p.answer, p.score) for p in out] == [("서울", 2.0), ("부산", 1.0), ("대구", 1.0), ("광주", -5.0)]


def test_min_stem():
    assert strip_particle("집에", min_stem=1) == "집"
    assert strip_particle("집으로", min_stem=1) == "집"
    assert strip_particle("세종대왕이", min_stem=5) == "세종대왕이"
    assert StripParticlesPostprocessor(min_stem=1).strip_many(["집에", "산이", "국가"]) == ["집", "산", "국가"]


def test_particles_override_the_list():
    post = StripParticlesPostprocessor(particles=["에서", "를"])
    answers = ["서울에서", "배추를", "세종대왕이", "서울까지"]
    assert post.strip_many(answers) == ["서울", "배추", "세종대왕이", "서울까지"]
    assert post.config()["particles"] == ["에서", "를"]


def test_longest_particle_first_whatever_the_order_given():
    post = StripParticlesPostprocessor(particles=["서", "에서"])
    assert post.strip_many(["서울에서"]) == ["서울"]


def test_keep_overrides_the_known_words():
    assert StripParticlesPostprocessor(keep=[]).strip_many(["제주도", "고양이"]) == ["제주", "고양"]
    own = StripParticlesPostprocessor(keep=["세종대왕이"])
    assert own.strip_many(["세종대왕이", "제주도"]) == ["세종대왕이", "제주"]


def test_the_default_list_is_longest_first_and_has_the_common_particles():
    assert list(DEFAULT_PARTICLES) == sorted(DEFAULT_PARTICLES, key=len, reverse=True)
    common = ("에서부터", "으로부터", "에게서", "라고", "께서", "으로", "은", "는", "이", "가", "을", "를", "의")
    assert set(common) <= set(DEFAULT_PARTICLES)


@pytest.mark.parametrize(
    "options, culprit",
    [
        ({"analyzer": "mecab"}, "analyzer"),
        ({"min_stem": 0}, "min_stem"),
        ({"min_stem": "2"}, "min_stem"),
        ({"min_stem": True}, "min_stem"),
        ({"particles": "은는이가"}, "particles"),
        ({"particles": []}, "particles"),
        ({"particles": ["은", ""]}, "particles"),
        ({"particles": ["에 서"]}, "particles"),
        ({"particles": [1]}, "particles"),
        ({"keep": "제주도"}, "keep"),
        ({"keep": [None]}, "keep"),
    ],
)
def test_bad_options_are_usage_errors(options, culprit):
    with pytest.raises(UsageError, match=culprit) as info:
        StripParticlesPostprocessor.from_options(options)
    assert "\n" not in str(info.value)


def test_the_rules_module_examples_hold():
    import doctest

    from odqa_postprocess import korean

    result = doctest.testmod(korean)
    assert result.attempted >= 2 and result.failed == 0


# --- analyzer="kiwi" ------------------------------------------------------------------------------------------------


def test_kiwi_without_kiwipiepy_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)
    monkeypatch.setattr(postprocessors, "_KIWI", None)
    with pytest.raises(UsageError, match=r"pip install 'odqa-postprocess\[kiwi\]'"):
        StripParticlesPostprocessor(analyzer="kiwi")


def test_kiwi_refuses_a_particle_list():
    with pytest.raises(UsageError, match="particles"):
        StripParticlesPostprocessor(analyzer="kiwi", particles=["은"])


@pytest.fixture(scope="module")
def kiwi_post():
    pytest.importorskip("kiwipiepy")
    post = StripParticlesPostprocessor(analyzer="kiwi")
    post.warm_up()
    return post


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("세종대왕이", "세종대왕"),
        ("이순신 장군은", "이순신 장군"),
        ("1443년에", "1443년"),
        ("BTS가", "BTS"),
        ("서울에서도", "서울"),  # the whole run of particles at the end
        ("한강은", "한강"),
        ("제주도", "제주도"),
        ("고양이", "고양이"),
        ("결과", "결과"),
        ("국가", "국가"),
        ("집으로", "집으로"),  # min_stem still applies
        ("세종대왕", "세종대왕"),
        ("Seoul", "Seoul"),
        ("", ""),
    ],
)
def test_kiwi(kiwi_post, answer, expected):
    assert kiwi_post.strip_many([answer]) == [expected]


def test_kiwi_batch_and_start(kiwi_post):
    preds = [Prediction("q", "세종대왕이", 2.0, "d", 7), Prediction("q", "한글을", 1.0, "e", 3)]
    out = kiwi_post.process(QUESTION, preds)
    assert [(p.answer, p.start, p.doc_id) for p in out] == [("세종대왕", 7, "d"), ("한글", 3, "e")]
    assert kiwi_post.config() == {"analyzer": "kiwi", "particles": None, "min_stem": 2, "keep": None}
