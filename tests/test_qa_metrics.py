"""Reader EM/F1 against hand-computed values of the official KorQuAD 1.0 and SQuAD v1.1 scripts, and the CLI."""

from __future__ import annotations

import json

import pytest

from odqa_core.data import load_questions
from odqa_core.errors import DataError, UsageError
from odqa_core.qa_metrics import (
    METRICS,
    QAReport,
    evaluate_predictions,
    exact_match,
    f1,
    load_predictions,
    normalize_answer,
)
from odqa_core.testing import assert_one_line_error, run_cli

# --- normalisation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "korquad", "squad"),
    [
        ("《해리 포터》", "해리 포터", "《해리 포터》"),  # CJK brackets: only KorQuAD removes them
        ("‘서울’", "서울", "‘서울’"),
        ("  서울   특별시 \n", "서울 특별시", "서울 특별시"),
        ("The Eiffel Tower.", "the eiffel tower", "eiffel tower"),
        ("O'Neil", "o neil", "oneil"),  # KorQuAD turns the quote into a space before removing punctuation
        ("(주)삼성", "주 삼성", "주삼성"),
        ("theater", "theater", "theater"),  # an article only as a whole word
        ("", "", ""),
    ],
)
def test_normalize_answer(text, korquad, squad):
    assert normalize_answer(text, "korquad") == korquad
    assert normalize_answer(text, "squad") == squad


def test_metrics_and_unknown_metric():
    assert METRICS == ("korquad", "squad")
    with pytest.raises(UsageError, match="'bleu'"):
        f1("a", ["a"], "bleu")


# --- KorQuAD: character F1 ----------------------------------------------------------------------------------------


def test_korquad_particle_gets_partial_character_credit():
    # prediction 서울 (2 chars) against 서울에서 (4 chars): 2 shared, P = 2/2, R = 2/4, F1 = 2·1·½ / (1 + ½) = 2/3
    assert f1("서울", ["서울에서"]) == pytest.approx(2 / 3)
    assert exact_match("서울", ["서울에서"]) == 0.0
    # the other way round: P = 2/4, R = 2/2
    assert f1("서울에서", ["서울"]) == pytest.approx(2 / 3)


def test_korquad_counts_repeated_characters_once_per_match():
    # 서서울 = {서: 2, 울: 1} against 서울 = {서: 1, 울: 1}: 2 shared, P = 2/3, R = 1, F1 = 0.8
    assert f1("서서울", ["서울"]) == pytest.approx(0.8)


def test_korquad_quotes_brackets_and_punctuation():
    assert exact_match("《해리 포터》", ["해리 포터"]) == 1.0
    assert exact_match("‘서울’", ["서울"]) == 1.0
    assert exact_match('"서울."', ["서울"]) == 1.0
    assert exact_match("<서울>", ["〈서울〉"]) == 1.0
    assert f1("《해리 포터》", ["해리 포터"]) == 1.0


def test_korquad_spaces_matter_for_em_but_not_for_character_f1():
    assert exact_match("서울 특별시", ["서울특별시"]) == 0.0
    assert f1("서울 특별시", ["서울특별시"]) == 1.0
    assert exact_match("  서울   특별시 ", ["서울 특별시"]) == 1.0
    # (주)삼성 → "주 삼성": not equal to 주삼성, but the same characters
    assert exact_match("(주)삼성", ["주삼성"]) == 0.0
    assert f1("(주)삼성", ["주삼성"]) == 1.0


def test_korquad_max_over_gold_answers():
    # 서울시 = [서, 울, 시]: against 부산 0; against 서울특별시 P = 1, R = 3/5 → 0.75;
    # against 서울 P = 2/3, R = 1 → 0.8
    golds = ["부산", "서울특별시", "서울"]
    assert f1("서울시", golds) == pytest.approx(0.8)
    assert exact_match("서울시", golds) == 0.0
    assert exact_match("서울시", [*golds, "서울시"]) == 1.0
    assert f1("서울", "서울") == 1.0  # a single gold string is one answer, not its characters


def test_korquad_english_counts_characters_of_the_article_too():
    # "the eiffel tower" has 14 letters, "eiffel tower" 11, all 11 shared: P = 11/14, R = 1, F1 = 22/25
    assert f1("the Eiffel Tower", ["Eiffel Tower"]) == pytest.approx(22 / 25)
    assert exact_match("the Eiffel Tower", ["Eiffel Tower"]) == 0.0


# --- SQuAD: token F1 ----------------------------------------------------------------------------------------------


def test_squad_drops_articles_and_punctuation():
    assert exact_match("the Eiffel Tower.", ["Eiffel Tower"], "squad") == 1.0
    assert exact_match("A dog", ["dog"], "squad") == 1.0
    assert f1("the theater", ["theater"], "squad") == 1.0
    assert exact_match("O'Neil", ["ONeil"], "squad") == 1.0
    assert exact_match("O'Neil", ["ONeil"], "korquad") == 0.0
    assert f1("O'Neil", ["ONeil"], "korquad") == 1.0


def test_squad_token_f1():
    # big red dog vs red dog barks: 2 shared tokens, P = R = 2/3
    assert f1("big red dog", ["red dog barks"], "squad") == pytest.approx(2 / 3)
    # dog dog vs dog: 1 shared, P = 1/2, R = 1
    assert f1("dog dog", ["dog"], "squad") == pytest.approx(2 / 3)
    assert f1("red dog", ["cat", "big red dog"], "squad") == pytest.approx(0.8)  # P = 1, R = 2/3


def test_token_and_character_f1_differ():
    assert f1("서울", ["서울에서"], "squad") == 0.0
    assert f1("서울", ["서울에서"], "korquad") == pytest.approx(2 / 3)
    assert f1("《해리 포터》", ["해리 포터"], "squad") == 0.0  # 《 and 》 are not ASCII punctuation


@pytest.mark.parametrize("metric", METRICS)
def test_empty_predictions(metric):
    assert exact_match("", ["서울"], metric) == 0.0
    assert f1("", ["서울"], metric) == 0.0
    assert f1("...", ["서울"], metric) == 0.0  # normalises to nothing
    # both normalise to "": the official scripts give EM 1 but F1 0 (no shared unit)
    assert exact_match("!", ["?"], metric) == 1.0
    assert f1("!", ["?"], metric) == 0.0


def test_korquad_prediction_of_only_brackets_is_empty():
    assert f1("《》", ["서울"]) == 0.0
    assert exact_match("《》", ["서울"]) == 0.0


def test_no_gold_answers_is_a_programming_error():
    with pytest.raises(ValueError, match="no gold"):
        f1("서울", [])


# --- evaluate_predictions -----------------------------------------------------------------------------------------


def _write_questions(tmp_path, rows):
    path = tmp_path / "questions.jsonl"
    lines = [
        json.dumps({"id": qid, "question": f"{qid}?", "answers": answers, "doc_ids": []}, ensure_ascii=False)
        for qid, answers in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def questions_file(tmp_path):
    return _write_questions(
        tmp_path, [("q1", ["서울"]), ("q2", ["부산", "부산광역시"]), ("q3", []), ("q4", ["1996년"])]
    )


@pytest.fixture
def predictions_file(tmp_path):
    path = tmp_path / "predictions.json"
    # q1: EM 0, F1 2/3; q2: EM 1, F1 1; q3: no answers, not scored; q4: no prediction, 0
    path.write_text(json.dumps({"q1": "서울에서", "q2": "부산", "q3": "아무거나"}, ensure_ascii=False), "utf-8")
    return path


def test_evaluate_predictions_skips_unanswerable_and_scores_missing_zero(questions_file):
    questions = load_questions(questions_file)
    report = evaluate_predictions({"q1": "서울에서", "q2": "부산", "q3": "아무거나"}, questions)
    assert (report.n_scored, report.n_missing, report.n_unanswerable) == (3, 1, 1)
    assert report.exact_match == pytest.approx(100 / 3)
    assert report.f1 == pytest.approx(100 * (2 / 3 + 1) / 3)
    assert report.to_json() == {
        "metric": "korquad",
        "exact_match": report.exact_match,
        "f1": report.f1,
        "n_scored": 3,
        "n_missing": 1,
        "n_unanswerable": 1,
    }
    squad = evaluate_predictions({"q1": "서울에서", "q2": "부산"}, questions, "squad")
    assert squad.f1 == pytest.approx(100 / 3) and squad.metric == "squad"


def test_evaluate_predictions_unknown_ids(questions_file):
    questions = load_questions(questions_file)
    with pytest.raises(UsageError, match=r"have 2 ids that are not among the questions \(first: 'zz'\)"):
        evaluate_predictions({"q1": "서울", "zz": "x", "zy": "y"}, questions)


def test_evaluate_predictions_without_answers(tmp_path):
    questions = load_questions(_write_questions(tmp_path, [("a", []), ("b", [])]))
    report = evaluate_predictions({"a": "x"}, questions)
    assert report == QAReport("korquad", None, None, 0, 0, 2)
    assert "no question has gold answers" in report.table()


def test_load_predictions(tmp_path, predictions_file):
    assert load_predictions(predictions_file) == {"q1": "서울에서", "q2": "부산", "q3": "아무거나"}
    bad = tmp_path / "bad.json"
    cases = [
        ("{not json", "malformed JSON"),
        ('["q1"]', "must be a JSON object"),
        ('{"q1": "서울", "q2": 3}', "'q2' must be a string, got int"),
        ('{"q1": [{"text": "서울"}]}', "nbest_predictions.json"),
    ]
    for text, message in cases:
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=message) as info:
            load_predictions(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="cannot read"):
        load_predictions(tmp_path / "missing.json")


def test_load_predictions_messages_name_the_problem_once(tmp_path):
    bad = tmp_path / "predictions.json"
    bad.write_text('{"q1": "unterminated', encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_predictions(bad)
    assert str(info.value) == f"{bad} line 1 column 8: malformed JSON (Unterminated string)"
    bad.write_bytes('{"q1": "서울"}'.encode("cp949"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_predictions(bad)


# --- the CLI ------------------------------------------------------------------------------------------------------


def test_cli_predictions_table(questions_file, predictions_file):
    result = run_cli(f"evaluate --predictions {predictions_file} --questions {questions_file}")
    assert result.exit_code == 0, result.output
    assert "exact_match  33.33" in result.output
    assert "f1           55.56" in result.output
    assert "korquad: 3 questions scored, 1 without a prediction scored 0, 1 without answers skipped" in result.output


def test_cli_predictions_json_and_squad(questions_file, predictions_file):
    result = run_cli(f"evaluate --predictions {predictions_file} --questions {questions_file} --json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["metric"] == "korquad" and out["f1"] == pytest.approx(500 / 9)
    assert out["exact_match"] == pytest.approx(100 / 3)
    assert (out["n_scored"], out["n_missing"], out["n_unanswerable"]) == (3, 1, 1)
    result = run_cli(f"evaluate --predictions {predictions_file} --questions {questions_file} --metric squad --json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["metric"] == "squad"
    assert out["exact_match"] == pytest.approx(100 / 3) and out["f1"] == pytest.approx(100 / 3)


def test_cli_needs_exactly_one_of_run_and_predictions(questions_file, predictions_file, tmp_path):
    run_file = tmp_path / "run.jsonl"
    run_file.write_text('{"id": "q1", "hits": []}\n')
    both = run_cli(f"evaluate --run {run_file} --predictions {predictions_file} --questions {questions_file}")
    assert_one_line_error(both, 2, "not both")
    neither = run_cli(f"evaluate --questions {questions_file}")
    assert_one_line_error(neither, 2, "give what to evaluate: --run (a retrieval run) or --predictions")


def test_cli_options_of_the_other_mode(questions_file, predictions_file, tmp_path):
    result = run_cli(f"evaluate --predictions {predictions_file} --questions {questions_file} --k 1,5")
    assert_one_line_error(result, 2, "--k applies to --run")
    result = run_cli(f"evaluate --run x.jsonl --questions {questions_file} --metric squad")
    assert_one_line_error(result, 2, "--metric applies to --predictions")


def test_cli_bad_predictions_files(questions_file, tmp_path):
    bad = tmp_path / "predictions.json"
    bad.write_text("{not json", encoding="utf-8")
    result = run_cli(f"evaluate --predictions {bad} --questions {questions_file}")
    assert_one_line_error(result, 1, "malformed JSON")
    bad.write_text(json.dumps({"q1": "서울", "other": "x"}), encoding="utf-8")
    result = run_cli(f"evaluate --predictions {bad} --questions {questions_file}")
    assert_one_line_error(result, 2, "1 ids that are not among the questions (first: 'other')")
    result = run_cli(f"evaluate --predictions {tmp_path / 'missing.json'} --questions {questions_file}")
    assert_one_line_error(result, 1, "missing.json")
