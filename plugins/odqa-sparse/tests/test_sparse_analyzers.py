from __future__ import annotations

import json
import sys
import threading
import time
import types

import pytest
from odqa_sparse import analyzers
from odqa_sparse.analyzers import CharNgramAnalyzer, HFTokenizerAnalyzer, KiwiAnalyzer, RegexAnalyzer

from odqa_core import DataError, UnknownComponentError, UsageError, plugins

TEXTS = ["Hello, 세계! 서울의 Han-River는 2024년에", "", "  ", "ÉCOLE école_Ünïcode", "김치는 배추로 만든다."]


def test_registered_under_their_names():
    for name, cls in [
        ("regex", RegexAnalyzer),
        ("char-ngram", CharNgramAnalyzer),
        ("hf", HFTokenizerAnalyzer),
        ("kiwi", KiwiAnalyzer),
    ]:
        assert plugins.get_component_class("analyzer", name) is cls


def test_unknown_analyzer_name():
    with pytest.raises(UnknownComponentError, match="nope"):
        plugins.create("analyzer", "nope")


def test_regex_default_is_lowercase_unicode_words():
    a = RegexAnalyzer()
    assert a.tokenize(TEXTS[0]) == ["hello", "세계", "서울의", "han", "river는", "2024년에"]
    assert a.tokenize("ÉCOLE école_Ünïcode") == ["école", "école_ünïcode"]
    assert a.tokenize("") == []


def test_regex_options():
    assert RegexAnalyzer(lowercase=False).tokenize("Han River") == ["Han", "River"]
    assert RegexAnalyzer(pattern=r"[가-힣]+").tokenize("서울 Seoul 부산") == ["서울", "부산"]
    with pytest.raises(UsageError, match=r"\[unclosed"):
        RegexAnalyzer(pattern="[unclosed")
    with pytest.raises(UsageError, match="'yes'"):
        RegexAnalyzer(lowercase="yes")


@pytest.mark.parametrize("cls", [RegexAnalyzer, CharNgramAnalyzer])
@pytest.mark.parametrize("pattern", [r"\w*", r"\b", r"(?=\w)", "a|", r"[0-9]?", "^", r"\s*\w*"])
def test_patterns_that_can_match_the_empty_string_are_refused(cls, pattern):
    with pytest.raises(UsageError, match="can match the empty string") as info:
        cls(pattern=pattern)
    assert repr(pattern) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UsageError, match="can match the empty string"):
        plugins.create("retriever", "bm25", {"analyzer": cls.name, "analyzer_options": {"pattern": pattern}})


def test_several_capturing_groups_are_refused():
    with pytest.raises(UsageError, match="2 capturing groups.*\\(\\?:"):
        RegexAnalyzer(pattern=r"(\w)(\w)")


@pytest.mark.parametrize("cls", [RegexAnalyzer, CharNgramAnalyzer])
def test_a_capturing_group_that_matches_nothing_gives_no_empty_token(cls):
    analyzer = cls(pattern=r"[a-z](\d*)")
    assert analyzer.tokenize("a12 b c3") == ["12", "3"]
    assert analyzer.tokenize_many(["b c", "x9"]) == [[], ["9"]]


def test_char_ngrams_within_words():
    a = CharNgramAnalyzer()
    assert a.tokenize("서울에서 맛집") == ["서울", "울에", "에서", "맛집"]
    assert a.tokenize("a 한강") == ["a", "한강"]
    assert CharNgramAnalyzer(n=3).tokenize("서울특별시, ok") == ["서울특", "울특별", "특별시", "ok"]
    assert CharNgramAnalyzer(n=1).tokenize("AB c") == ["a", "b", "c"]
    for bad in (0, -1, 2.5, True, "2"):
        with pytest.raises(UsageError, match="'n'"):
            CharNgramAnalyzer(n=bad)


@pytest.mark.parametrize("analyzer", [RegexAnalyzer(), CharNgramAnalyzer(), CharNgramAnalyzer(n=3)])
def test_tokenize_many_equals_tokenize(analyzer):
    assert analyzer.tokenize_many(TEXTS) == [analyzer.tokenize(t) for t in TEXTS]
    assert analyzer.tokenize_many(iter(TEXTS)) == [analyzer.tokenize(t) for t in TEXTS]


@pytest.mark.parametrize("analyzer", [RegexAnalyzer(lowercase=False), CharNgramAnalyzer(n=4)])
def test_config_is_json_and_rebuilds(analyzer):
    config = json.loads(json.dumps(analyzer.config()))
    rebuilt = type(analyzer).from_options(config)
    assert rebuilt.config() == analyzer.config()
    assert rebuilt.tokenize_many(TEXTS) == analyzer.tokenize_many(TEXTS)


def test_unknown_option_is_a_usage_error():
    with pytest.raises(UsageError, match="no_such"):
        RegexAnalyzer.from_options({"no_such": 1})


# --- hf --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]", "[CLS]", "[SEP]"])
    corpus = ["the han river flows through seoul", "busan is a port city", "서울 한강 부산 항구"] * 20
    tok.train_from_iterator(corpus, trainer)
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    tok.save(str(path))
    return path


def test_hf_tokenizer_from_file_and_directory(tokenizer_file):
    by_file = HFTokenizerAnalyzer(path=str(tokenizer_file))
    by_dir = HFTokenizerAnalyzer(path=str(tokenizer_file.parent))
    tokens = by_file.tokenize("The Han River")
    assert tokens[:2] == ["the", "han"]
    assert "[CLS]" not in tokens
    assert by_dir.tokenize_many(TEXTS) == by_file.tokenize_many(TEXTS) == [by_file.tokenize(t) for t in TEXTS]
    assert by_file.tokenize_many([]) == []


def test_hf_missing_path(tmp_path):
    with pytest.raises(UsageError, match="path"):
        HFTokenizerAnalyzer()
    analyzer = HFTokenizerAnalyzer(path=str(tmp_path / "missing"))  # __init__ stays light: no file access
    with pytest.raises(DataError, match="missing"):
        analyzer.warm_up()


def test_hf_unreadable_file(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="cannot read tokenizer"):
        HFTokenizerAnalyzer(path=str(bad)).warm_up()


# --- kiwi ------------------------------------------------------------------------------------------------------


def test_kiwi_keeps_content_morphemes():
    pytest.importorskip("kiwipiepy")
    a = KiwiAnalyzer()
    tokens = a.tokenize("서울특별시에서 맛있는 음식을 먹었다. Python 3.11")
    for kept in ("서울", "특별시", "맛있", "음식", "먹", "python", "3.11"):
        assert kept in tokens
    for dropped in ("에서", "을", "었", "다", "."):
        assert dropped not in tokens
    texts = ["김치는 배추로 만든다.", "", "반갑습니다"]
    assert a.tokenize_many(texts) == [a.tokenize(t) for t in texts]
    assert "반갑" in a.tokenize("반갑습니다")  # irregular adjective (VA-I) stems are kept too


#: Edge cases for kiwi's batch path: empty, whitespace only, emoji, Korean/English/numbers mixed, URL, hanja, jamo.
KIWI_EDGE_TEXTS = [
    "",
    "   ",
    "\n\t",
    "😀👍🏽 좋아요!!",
    "iPhone 15 Pro는 2023년 9월에 출시됐다",
    "COVID-19 백신 접종률 87.5%",
    "https://example.com 에서 확인하세요",
    "漢字와 한글 ㅋㅋㅋ",
    "서울특별시에서 맛있는 음식을 먹었다. Python 3.11",
]


@pytest.mark.parametrize("num_workers", [1, 2])
def test_kiwi_batches_give_the_tokens_of_one_text_at_a_time(num_workers):
    pytest.importorskip("kiwipiepy")
    from odqa_core import data

    questions = [q.text for q in data.load_questions(data.sample_questions_path())]
    a = KiwiAnalyzer(num_workers=num_workers)
    texts = KIWI_EDGE_TEXTS + questions
    expected = [a.tokenize(t) for t in texts]
    assert a.tokenize_many(texts) == expected
    assert a.tokenize_many(iter(texts[:3])) == [[], [], []]
    # analyzers share the model: batches from several threads at once still get their own tokens
    got = {}
    others = [KiwiAnalyzer(num_workers=num_workers) for _ in range(3)]
    threads = [threading.Thread(target=lambda i=i: got.update({i: others[i].tokenize_many(texts)})) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {i: expected for i in range(3)}


class _FakeToken:
    def __init__(self, form, tag):
        self.form, self.tag = form, tag


def _fake_kiwipiepy(monkeypatch):
    """A stand-in kiwipiepy whose Kiwi is slow to load and records how it is built and called."""
    built, calls = [], []

    class Kiwi:
        def __init__(self, **kwargs):
            time.sleep(0.05)  # long enough for concurrent warm_ups to overlap
            built.append(kwargs)

        def tokenize(self, text):
            calls.append(text)
            if isinstance(text, str):
                return [_FakeToken(w, "NNG") for w in text.split()]
            return iter([[_FakeToken(w, "NNG") for w in t.split()] for t in text])

    monkeypatch.setitem(sys.modules, "kiwipiepy", types.SimpleNamespace(Kiwi=Kiwi))
    monkeypatch.setattr(analyzers, "_KIWIS", {})  # a process that has not loaded a model yet
    return built, calls


def test_kiwi_model_loads_once_per_process_for_the_same_options(monkeypatch):
    built, _ = _fake_kiwipiepy(monkeypatch)
    many = [KiwiAnalyzer() for _ in range(6)]
    threads = [threading.Thread(target=a.warm_up) for a in many]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [{}]
    assert all(a._kiwi is many[0]._kiwi for a in many)
    # options that change the model or its threads get their own, once
    two = KiwiAnalyzer(num_workers=2)
    two.warm_up()
    KiwiAnalyzer(num_workers=2, tags=["NNP"]).warm_up()
    KiwiAnalyzer(model_type="other").warm_up()
    assert built == [{}, {"num_workers": 2}, {"model_type": "other"}]
    assert two._kiwi is not many[0]._kiwi


def test_kiwi_tokenizes_a_batch_in_one_call(monkeypatch):
    _, calls = _fake_kiwipiepy(monkeypatch)
    a = KiwiAnalyzer()
    assert a.tokenize_many(["가 나", "", "다"]) == [["가", "나"], [], ["다"]]
    assert calls == [["가 나", "", "다"]]


def test_kiwi_load_failure_is_not_cached(monkeypatch):
    built, _ = _fake_kiwipiepy(monkeypatch)

    class Broken:
        def __init__(self, **kwargs):
            raise OSError("model files missing")

    monkeypatch.setitem(sys.modules, "kiwipiepy", types.SimpleNamespace(Kiwi=Broken))
    with pytest.raises(DataError, match="cannot start kiwipiepy"):
        KiwiAnalyzer().warm_up()
    assert analyzers._KIWIS == {}


def test_kiwi_options_are_checked():
    with pytest.raises(UsageError, match="tags"):
        KiwiAnalyzer(tags="NNG")
    with pytest.raises(UsageError, match="num_workers"):
        KiwiAnalyzer(num_workers=-5)
    assert KiwiAnalyzer(tags=["NNP"]).config()["tags"] == ["NNP"]


def test_missing_optional_packages_say_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)
    monkeypatch.setattr(analyzers, "_KIWIS", {})  # no model loaded by an earlier test
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(UsageError, match=r"pip install 'odqa-sparse\[kiwi\]'"):
        KiwiAnalyzer().warm_up()
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(UsageError, match=r"pip install 'odqa-sparse\[hf\]'"):
        HFTokenizerAnalyzer(path=str(tmp_path)).warm_up()


def test_package_exports_are_lazy():
    import odqa_sparse

    assert odqa_sparse.BM25Retriever.name == "bm25"
    assert odqa_sparse.SparseEmbedding.__name__ == "SparseEmbedding"
    with pytest.raises(AttributeError):
        odqa_sparse.NoSuchThing  # noqa: B018
