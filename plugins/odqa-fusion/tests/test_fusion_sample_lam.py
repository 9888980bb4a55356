"""``cross.lam="sample"``: the demo's λ, chosen on the bundled sample's tuning training questions, never below the
other retrievers alone there; and the λ actually used is what a run records."""

from __future__ import annotations

import numpy as np
import pytest
from fusion_testdata import VectorRetriever
from odqa_fusion.fusers import SAMPLE_LAM_GRID, SAMPLE_LAM_KS, CrossFuser

from odqa_core import Document, UsageError, data, plugins
from odqa_core.evaluation import evaluate_retrieval, hits_from_results
from odqa_core.spec import PipelineSpec


@pytest.fixture(scope="module")
def sample_documents():
    return data.load_corpus(data.sample_corpus_path())


@pytest.fixture(scope="module")
def tuning_questions():
    return data.sample_tuning_split(data.load_questions(data.sample_train_questions_path()))[1]


@pytest.fixture(scope="module")
def bm25(sample_documents):
    retriever = plugins.create("retriever", "bm25", {})
    retriever.index(sample_documents)
    return retriever


class GoldRetriever(VectorRetriever):
    """Random vectors, plus a large score for the gold passage of the sample's tuning questions: a retriever that
    knows what BM25 misses, so fusing it in must pay off."""

    name = "gold"

    def score_all(self, queries):
        gold = {q.text: set(q.doc_ids) for q in data.load_questions(data.sample_train_questions_path())}
        scores = super().score_all(queries)
        for row, query in enumerate(queries):
            for column, document in enumerate(self.documents):
                if set(document.source_ids) & gold.get(query, set()):
                    scores[row, column] += 100.0
        return scores


def accuracies(questions, ranked):
    metrics = evaluate_retrieval(questions, hits_from_results(ranked), SAMPLE_LAM_KS).metrics["doc"]
    return {f"acc@{k}": metrics[f"acc@{k}"] for k in SAMPLE_LAM_KS}


@pytest.mark.parametrize("other", [VectorRetriever, GoldRetriever])
def test_sample_lam_never_scores_below_bm25_alone_on_the_tuning_questions(
    other, bm25, sample_documents, tuning_questions
):
    second = other()
    second.index(sample_documents)
    fuser = CrossFuser(lam="sample", lam_on=second.name)
    texts = [q.text for q in tuning_questions]
    fused = fuser.fuse([bm25, second], texts, 20)
    chosen = fuser.lam_tuning[("bm25", second.name)]["lam"]
    assert chosen in SAMPLE_LAM_GRID
    alone = accuracies(tuning_questions, bm25.search(texts, 20))
    with_lam = accuracies(tuning_questions, fused)
    assert all(with_lam[m] >= alone[m] for m in alone), (chosen, with_lam, alone)
    if other is GoldRetriever:  # a retriever that finds every gold passage is worth fusing in
        assert chosen > 0 and with_lam["acc@1"] == 1.0 > alone["acc@1"]
    else:  # random vectors only blur BM25's ranking: λ = 0 or one that changes no accuracy
        assert chosen == 0 or with_lam == alone
    again = CrossFuser(lam=chosen, lam_on=second.name).fuse([bm25, second], texts, 20)
    np.testing.assert_array_equal(again.indices, fused.indices)


def test_sample_lam_is_recorded_as_the_number_used(bm25, sample_documents):
    vec = VectorRetriever()
    vec.index(sample_documents)
    fuser = CrossFuser(lam="sample", lam_on="vec")
    assert fuser.config()["lam"] == "sample"  # rebuilds the same fuser
    fuser.fuse([bm25, vec], ["부산의 인구는?"], 5)
    resolved = fuser.resolved_config()
    assert resolved["lam"] == fuser.lam_tuning[("bm25", "vec")]["lam"] and isinstance(resolved["lam"], float)
    assert set(resolved["lam_tuning"]["grid"]) == {f"{lam:g}" for lam in SAMPLE_LAM_GRID}


@pytest.mark.parametrize(("options", "lam"), [({}, 1.1), ({"lam": 0.5}, 0.5), ({"weights": [1, 2]}, None)])
def test_resolved_config_records_the_lam_in_use(options, lam):
    resolved = CrossFuser(**options).resolved_config()
    assert resolved["lam"] == lam


def test_sample_lam_on_another_corpus_is_a_usage_error(bm25):
    documents = [Document("x-1", "완전히 다른 말뭉치의 문서이다."), Document("x-2", "another corpus entirely")]
    vec = VectorRetriever()
    vec.index(documents)
    other_bm25 = plugins.create("retriever", "bm25", {})
    other_bm25.index(documents)
    with pytest.raises(UsageError, match="only the sample corpus"):
        CrossFuser(lam="sample", lam_on="vec").fuse([other_bm25, vec], ["문서"], 1)


def test_the_sample_pipeline_uses_the_sample_lam_unless_told_otherwise():
    def cross_options(settings, sample):
        return PipelineSpec.from_settings(settings, sample=sample).options_of("cross")

    settings = {"retrievers": ["bm25"], "fuser": "cross"}
    assert cross_options(settings, sample=True)["lam"] == "sample"
    assert cross_options({**settings, "options": {"cross.lam": 2}}, sample=True)["lam"] == 2
    assert "lam" not in cross_options(settings, sample=False)
    with_weights = cross_options({**settings, "options": {"cross.weights": [1, 0.5]}}, sample=True)
    assert CrossFuser(**with_weights).fused_weights(["bm25", "dpr"]) == [1.0, 0.5]  # explicit weights win


def test_a_bad_lam_is_a_usage_error():
    with pytest.raises(UsageError, match="'lam' must be a number or \"sample\", got 'tuned'"):
        CrossFuser(lam="tuned")


def test_the_tuning_third_is_disjoint_from_what_the_demo_models_train_on():
    questions = data.load_questions(data.sample_train_questions_path())
    fit, tune = data.sample_tuning_split(questions)
    assert len(tune) == len(questions) // 3 and len(fit) + len(tune) == len(questions)
    assert {q.id for q in fit}.isdisjoint(q.id for q in tune)
    evaluation = {q.id for q in data.load_questions(data.sample_questions_path())}
    assert evaluation.isdisjoint(q.id for q in tune)
