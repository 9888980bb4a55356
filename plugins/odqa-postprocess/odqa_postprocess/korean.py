"""Korean particles (조사) at the end of an answer: the rules of the ``strip-particles`` postprocessor's default
``rules`` analyzer. Reader training (odqa-readers' ``strip_answer_particles``: gold spans trimmed the way answers
are) applies them through that postprocessor, created from the registry.

Pure Python, no dependency: a trailing particle of :data:`DEFAULT_PARTICLES` (longest first) goes when the answer
ends in a Hangul syllable, the stem left is long enough, agrees with the particle's form (받침 or not) and is not a
whole word of :data:`DEFAULT_KEEP` that only ends like a particle (제주도, 고양이, 결과).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AFTER_CONSONANT",
    "AFTER_VOWEL",
    "AFTER_VOWEL_OR_RIEUL",
    "DEFAULT_KEEP",
    "DEFAULT_PARTICLES",
    "particle_may_go",
    "strip_particle",
]

#: The trailing particles (조사) the ``rules`` analyzer strips, tried longest first.
DEFAULT_PARTICLES: tuple[str, ...] = (
    "에서부터",
    "으로부터",
    "로부터",
    "에게서",
    "한테서",
    "이라고",
    "이라는",
    "에서는",
    "에서도",
    "에서의",
    "으로는",
    "으로서",
    "으로써",
    "까지는",
    "까지도",
    "라고",
    "라는",
    "에서",
    "에게",
    "한테",
    "께서",
    "으로",
    "로서",
    "로써",
    "로는",
    "에는",
    "에도",
    "까지",
    "부터",
    "처럼",
    "보다",
    "만큼",
    "마저",
    "조차",
    "이다",
    "이며",
    "이고",
    "이나",
    "로",
    "은",
    "는",
    "이",
    "가",
    "을",
    "를",
    "의",
    "에",
    "와",
    "과",
    "도",
    "만",
)
#: Particles that only follow a syllable with a final consonant (받침) — "왕이", "집을" — and those that only follow
#: one without ("학교가", "나무를"); 로-particles follow a vowel or ㄹ ("학교로", "서울로"). Checked when the stem
#: ends in a Hangul syllable, for any particle list.
AFTER_CONSONANT = frozenset({"이", "은", "을", "과", "으로", "으로부터", "으로는", "으로서", "으로써"})
AFTER_VOWEL = frozenset({"가", "는", "를", "와", "라고", "라는"})
AFTER_VOWEL_OR_RIEUL = frozenset({"로", "로부터", "로는", "로서", "로써"})
#: Words that end like a particle but are whole words: a last word ending in one of them is left as it is.
DEFAULT_KEEP: tuple[str, ...] = (
    # 도 (道, 島, 度, 圖 ...)
    "제주도",
    "울릉도",
    "거제도",
    "강화도",
    "독도",
    "반도",
    "열도",
    "군도",
    "남도",
    "북도",
    "경기도",
    "강원도",
    "인도",
    "포도",
    "지도",
    "제도",
    "정도",
    "속도",
    "온도",
    "고도",
    "각도",
    "궤도",
    "태도",
    "수도",
    # 이
    "어린이",
    "고양이",
    "원숭이",
    "거북이",
    "놀이",
    "길이",
    "높이",
    "넓이",
    "깊이",
    "종이",
    "먹이",
    "차이",
    # 의
    "주의",
    "회의",
    "정의",
    "동의",
    "강의",
    "논의",
    "합의",
    "협의",
    "결의",
    # 과, 가
    "결과",
    "효과",
    "학과",
    "성과",
    "정치가",
    "화가",
    "작사가",
    "애호가",
    # 로
    "도로",
    "대로",
    "회로",
    "미로",
    "수로",
    "을지로",
    "퇴계로",
    # 은 (names)
    "정은",
    "성은",
    "영은",
)


def _is_hangul_syllable(c: str) -> bool:
    return "\uac00" <= c <= "\ud7a3"


def _final_consonant(c: str) -> int:
    """The final consonant (받침) index of a Hangul syllable: 0 for none, 8 for ㄹ."""
    return (ord(c) - 0xAC00) % 28


def _agrees(stem_last: str, particle: str) -> bool:
    """Whether ``particle`` may follow ``stem_last`` (only Hangul syllables are checked)."""
    if not _is_hangul_syllable(stem_last):
        return True
    final = _final_consonant(stem_last)
    if particle in AFTER_CONSONANT:
        return final != 0
    if particle in AFTER_VOWEL:
        return final == 0
    if particle in AFTER_VOWEL_OR_RIEUL:  # never after 으: that is the 으로 form ("집으로" is not "집으" + 로)
        return final in (0, 8) and stem_last != "으"
    return True


def particle_may_go(answer: str, cut: int, min_stem: int, keep: Sequence[str]) -> bool:
    """Whether the particle ``answer[cut:]`` may go: the answer ends in Hangul, the particle ends its last word,
    what is left of that word ends in a letter and has ``min_stem`` characters, and the cut goes through no word
    of ``keep`` ending in the particle ("고양이라고" keeps 고양이: 라고 may go, 이라고 may not)."""
    if not 0 < cut < len(answer) or not _is_hangul_syllable(answer[-1]) or not answer[cut - 1].isalpha():
        return False
    if any(c.isspace() for c in answer[cut:]):
        return False
    word_start = len(answer) - len(answer.split()[-1])
    if cut - word_start < min_stem:
        return False
    return not any(answer[word_start:end].endswith(w) for end in range(cut + 1, len(answer) + 1) for w in keep)


def strip_particle(
    answer: str,
    particles: Sequence[str] = DEFAULT_PARTICLES,
    *,
    min_stem: int = 2,
    keep: Sequence[str] = DEFAULT_KEEP,
) -> str:
    """``answer`` without one trailing particle, by the rules of ``strip-particles`` (see its class).

    >>> strip_particle("세종대왕이")
    '세종대왕'
    >>> strip_particle("제주도")
    '제주도'
    """
    for particle in sorted(particles, key=len, reverse=True):
        cut = len(answer) - len(particle)
        if (
            answer.endswith(particle)
            and particle_may_go(answer, cut, min_stem, keep)
            and _agrees(answer[cut - 1], particle)
        ):
            return answer[:cut]
    return answer
