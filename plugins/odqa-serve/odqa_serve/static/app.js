// The odqa web page: asks POST /v1/ask and shows the answer inside its passage, the n-best list, the passages with
// their scores and the timings. Plain DOM, no framework, no build step; text goes in through textContent only.
"use strict";

const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("result").hidden = true;
}

// The passage with answer.text marked at answer.start (or where the text first occurs).
function highlighted(passage, answer) {
  const quote = $("answer-passage");
  quote.replaceChildren();
  if (!passage) return;
  let start = answer.start;
  if (start === null || passage.text.substr(start, answer.text.length) !== answer.text) {
    start = passage.text.indexOf(answer.text);
  }
  if (passage.title) quote.append(element("div", passage.title, "title"));
  if (start < 0 || !answer.text) {
    quote.append(passage.text);
    return;
  }
  quote.append(passage.text.slice(0, start), element("mark", answer.text), passage.text.slice(start + answer.text.length));
}

function render(body) {
  $("error").hidden = true;
  const best = body.nbest.length ? body.nbest[0] : null;
  $("answer-text").textContent = body.answer === null ? "(no reader: passages only)" : body.answer || "(no answer found)";
  $("answer-score").textContent = best ? `probability ${best.probability.toFixed(2)}, score ${best.score.toFixed(2)}` : "";
  highlighted(best && body.passages.find((p) => p.doc_id === best.doc_id), best || { text: "", start: null });
  $("nbest").replaceChildren(
    ...body.nbest.slice(1).map((a) => {
      const item = element("li", a.text);
      item.append(element("span", `${a.probability.toFixed(2)} · ${a.doc_id ?? ""}`, "score"));
      return item;
    })
  );
  $("passages").replaceChildren(
    ...body.passages.map((p) => {
      const item = element("li");
      item.append(element("span", p.title ? `${p.title}: ` : "", "title"), p.text, element("span", p.score.toFixed(3), "score"));
      return item;
    })
  );
  const t = body.timings_ms;
  $("timings").textContent = `retrieve ${t.retrieve.toFixed(1)} ms · read ${t.read.toFixed(1)} ms · total ${t.total.toFixed(1)} ms`;
  $("result").hidden = false;
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value;
  if (!question.trim()) {
    showError("question: the question is empty");
    return;
  }
  $("ask").disabled = true;
  try {
    const response = await fetch("/v1/ask", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question }),
    });
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) showError(body.error || `HTTP ${response.status}`);
    else render(body);
  } catch (error) {
    showError(`the server did not answer: ${error.message}`);
  } finally {
    $("ask").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => $("ask-form").addEventListener("submit", ask));
