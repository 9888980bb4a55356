"""The bundled sample's training questions: answerable from their documents and disjoint from the evaluation set."""

from __future__ import annotations

from collections import Counter

import pytest

from odqa_core.data import (
    load_corpus,
    load_questions,
    sample_corpus_path,
    sample_questions_path,
    sample_train_questions_path,
)


@pytest.fixture(scope="module")
def documents():
    return {doc.id: doc for doc in load_corpus(sample_corpus_path(), dedupe=False)}


@pytest.fixture(scope="module")
def train():
    return load_questions(sample_train_questions_path())


@pytest.fixture(scope="module")
def evaluation():
    return load_questions(sample_questions_path())


def test_the_training_file_is_bundled_next_to_the_evaluation_file():
    assert sample_train_questions_path().is_file()
    assert sample_train_questions_path().parent == sample_questions_path().parent


def test_every_training_question_has_an_answer_and_known_gold_documents(train, documents):
    assert 150 <= len(train) <= 220
    for q in train:
        assert q.text.strip() and q.answers, q.id
        assert q.doc_ids and set(q.doc_ids) <= set(documents), q.id


def test_every_answer_occurs_verbatim_in_one_of_its_documents(train, documents):
    for q in train:
        for answer in q.answers:
            assert answer == answer.strip(), (q.id, answer)
            assert any(answer in documents[doc_id].text for doc_id in q.doc_ids), (q.id, answer)


def test_ids_are_unique_and_disjoint_from_the_evaluation_ids(train, evaluation):
    train_ids = [q.id for q in train]
    assert len(set(train_ids)) == len(train_ids)
    assert all(qid.startswith("t-") for qid in train_ids)
    assert not set(train_ids) & {q.id for q in evaluation}


def test_no_training_question_repeats_an_evaluation_question(train, evaluation, documents):
    # Documents with identical texts are one document here, so a duplicate's evaluation answers count for both.
    text_of = {doc_id: doc.text.strip() for doc_id, doc in documents.items()}

    def pairs(questions):
        return {(text_of[d], a.strip().casefold()) for q in questions for d in q.doc_ids for a in q.answers}

    assert not pairs(train) & pairs(evaluation)
    assert not {q.text.strip() for q in train} & {q.text.strip() for q in evaluation}


def test_every_document_has_at_least_two_training_questions(train, documents):
    counts = Counter(doc_id for q in train for doc_id in q.doc_ids)
    assert {doc_id: counts[doc_id] for doc_id in documents if counts[doc_id] < 2} == {}
