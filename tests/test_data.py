"""Loading corpora and questions in every supported format, deduplication, passage splitting, the bundled sample."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odqa_core.data import (
    FORMATS,
    check_input,
    context_id,
    deduplicate,
    detect_format,
    load_corpus,
    load_questions,
    sample_corpus_path,
    sample_questions_path,
    split_passages,
)
from odqa_core.errors import DataError, UsageError
from odqa_core.types import Document

# --------------------------------------------------------------------------------------------------- helpers


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_json(path: Path, payload) -> Path:
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


def data_error(call, *args, **kwargs) -> str:
    """Run ``call`` expecting a DataError and return its message, checked to be a single line."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


SQUAD = {
    "version": "test",
    "data": [
        {
            "title": "강",
            "paragraphs": [
                {
                    "context": "한강은 서울을 흐른다. 길이는 약 494킬로미터이다.",
                    "qas": [
                        {
                            "id": "a1",
                            "question": "한강은 어디를 흐르나?",
                            "answers": [{"text": "서울", "answer_start": 4}],
                        },
                        {
                            "id": "a2",
                            "question": "한강의 길이는?",
                            "answers": [
                                {"text": "약 494킬로미터", "answer_start": 17},
                                {"text": "494킬로미터", "answer_start": 19},
                            ],
                        },
                    ],
                },
                {
                    "context": "낙동강은 남한에서 가장 긴 강이다.",
                    "qas": [
                        {
                            "id": "a3",
                            "question": "남한에서 가장 긴 강은?",
                            "answers": [{"text": "낙동강", "answer_start": 0}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "반복",
            "paragraphs": [
                # The same context again under another article: one corpus document, two gold references.
                {
                    "context": "낙동강은 남한에서 가장 긴 강이다.",
                    "qas": [
                        {"id": "b1", "question": "가장 긴 강은?", "answers": [{"text": "낙동강", "answer_start": 0}]}
                    ],
                },
                {"context": "질문이 없는 문단.", "qas": []},
            ],
        },
    ],
}

CORPUS_ROWS = [
    {"id": "d1", "title": "One", "text": "alpha beta gamma"},
    {"id": "d2", "text": "delta epsilon"},
    {"id": 3, "title": "Three", "text": "zeta eta theta", "metadata": {"lang": "el"}},
]

QUESTION_ROWS = [
    {"id": "q1", "question": "first?", "answers": ["alpha"], "doc_ids": ["d1"]},
    {"id": "q2", "question": "second?", "answers": [{"text": "delta", "answer_start": 0}], "doc_ids": ["d2"]},
    {"id": "q3", "question": "third?", "answers": {"text": ["zeta", "eta"], "answer_start": [0, 5]}, "doc_ids": [3]},
    {"id": "q4", "question": "no answers?"},
]


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    return write_json(tmp_path / "squad.json", SQUAD)


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", CORPUS_ROWS)


@pytest.fixture
def questions_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "questions.jsonl", QUESTION_ROWS)


@pytest.fixture
def klue_wiki_file(tmp_path: Path) -> Path:
    payload = {
        "0": {"text": "첫 번째 문서.", "title": "하나", "document_id": 0, "corpus_source": "위키피디아"},
        "1": {"text": "두 번째 문서.", "title": "둘", "document_id": 17, "corpus_source": "위키피디아"},
        "2": {"text": "첫 번째 문서.", "title": "하나 (중복)", "document_id": 18, "corpus_source": "위키피디아"},
        "3": {"text": "세 번째 문서.", "title": "셋"},
    }
    return write_json(tmp_path / "wikipedia_documents.json", payload)


# --------------------------------------------------------------------------------------------------- formats


def test_detect_format(squad_file, corpus_file, questions_file, klue_wiki_file, tmp_path):
    listing = write_json(tmp_path / "list.json", CORPUS_ROWS)
    assert detect_format(squad_file) == "squad"
    assert detect_format(klue_wiki_file) == "klue-wiki"
    assert detect_format(corpus_file) == "jsonl"
    assert detect_format(str(questions_file)) == "jsonl"
    assert detect_format(listing) == "json-records"
    assert {"squad", "klue-wiki", "hf-dataset", "jsonl", "json-records"} == set(FORMATS)


def test_jsonl_content_under_json_suffix_is_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "corpus.json", CORPUS_ROWS)
    assert detect_format(path) == "jsonl"
    assert [d.id for d in load_corpus(path)] == ["d1", "d2", "3"]


def test_unrecognised_format(tmp_path):
    path = write_json(tmp_path / "weird.json", {"rows": 3})
    message = data_error(detect_format, path)
    assert "weird.json" in message and "not a recognised format" in message
    assert "weird.json" in data_error(load_corpus, path)


def test_squad_corpus_has_distinct_contexts_with_stable_ids(squad_file):
    docs = load_corpus(squad_file)
    assert [d.title for d in docs] == ["강", "강", "반복"]
    assert [d.text for d in docs] == [
        SQUAD["data"][0]["paragraphs"][0]["context"],
        SQUAD["data"][0]["paragraphs"][1]["context"],
        SQUAD["data"][1]["paragraphs"][1]["context"],
    ]
    assert [d.id for d in docs] == [context_id(d.text) for d in docs]
    assert all(re.fullmatch(r"ctx-[0-9a-f]{12}", d.id) for d in docs)
    assert [d.id for d in load_corpus(squad_file, dedupe=False)] == [d.id for d in docs]


def test_context_id_is_a_content_hash():
    assert context_id("같은 글") == context_id("같은 글") != context_id("다른 글")
    # A fixed value: ids must not change between runs, machines or versions.
    assert context_id("abc") == "ctx-a9993e364706"


def test_squad_questions(squad_file):
    questions = load_questions(squad_file)
    assert [q.id for q in questions] == ["a1", "a2", "a3", "b1"]
    docs = {d.id: d for d in load_corpus(squad_file)}
    a2 = questions[1]
    assert a2.text == "한강의 길이는?"
    assert a2.answers == ("약 494킬로미터", "494킬로미터")
    assert a2.answer_starts == (17, 19)
    assert a2.metadata["title"] == "강" and a2.metadata["article"] == 0
    for q in questions:
        (gold,) = q.doc_ids
        for answer, start in zip(q.answers, q.answer_starts, strict=True):
            assert docs[gold].text[start : start + len(answer)] == answer
    assert questions[2].doc_ids == questions[3].doc_ids  # same context in two articles


def test_klue_wiki_corpus(klue_wiki_file):
    docs = load_corpus(klue_wiki_file, dedupe=False)
    assert [d.id for d in docs] == ["0", "17", "18", "3"]  # document_id, else the key
    assert docs[1].title == "둘" and docs[1].text == "두 번째 문서."
    assert docs[1].metadata["corpus_source"] == "위키피디아"
    deduped = load_corpus(klue_wiki_file)
    assert [d.id for d in deduped] == ["0", "17", "3"]
    assert deduped[0].source_ids == ("0", "18")


def test_klue_wiki_is_not_questions(klue_wiki_file):
    message = data_error(load_questions, klue_wiki_file)
    assert "wikipedia_documents.json" in message and "not a questions file" in message


def test_jsonl_corpus(corpus_file):
    docs = load_corpus(corpus_file)
    assert [(d.id, d.title, d.text) for d in docs] == [
        ("d1", "One", "alpha beta gamma"),
        ("d2", "", "delta epsilon"),
        ("3", "Three", "zeta eta theta"),
    ]
    assert docs[2].metadata == {"lang": "el"}


def test_jsonl_questions_accept_every_answer_layout(questions_file):
    q1, q2, q3, q4 = load_questions(questions_file)
    assert (q1.answers, q1.answer_starts, q1.doc_ids) == (("alpha",), (), ("d1",))
    assert (q2.answers, q2.answer_starts, q2.doc_ids) == (("delta",), (0,), ("d2",))
    assert (q3.answers, q3.answer_starts, q3.doc_ids) == (("zeta", "eta"), (0, 5), ("3",))
    assert (q4.text, q4.answers, q4.answer_starts, q4.doc_ids) == ("no answers?", (), (), ())


def test_json_list_files(tmp_path):
    corpus = write_json(tmp_path / "corpus.json", CORPUS_ROWS)
    questions = write_json(tmp_path / "questions.json", QUESTION_ROWS)
    assert [d.id for d in load_corpus(corpus)] == ["d1", "d2", "3"]
    assert [q.id for q in load_questions(questions)] == ["q1", "q2", "q3", "q4"]


def test_document_to_dict_round_trips_through_jsonl(tmp_path):
    docs = deduplicate([Document("a", "same", "T"), Document("b", "same"), Document("c", "other", "U")])
    path = write_jsonl(tmp_path / "saved.jsonl", [d.to_dict() for d in docs])
    assert load_corpus(path) == docs


def test_split_and_stride_through_load_corpus(corpus_file):
    passages = load_corpus(corpus_file, split_words=2)
    assert [p.id for p in passages] == ["d1#0", "d1#1", "d2#0", "3#0", "3#1"]
    overlapping = load_corpus(corpus_file, split_words=2, stride=1)
    assert [p.text for p in overlapping[:2]] == ["alpha beta", "beta gamma"]
    with pytest.raises(UsageError, match="split_words"):
        load_corpus(corpus_file, stride=1)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "x", "text": "t"}).encode())
    assert load_corpus(path)[0].id == "x"
    listing = tmp_path / "bom.json"
    listing.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"id": "x", "text": "t"}]).encode())
    assert load_corpus(listing)[0].id == "x"


# --------------------------------------------------------------------------------------------------- KLUE datasets


@pytest.fixture
def klue_dataset_dir(tmp_path: Path) -> Path:
    datasets = pytest.importorskip("datasets")

    def rows(prefix: str, with_answers: bool = True) -> datasets.Dataset:
        columns = {
            "id": [f"{prefix}-1", f"{prefix}-2"],
            "question": ["첫 번째 문서는?", "두 번째 문서는?"],
            "context": ["첫 번째 문서.", "두 번째 문서."],
            "document_id": [0, 17],
            "title": ["하나", "둘"],
        }
        if with_answers:
            columns["answers"] = [
                {"answer_start": [0], "text": ["첫"]},
                {"answer_start": [0, 3], "text": ["두", "번째"]},
            ]
        return datasets.Dataset.from_dict(columns)

    root = tmp_path / "train_dataset"
    datasets.DatasetDict({"train": rows("train"), "validation": rows("valid")}).save_to_disk(str(root))
    datasets.DatasetDict({"validation": rows("test", with_answers=False)}).save_to_disk(
        str(tmp_path / "test_dataset")
    )
    rows("single").save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"train": rows("a"), "extra": rows("b")}).save_to_disk(str(tmp_path / "no_validation"))
    return root


def test_klue_dataset_questions(klue_dataset_dir):
    assert detect_format(klue_dataset_dir) == "hf-dataset"
    assert detect_format(f"{klue_dataset_dir}:train") == "hf-dataset"
    valid = load_questions(klue_dataset_dir)  # default split: validation
    assert [q.id for q in valid] == ["valid-1", "valid-2"]
    assert valid[1].answers == ("두", "번째") and valid[1].answer_starts == (0, 3)
    assert valid[1].doc_ids == ("17",) and valid[1].metadata["title"] == "둘"
    assert [q.id for q in load_questions(f"{klue_dataset_dir}:train")] == ["train-1", "train-2"]


def test_klue_dataset_without_answers_and_single_dataset(klue_dataset_dir):
    test = load_questions(klue_dataset_dir.parent / "test_dataset")
    assert [(q.id, q.answers, q.answer_starts) for q in test] == [("test-1", (), ()), ("test-2", (), ())]
    assert [q.id for q in load_questions(klue_dataset_dir.parent / "single")] == ["single-1", "single-2"]


def test_klue_dataset_split_errors(klue_dataset_dir):
    message = data_error(load_questions, f"{klue_dataset_dir}:nope")
    assert "train_dataset" in message and "'nope'" in message and "train, validation" in message
    message = data_error(load_questions, klue_dataset_dir.parent / "no_validation")
    assert "no_validation" in message and ":SPLIT" in message
    message = data_error(load_questions, f"{klue_dataset_dir.parent / 'single'}:train")
    assert "single" in message and "without splits" in message


def test_klue_dataset_as_corpus_uses_document_ids(klue_dataset_dir):
    docs = load_corpus(klue_dataset_dir)
    assert [(d.id, d.title, d.text) for d in docs] == [("0", "하나", "첫 번째 문서."), ("17", "둘", "두 번째 문서.")]


def test_klue_dataset_needs_the_datasets_package(tmp_path, monkeypatch):
    saved = tmp_path / "train_dataset"
    saved.mkdir()
    (saved / "dataset_dict.json").write_text('{"splits": ["validation"]}', encoding="utf-8")
    assert detect_format(saved) == "hf-dataset"  # recognised without the package
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    message = data_error(load_questions, saved)
    assert "train_dataset" in message and "pip install 'odqa[klue]'" in message
    assert "pip install 'odqa[klue]'" in data_error(load_corpus, f"{saved}:validation")


def test_damaged_klue_dataset(tmp_path):
    pytest.importorskip("datasets")
    saved = tmp_path / "broken"
    saved.mkdir()
    (saved / "state.json").write_text("{}", encoding="utf-8")
    message = data_error(load_questions, saved)
    assert "broken" in message and "cannot read the saved dataset" in message


# --------------------------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    message = data_error(load_corpus, tmp_path / "absent.jsonl")
    assert "absent.jsonl" in message and "no such file" in message
    assert "absent.json" in data_error(load_questions, tmp_path / "absent.json")
    assert "absent.jsonl" in data_error(detect_format, tmp_path / "absent.jsonl")


def test_directory_where_a_file_is_expected(tmp_path):
    folder = tmp_path / "corpus_dir"
    folder.mkdir()
    message = data_error(load_corpus, folder)
    assert "corpus_dir" in message and "is a directory" in message
    assert "corpus_dir" in data_error(load_questions, folder)


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n\n{"id": "b", "text": "y"\n', encoding="utf-8")
    message = data_error(load_corpus, path)
    assert message.startswith(f"{path} line 3: malformed JSON (")


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text('{"data": [\n  {"title": "x",, }\n]}', encoding="utf-8")
    message = data_error(load_questions, path)
    assert "squad.json line 2 column" in message and "malformed JSON" in message


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (
            "c.jsonl",
            '{"id": "a", "text": "x"}\n{"id": "b", "text": "unterminated',
            "Unterminated string at column 21",
        ),
        ("c.jsonl", '{"id": "a", "text": "tab\there"}\n', "Invalid control character at column"),
        ("c.json", '[{"id": "a", "text": "unterminated', "line 1 column 22: malformed JSON (Unterminated string)"),
    ],
)
def test_json_messages_never_say_at_at(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    message = data_error(load_corpus, path)
    assert problem in message and "at at" not in message and not message.endswith("at)")


def test_check_input_reads_nothing_and_fails_like_loading(tmp_path):
    present = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": "x?"}])
    check_input(present)
    check_input(str(present))
    with pytest.raises(DataError, match="absent.jsonl: no such file or directory"):
        check_input(tmp_path / "absent.jsonl")
    with pytest.raises(DataError, match="is a directory"):
        check_input(tmp_path)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe not json at all")
    check_input(garbage)  # only existence and access: its content is the loader's business


def test_non_object_jsonl_line_and_bad_bytes(tmp_path):
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"id": "a", "text": "x"}, ["not", "an", "object"]])
    assert "corpus.jsonl line 2: expected a JSON object" in data_error(load_corpus, path)
    raw = tmp_path / "raw.jsonl"
    raw.write_bytes(b'{"id": "a", "text": "x"}\n{"id": "b", "text": "\xff"}\n')
    assert "raw.jsonl line 2: not UTF-8" in data_error(load_corpus, raw)


def test_empty_question_text_names_the_question(tmp_path):
    path = write_jsonl(
        tmp_path / "questions.jsonl", [{"id": "q1", "question": "ok?"}, {"id": "q2", "question": "  "}]
    )
    message = data_error(load_questions, path)
    assert "questions.jsonl line 2" in message and "'q2'" in message and "empty" in message
    squad = {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "z9", "question": ""}]}]}]}
    message = data_error(load_questions, write_json(tmp_path / "squad.json", squad))
    assert "squad.json" in message and "'z9'" in message


def test_empty_document_text_names_the_document(tmp_path):
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"id": "a", "text": "x"}, {"id": "b7", "text": " \n "}])
    message = data_error(load_corpus, path)
    assert "corpus.jsonl line 2" in message and "'b7'" in message and "empty text" in message
    wiki = write_json(tmp_path / "wikipedia_documents.json", {"0": {"text": "", "document_id": 44}})
    message = data_error(load_corpus, wiki)
    assert "wikipedia_documents.json" in message and "'44'" in message


def test_missing_fields(tmp_path):
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"text": "no id"}])
    assert "corpus.jsonl line 1" in data_error(load_corpus, path)
    path = write_jsonl(tmp_path / "corpus2.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "body": "y"}])
    assert "corpus2.jsonl line 2" in data_error(load_corpus, path)
    path = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": "x?"}, {"id": "q2", "answers": ["y"]}])
    assert "q.jsonl line 2" in data_error(load_questions, path)


def test_bad_answers(tmp_path):
    for n, answers in enumerate([[""], [{"text": "a", "answer_start": -1}], {"text": ["a"], "answer_start": []}, 5]):
        path = write_jsonl(tmp_path / f"q{n}.jsonl", [{"id": "q1", "question": "x?", "answers": answers}])
        message = data_error(load_questions, path)
        assert f"q{n}.jsonl line 1" in message and "'q1'" in message


def test_duplicate_ids(tmp_path):
    rows = [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}]
    message = data_error(load_corpus, write_jsonl(tmp_path / "corpus.jsonl", rows))
    assert "corpus.jsonl line 3" in message and "duplicate document id 'a'" in message and "line 1" in message
    # The same record twice is harmless: it is kept once.
    same = write_jsonl(tmp_path / "same.jsonl", [{"id": "a", "text": "x"}, {"id": "a", "text": "x"}])
    assert [d.id for d in load_corpus(same, dedupe=False)] == ["a"]
    rows = [{"id": "q", "question": "x?"}, {"id": "q", "question": "y?"}]
    message = data_error(load_questions, write_jsonl(tmp_path / "questions.jsonl", rows))
    assert "questions.jsonl line 2" in message and "duplicate question id 'q'" in message


def test_no_questions_and_no_documents(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert data_error(load_corpus, empty) == f"{empty}: no documents"
    assert data_error(load_questions, empty) == f"{empty}: no questions"
    listing = write_json(tmp_path / "empty.json", [])
    assert data_error(load_corpus, listing) == f"{listing}: no documents"
    squad = {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": []}]}]}
    path = write_json(tmp_path / "squad.json", squad)
    assert data_error(load_questions, path) == f"{path}: no questions"
    assert data_error(load_corpus, write_json(tmp_path / "nothing.json", {"data": []})).endswith("no documents")


def test_corpus_and_questions_files_swapped(corpus_file, questions_file):
    message = data_error(load_questions, corpus_file)
    assert "corpus.jsonl" in message and "not questions" in message and "corpus" in message
    message = data_error(load_corpus, questions_file)
    assert "questions.jsonl" in message and "not corpus documents" in message


# --------------------------------------------------------------------------------------------------- dedup


def test_deduplicate_keeps_every_source_id():
    docs = [
        Document("a", "same text", "A"),
        Document("b", "other"),
        Document("c", "  same text\n", "C"),
        Document("d", "other"),
        Document("e", "unique", metadata={"k": 1}),
    ]
    out = deduplicate(docs)
    assert [d.id for d in out] == ["a", "b", "e"]
    assert out[0].source_ids == ("a", "c") and out[0].title == "A" and out[0].text == "same text"
    assert out[1].source_ids == ("b", "d")
    assert out[2] is docs[4] and out[2].source_ids == ("e",)
    # Deduplicating again merges the merged documents' ids, in order, without repeats.
    again = deduplicate([*out, Document("f", "same text")])
    assert again[0].source_ids == ("a", "c", "f")


def test_gold_ids_map_to_deduplicated_documents():
    docs = deduplicate([Document("x1", "t"), Document("x2", "t")])
    owner = {source: doc.id for doc in docs for source in doc.source_ids}
    assert owner == {"x1": "x1", "x2": "x1"}


# --------------------------------------------------------------------------------------------------- passages


def naive_windows(text: str, words: int, stride: int) -> list[str]:
    tokens = text.split()
    if not tokens:
        return []
    out, start = [], 0
    while True:
        out.append(" ".join(tokens[start : start + words]))
        if start + words >= len(tokens):
            return out
        start += stride


def test_split_windows_ids_titles_and_offsets():
    doc = Document("d", "one two three four five six seven", "T")
    passages = split_passages([doc], 3)
    assert [p.id for p in passages] == ["d#0", "d#1", "d#2"]
    assert [p.text for p in passages] == ["one two three", "four five six", "seven"]
    assert all(p.title == "T" and p.source_ids == ("d",) for p in passages)
    for p in passages:
        assert doc.text[p.metadata["offset"] : p.metadata["offset"] + len(p.text)] == p.text


def test_split_stride_overlap():
    doc = Document("d", "a b c d e f g")
    assert [p.text for p in split_passages([doc], 4, 2)] == ["a b c d", "c d e f", "e f g"]
    assert [p.metadata["offset"] for p in split_passages([doc], 4, 2)] == [0, 4, 8]
    # Windows stop at the first one reaching the end: no trailing window inside the previous one.
    assert [p.text for p in split_passages([Document("d", "a b c d e f")], 4, 2)] == ["a b c d", "c d e f"]


def test_short_documents_stay_one_passage():
    docs = [Document("s", "  just three words\n"), Document("e", "exactly four words here")]
    passages = split_passages(docs, 4)
    assert [(p.id, p.text, p.metadata["offset"]) for p in passages] == [
        ("s#0", "just three words", 2),
        ("e#0", "exactly four words here", 0),
    ]
    assert split_passages([Document("w", " \t\n")], 4) == []


def test_split_keeps_inner_whitespace_and_unicode_spaces():
    text = "첫째\t둘째\n\n셋째\u3000넷째 다섯째"
    passages = split_passages([Document("k", text)], 2)
    assert [p.text for p in passages] == ["첫째\t둘째", "셋째\u3000넷째", "다섯째"]
    assert [p.metadata["offset"] for p in passages] == [0, 7, 13]


def test_split_carries_source_ids_of_deduplicated_documents():
    docs = deduplicate([Document("a", "x y z"), Document("b", "x y z")])
    passages = split_passages(docs, 2)
    assert [p.source_ids for p in passages] == [("a", "b"), ("a", "b")]


@pytest.mark.parametrize(("words", "stride"), [(0, None), (-3, None), (2, 0), (2, 3), (2.5, None), (True, None)])
def test_split_validates_words_and_stride(words, stride):
    with pytest.raises(UsageError):
        split_passages([Document("d", "a b c")], words, stride)


def test_bad_window_fails_before_reading(tmp_path):
    with pytest.raises(UsageError, match="stride"):
        load_corpus(tmp_path / "absent.jsonl", split_words=3, stride=4)


def test_every_space_character_is_below_the_lookup_limit():
    from odqa_core.data import _IS_SPACE, _SPACE_LIMIT

    spaces = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert max(spaces) < _SPACE_LIMIT
    assert [c for c in range(_SPACE_LIMIT) if _IS_SPACE[c]] == spaces


_WORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6).filter(lambda w: not w.isspace())
_GAP = st.sampled_from([" ", "  ", "\t", "\n", "\u3000", "\xa0", " \n "])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.lists(_WORD, max_size=25), _GAP, st.booleans()), min_size=1, max_size=6),
    st.integers(1, 8),
    st.integers(1, 8),
)
def test_split_matches_a_plain_python_windowing(docs, words, stride):
    stride = min(stride, words)
    documents = [
        Document(f"d{i}", (gap if pad else "") + gap.join(tokens) + (gap if pad else ""))
        for i, (tokens, gap, pad) in enumerate(docs)
    ]
    passages = split_passages(documents, words, stride)
    expected = [w for d in documents for w in naive_windows(d.text, words, stride)]
    assert [" ".join(p.text.split()) for p in passages] == expected
    by_id = {d.id: d for d in documents}
    for p in passages:
        parent = by_id[p.id.rsplit("#", 1)[0]]
        offset = p.metadata["offset"]
        assert parent.text[offset : offset + len(p.text)] == p.text
        assert p.text == p.text.strip()


def test_split_many_documents_in_chunks(monkeypatch):
    import odqa_core.data as data

    monkeypatch.setattr(data, "_CHUNK_CHARS", 50)  # force many chunks
    documents = [Document(str(i), " ".join(f"w{i}_{j}" for j in range(i % 13 + 1))) for i in range(200)]
    passages = split_passages(documents, 3, 2)
    assert [" ".join(p.text.split()) for p in passages] == [w for d in documents for w in naive_windows(d.text, 3, 2)]


# --------------------------------------------------------------------------------------------------- sample


def test_sample_loads_and_every_answer_is_in_its_gold_document():
    raw = load_corpus(sample_corpus_path(), dedupe=False)
    docs = load_corpus(sample_corpus_path())
    questions = load_questions(sample_questions_path())
    assert 55 <= len(raw) <= 65 and len(docs) == len(raw) - 2  # two exact duplicates
    assert 90 <= len(questions) <= 120
    assert [d.id for d in raw] == [f"doc-{n:03d}" for n in range(1, len(raw) + 1)]
    assert [q.id for q in questions] == [f"q-{n:03d}" for n in range(1, len(questions) + 1)]
    owner = {source: doc for doc in docs for source in doc.source_ids}
    for q in questions:
        assert q.answers and q.doc_ids, q.id
        for gold in q.doc_ids:
            for answer in q.answers:
                assert answer in owner[gold].text, (q.id, answer)
    assert any(q.doc_ids[0] != owner[q.doc_ids[0]].id for q in questions)  # a gold id that dedup merged away


def test_sample_languages_and_lengths():
    hangul = re.compile("[가-힣]")
    raw = load_corpus(sample_corpus_path(), dedupe=False)
    korean_docs = sum(bool(hangul.search(d.text)) for d in raw)
    assert 0.6 <= korean_docs / len(raw) <= 0.75
    assert all(60 <= len(d.text.split()) <= 150 and d.title for d in raw)
    questions = load_questions(sample_questions_path())
    by_id = {d.id: d for d in raw}
    for q in questions:
        assert bool(hangul.search(q.text)) == bool(hangul.search(by_id[q.doc_ids[0]].text)), q.id


# --------------------------------------------------------------------------------------------------- KorQuAD


@pytest.mark.korquad
def test_korquad_dev(korquad_path):
    assert detect_format(korquad_path) == "squad"
    docs = load_corpus(korquad_path)
    questions = load_questions(korquad_path)
    # 964 paragraphs, three of which repeat an earlier context word for word: 961 distinct contexts.
    assert len(docs) == 961
    assert len(load_corpus(korquad_path, dedupe=False)) == 961
    paragraphs = json.loads(korquad_path.read_text(encoding="utf-8"))["data"]
    assert sum(len(article["paragraphs"]) for article in paragraphs) == 964
    assert len(questions) == 5774
    by_id = {d.id: d for d in docs}
    for q in questions:
        (gold,) = q.doc_ids
        assert q.answers and len(q.answer_starts) == len(q.answers)
        for answer, start in zip(q.answers, q.answer_starts):
            assert by_id[gold].text[start : start + len(answer)] == answer, q.id
    assert len({q.metadata["article"] for q in questions}) == 140
    passages = load_corpus(korquad_path, split_words=30)
    assert 4200 <= len(passages) <= 4400  # 4,286 with consecutive 30-word windows
    assert {p.source_ids[0] for p in passages} == set(by_id)
