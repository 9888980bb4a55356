"""The web page in a real browser: Playwright (sync API) driving the system's Chromium (Debian's ``chromium``; no
browser is downloaded), against an ``odqa serve`` process on a free loopback port. Skipped, with the reason, where
there is no Chromium executable (CI installs it: .ci/run)."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable on PATH (apt-get install chromium)")

QUESTION = "훈민정음이 반포된 해는?"


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (odqa-serve[test])")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 960, "height": 900})
            page.goto(server.url + "/")
            yield page
        finally:
            browser.close()


def ask(page, question: str) -> None:
    page.fill("#question", question)
    page.press("#question", "Enter")  # Enter submits


def test_the_page_shows_the_apis_answer_highlighted_in_its_passage(server, page, tmp_path):
    expected = server.client.post("/v1/ask", json={"question": QUESTION}).json()
    ask(page, QUESTION)
    mark = page.wait_for_selector("#answer-passage mark")
    assert mark.text_content() == expected["answer"] == "1446년"
    best = expected["nbest"][0]
    passage = next(p for p in expected["passages"] if p["doc_id"] == best["doc_id"])
    assert passage["text"] in page.text_content("#answer-passage").replace(passage["title"], "", 1)
    assert page.text_content("#answer-text") == expected["answer"]
    assert page.locator("#nbest li").count() == len(expected["nbest"]) - 1
    assert page.locator("#passages li").count() == len(expected["passages"])
    assert page.text_content("#passages li:first-child .score") == f"{expected['passages'][0]['score']:.3f}"
    assert "retrieve" in page.text_content("#timings") and " ms" in page.text_content("#timings")
    assert page.is_hidden("#error")
    page.screenshot(path=tmp_path / "answer.png", full_page=True)
    assert (tmp_path / "answer.png").stat().st_size > 0


def test_errors_show_inline(server, page, tmp_path):
    ask(page, "   ")
    page.wait_for_selector("#error", state="visible")
    assert page.text_content("#error") == "question: the question is empty"
    assert page.is_hidden("#result")
    ask(page, "가" * 1001)  # over the server's --max-question-chars: the API's one-line error, shown as it is
    page.wait_for_function("document.getElementById('error').textContent.includes('longer than')")
    assert page.text_content("#error").startswith("question: the question is longer than 1000 characters")
    page.screenshot(path=tmp_path / "error.png")
    ask(page, QUESTION)  # the page recovers
    page.wait_for_selector("#answer-passage mark")
    assert page.is_hidden("#error")
