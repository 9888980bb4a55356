from __future__ import annotations

import numpy as np
import pytest

from odqa_core.evaluation import Hit, evaluate_retrieval, hits_from_results
from odqa_core.types import Document, Question, RankedResults


def _hit(doc_id, text=None, sources=None):
    return Hit(doc_id, tuple(sources or (doc_id,)), text)


def test_doc_level_accuracy_recall_and_mrr_by_hand():
    questions = [
        Question("a", "?", doc_ids=("d1",)),
        Question("b", "?", doc_ids=("d2", "d3")),
        Question("c", "?", doc_ids=("d9",)),
    ]
    ranked = [
        [_hit("d1"), _hit("d2"), _hit("d3")],  # first hit at rank 1
        [_hit("d5"), _hit("d3"), _hit("d2")],  # first at 2; both gold by rank 3
        [_hit("d1"), _hit("d2"), _hit("d3")],  # never
    ]
    report = evaluate_retrieval(questions, ranked, ks=(1, 2, 3))
    doc = report.metrics["doc"]
    assert doc["acc@1"] == pytest.approx(1 / 3)
    assert doc["acc@2"] == pytest.approx(2 / 3)
    assert doc["mrr@1"] == pytest.approx(1 / 3)
    assert doc["mrr@3"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert doc["recall@2"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert doc["recall@3"] == pytest.approx((1 + 1 + 0) / 3)
    assert "answer" not in report.metrics  # no texts, no answer-level numbers


def test_passages_hit_through_source_ids_and_count_each_gold_once():
    questions = [Question("a", "?", doc_ids=("d1", "d2"))]
    ranked = [[_hit("d1#0", sources=["d1"]), _hit("d1#1", sources=["d1"]), _hit("d2#0", sources=["d2", "d7"])]]
    report = evaluate_retrieval(questions, ranked, ks=(1, 2, 3))
    assert report.metrics["doc"]["acc@1"] == 1.0
    assert report.metrics["doc"]["recall@2"] == 0.5
    assert report.metrics["doc"]["recall@3"] == 1.0


def test_answer_containment_normalises_width_case_and_space():
    questions = [
        Question("a", "?", answers=("Seoul  Tower",)),
        Question("b", "?", answers=("１９８８년", "1988")),
        Question("c", "?", answers=("없음",)),
    ]
    ranked = [
        [_hit("p1", "nothing here"), _hit("p2", "the seoul tower stands")],
        [_hit("p3", "서울 올림픽은 1988년에 열렸다")],
        [_hit("p4", "아무것도")],
    ]
    report = evaluate_retrieval(questions, ranked, ks=(1, 2))
    assert report.metrics["answer"]["acc@1"] == pytest.approx(1 / 3)
    assert report.metrics["answer"]["acc@2"] == pytest.approx(2 / 3)
    assert report.metrics["answer"]["mrr@2"] == pytest.approx((0.5 + 1) / 3)


def test_cutoffs_beyond_depth_are_dropped_and_table_prints():
    questions = [Question("a", "?", answers=("x",), doc_ids=("d1",))]
    report = evaluate_retrieval(questions, [[_hit("d1", "x")]], ks=(1, 5, 100))
    assert report.ks == (1,)  # 5 and 100 were never retrieved; depth 1 is already listed
    table = report.table()
    assert "doc-acc" in table and "answer-mrr" in table and "depth 1" in table
    assert report.to_json()["metrics"]["doc"]["acc@1"] == 1.0


def test_hits_from_results_carry_text_and_sources():
    docs = [Document("p0", "alpha", metadata={"source_ids": ("d0",)}), Document("p1", "beta")]
    results = RankedResults(np.array([[1, 0]]), np.array([[2.0, 1.0]], np.float32), docs)
    hits = hits_from_results(results)
    assert hits == [[Hit("p1", ("p1",), "beta"), Hit("p0", ("d0",), "alpha")]]


def test_mismatched_lengths_are_a_bug():
    with pytest.raises(ValueError):
        evaluate_retrieval([Question("a", "?")], [], ks=(1,))
