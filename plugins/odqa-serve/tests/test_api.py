"""The HTTP API in-process (FastAPI's TestClient), on the bundled sample's BM25 + extractive pipeline: the contract,
answers equal to ``odqa run``'s, bad requests, a failing question, micro-batching (batches form, batched answers
equal single ones, settings groups), load shedding and the request timeout."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from odqa_serve.app import ServeSettings, create_app
from serve_testing import PIPELINE_ARGS, wait_ready

from odqa_core.testing import run_cli

QUESTION = "훈민정음이 반포된 해는?"


@contextlib.contextmanager
def serving(pipeline, **settings) -> Iterator[TestClient]:
    """A started app (warmed up, ready) answering with ``pipeline``."""
    with TestClient(create_app(lambda: pipeline, ServeSettings(**settings))) as client:
        wait_ready(client.get)
        yield client


@pytest.fixture(scope="module")
def single(sample_pipeline) -> Iterator[TestClient]:
    """Batching off: every question answered alone."""
    with serving(sample_pipeline, max_batch=1) as client:
        yield client


def answer_of(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    body.pop("timings_ms")
    return body


def test_ask_answers_with_the_documented_fields(single):
    response = single.post("/v1/ask", json={"question": f"  {QUESTION} ", "n_best": 3, "reader_top_k": 4})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"]
    body = response.json()
    assert set(body) == {"question", "answer", "score", "nbest", "passages", "timings_ms"}
    assert body["question"] == QUESTION  # leading and trailing spaces are not part of it
    assert body["answer"] == "1446년" and body["answer"] == body["nbest"][0]["text"]
    assert body["score"] == body["nbest"][0]["score"]
    assert len(body["nbest"]) == 3 and len(body["passages"]) == 4
    assert set(body["nbest"][0]) == {"text", "score", "probability", "doc_id", "start"}
    best = body["nbest"][0]
    passage = next(p for p in body["passages"] if p["doc_id"] == best["doc_id"])
    assert passage["text"][best["start"] : best["start"] + len(best["text"])] == best["text"]
    assert set(passage) == {"doc_id", "title", "text", "score"}
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)
    assert set(body["timings_ms"]) == {"retrieve", "read", "total"}
    assert all(value >= 0 for value in body["timings_ms"].values())


def test_retrieve_gives_passages_without_reading(single):
    response = single.post("/v1/retrieve", json={"question": QUESTION, "top_k": 7})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["passages"]) == 7 and body["timings_ms"]["read"] == 0
    asked = answer_of(single.post("/v1/ask", json={"question": QUESTION, "reader_top_k": 7}))
    assert asked["passages"] == body["passages"]


def test_health_pipeline_openapi_and_page(single):
    health = single.get("/v1/health").json()
    assert health["status"] == "ready" and health["settings"]["max_batch"] == 1
    pipeline = single.get("/v1/pipeline").json()
    assert pipeline["retrievers"] == ["bm25"] and pipeline["reader"] == "extractive"
    assert pipeline["components"]["bm25"]["k1"] > 0 and pipeline["settings"]["top_k"] == 100
    assert {"odqa", "odqa-serve", "odqa-sparse", "odqa-readers"} <= set(pipeline["versions"])
    schema = single.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/ask/batch", "/v1/retrieve", "/v1/health", "/v1/pipeline"} <= set(schema["paths"])
    assert single.get("/docs").status_code == 200
    page = single.get("/")
    assert page.status_code == 200 and '<meta charset="utf-8">' in page.text
    assert "http" not in page.text.replace('"http-equiv"', ""), "the page loads nothing from elsewhere"
    for name, kind in (("app.js", "javascript"), ("style.css", "css")):
        asset = single.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert "://" not in asset.text
    assert single.get("/static/../app.py").status_code == 404


def test_answers_equal_odqa_runs_predictions(single, sample_questions, tmp_path):
    """The sample's questions over HTTP (one batch request, and a few one by one) get ``odqa run``'s predictions
    and n-best lists for the same pipeline and settings."""
    chosen = sample_questions[::9]  # 12 of the 107: the run reads them all at once, the server too
    questions = tmp_path / "questions.jsonl"
    rows = [{"id": q.id, "question": q.text, "answers": list(q.answers)} for q in chosen]
    questions.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    command = f"run {' '.join(PIPELINE_ARGS)} --questions {questions} --n-best 4 --reader-top-k 5"
    result = run_cli(f"{command} --output-dir {tmp_path / 'out'}")
    assert result.exit_code == 0, result.output
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text(encoding="utf-8"))
    nbest = json.loads((tmp_path / "out" / "nbest_predictions.json").read_text(encoding="utf-8"))
    settings = {"n_best": 4, "reader_top_k": 5}
    assert len(predictions) == len(chosen) and any(predictions.values())
    items = [{"question": q.text, **settings} for q in chosen]
    batch = single.post("/v1/ask/batch", json={"questions": items})
    assert batch.status_code == 200, batch.text
    answers = batch.json()["answers"]
    assert len(answers) == len(chosen)
    for question, answer in zip(chosen, answers):
        assert answer["answer"] == predictions[question.id], question.id
        assert answer["nbest"] == nbest[question.id], question.id
    for question in chosen[:3]:
        alone = answer_of(single.post("/v1/ask", json={"question": question.text, **settings}))
        assert alone["answer"] == predictions[question.id] and alone["nbest"] == nbest[question.id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": " \t\n "}, "question"),
        ({"question": "x" * 201}, "question"),  # the app's --max-question-chars is 200 here
        ({"question": QUESTION, "top_k": 0}, "top_k"),
        ({"question": QUESTION, "top_k": 100_000}, "top_k"),
        ({"question": QUESTION, "n_best": -1}, "n_best"),
        ({"question": QUESTION, "top_k": "5"}, "top_k"),
        ({"question": QUESTION, "top_k": 2.5}, "top_k"),
        ({"question": 42}, "question"),
        ({"question": QUESTION, "topk": 5}, "topk"),
        ({}, "question"),
    ],
    ids=repr,
)
def test_a_bad_request_is_a_422_naming_the_field(sample_pipeline, limited, body, field):
    response = limited.post("/v1/ask", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error.startswith(f"{field}:") and "\n" not in error, error
    assert any(item["loc"][-1] == field for item in response.json()["detail"])


@pytest.fixture(scope="module")
def limited(sample_pipeline) -> Iterator[TestClient]:
    with serving(sample_pipeline, max_question_chars=200, max_body_bytes=2000) as client:
        yield client


def test_batch_requests_name_the_item_and_bodies_over_the_limit_are_413(sample_pipeline, limited):
    response = limited.post("/v1/ask/batch", json={"questions": [{"question": QUESTION}, {"question": "x" * 300}]})
    assert response.status_code == 422 and response.json()["error"].startswith("questions.1.question:"), response.text
    assert limited.post("/v1/ask/batch", json={"questions": []}).status_code == 422
    with serving(sample_pipeline, max_queue=2) as small:
        response = small.post("/v1/ask/batch", json={"questions": [{"question": QUESTION}] * 3})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "questions: at most 2 questions per request (--max-queue), got 3"
    too_large = json.dumps({"question": "가" * 1000}).encode()
    response = limited.post("/v1/ask", content=too_large, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"].startswith("body:"), response.text

    def chunks():  # no Content-Length: the limit is counted as the body streams in
        yield too_large[:1500]
        yield too_large[1500:]

    response = limited.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    response = limited.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "body: not valid JSON at character 1"
    assert limited.post("/v1/ask", json={"question": QUESTION}).status_code == 200


def test_a_question_the_pipeline_fails_on_is_a_500_and_the_others_are_answered(sample_pipeline, monkeypatch):
    read = sample_pipeline.read

    def failing_read(questions, results, **kwargs):
        if any("BOOM" in q.text for q in questions):
            raise RuntimeError("the reader broke\non two lines")
        return read(questions, results, **kwargs)

    monkeypatch.setattr(sample_pipeline, "read", failing_read)
    with serving(sample_pipeline, max_batch=3, max_wait_ms=10_000) as client, ThreadPoolExecutor(3) as pool:
        texts = [QUESTION, "BOOM 한강은?", "부산의 인구는?"]
        responses = list(pool.map(lambda text: client.post("/v1/ask", json={"question": text}), texts))
        assert [r.status_code for r in responses] == [200, 500, 200]
        error = responses[1].json()["error"]
        assert error == "the pipeline failed on this question: RuntimeError: the reader broke on two lines"
        assert responses[0].json()["answer"] == "1446년"
        stats = client.get("/v1/health").json()["batching"]
        assert stats["failed_batches"] == 2  # the batch of three, then the failing question alone
        # Still serving: three questions again (a full batch, so no waiting for more).
        again = client.post("/v1/ask/batch", json={"questions": [{"question": text} for text in [QUESTION] * 3]})
        assert again.status_code == 200 and [a["answer"] for a in again.json()["answers"]] == ["1446년"] * 3


def test_concurrent_requests_form_one_batch_with_the_single_answers(sample_pipeline, sample_questions, single):
    texts = [q.text for q in sample_questions[:8]]
    alone = [answer_of(single.post("/v1/ask", json={"question": text})) for text in texts]
    # The batch closes when its 8 questions are there (well before the 10 s wait).
    with serving(sample_pipeline, max_batch=8, max_wait_ms=10_000) as client, ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda text: answer_of(client.post("/v1/ask", json={"question": text})), texts))
        stats = client.get("/v1/health").json()["batching"]
    assert together == alone
    assert stats["batch_sizes"] == {"8": 1} and stats["largest_batch"] == 8


def test_requests_with_other_settings_are_batched_by_settings_group(sample_pipeline, sample_questions, single):
    texts = [q.text for q in sample_questions[8:14]]
    bodies = [{"question": text, **({"n_best": 2, "top_k": 10} if i % 2 else {})} for i, text in enumerate(texts)]
    alone = [answer_of(single.post("/v1/ask", json=body)) for body in bodies]
    with serving(sample_pipeline, max_batch=6, max_wait_ms=10_000) as client, ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda body: answer_of(client.post("/v1/ask", json=body)), bodies))
        stats = client.get("/v1/health").json()["batching"]
    assert together == alone
    assert [len(a["nbest"]) for a in together] == [5, 2, 5, 2, 5, 2]
    assert stats["batch_sizes"] == {"3": 2}


class Gate:
    """Holds the pipeline's read of questions containing ``HOLD`` until :meth:`open`."""

    def __init__(self, pipeline, monkeypatch) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        read = pipeline.read

        def held_read(questions, results, **kwargs):
            if any("HOLD" in q.text for q in questions):
                self.entered.set()
                assert self.released.wait(60)
            return read(questions, results, **kwargs)

        monkeypatch.setattr(pipeline, "read", held_read)

    def open(self) -> None:
        self.released.set()


def wait_until(condition, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_full_queue_sheds_with_503_and_retry_after(sample_pipeline, monkeypatch):
    gate = Gate(sample_pipeline, monkeypatch)
    with serving(sample_pipeline, max_batch=1, max_queue=1) as client, ThreadPoolExecutor(2) as pool:
        held = pool.submit(client.post, "/v1/ask", json={"question": f"HOLD {QUESTION}"})
        assert gate.entered.wait(30)  # the first question is being answered: the queue is empty again
        queued = pool.submit(client.post, "/v1/ask", json={"question": QUESTION})
        wait_until(lambda: client.get("/v1/health").json()["queued"] == 1)
        shed = client.post("/v1/ask", json={"question": QUESTION})
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1", shed.text
        assert "--max-queue 1" in shed.json()["error"]
        gate.open()
        assert held.result().status_code == 200 and queued.result().status_code == 200
        health = client.get("/v1/health").json()
        assert health["status"] == "ready" and health["batching"]["shed"] == 1


def test_a_request_unanswered_in_time_is_a_504_and_the_server_goes_on(sample_pipeline, monkeypatch):
    gate = Gate(sample_pipeline, monkeypatch)
    with serving(sample_pipeline, request_timeout_s=2) as client:
        response = client.post("/v1/ask", json={"question": f"HOLD {QUESTION}"})
        assert response.status_code == 504 and "--request-timeout-s" in response.json()["error"], response.text
        gate.open()  # the held question is answered (to no one), then the next one in its own time
        wait_until(lambda: client.get("/v1/health").json()["batching"]["batches"] == 1)
        assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200


def test_questions_before_warm_up_get_503(sample_pipeline):
    started = threading.Event()
    release = threading.Event()

    def slow_factory():
        started.set()
        assert release.wait(60)
        return sample_pipeline

    with TestClient(create_app(slow_factory, ServeSettings())) as client:
        assert started.wait(30)
        health = client.get("/v1/health")
        assert health.status_code == 503 and health.json()["status"] == "starting"
        early = client.post("/v1/ask", json={"question": QUESTION})
        assert early.status_code == 503 and early.headers["retry-after"] == "1"
        release.set()
        wait_ready(client.get)
        assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200


def test_bad_serve_settings_are_one_line_errors():
    from odqa_core.errors import UsageError

    with pytest.raises(UsageError, match="--max-batch must be at least 1, got 0"):
        ServeSettings(max_batch=0)
    with pytest.raises(UsageError, match="--max-wait-ms must be a finite number >= 0"):
        ServeSettings(max_wait_ms=float("nan"))


def test_without_a_reader_ask_gives_the_passages_and_no_answer():
    from odqa_serve.engine import build_pipeline

    with serving(build_pipeline({"retrievers": ["bm25"], "top_k": 4})) as client:
        body = answer_of(client.post("/v1/ask", json={"question": QUESTION}))
        assert body["answer"] is None and body["score"] is None and body["nbest"] == []
        assert len(body["passages"]) == 4 and body["passages"][0]["title"] == "한글"
        retrieved = client.post("/v1/retrieve", json={"question": QUESTION, "top_k": 2}).json()
        assert retrieved["passages"] == body["passages"][:2]
        assert client.get("/v1/pipeline").json()["reader"] is None
