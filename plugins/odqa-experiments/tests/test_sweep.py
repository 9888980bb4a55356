"""``odqa sweep``: grids end to end with the fakes, resume, reuse of models and indexes, malformed grid files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from odqa_experiments.grid import read_grid, select_articles
from odqa_experiments.runner import SweepRunner
from sweep_testdata import rows_of, sweep_then_rerun_changed, write_grid

from odqa_core import data
from odqa_core.errors import UsageError
from odqa_core.spec import read_pipeline_file
from odqa_core.testing import FakeTrainer, assert_one_line_error

SAMPLE_GRID = """
[sweep]
output_dir = "out"
metric = "f1"

[pipeline]
retriever = "fake"
reader = "fake-reader"
ks = [1, 5, 10, 20]

[train.fake-reader]
checkpoint = "last"

[axes]
"train.fake-reader.epochs" = [1, 2, 3]
"pipeline.reader_top_k" = [1, 3]
"""


def test_tiny_grid_end_to_end_on_the_sample(fake_plugins, odqa, tmp_path):
    grid = write_grid(tmp_path, SAMPLE_GRID)
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    rows = rows_of(out / "results.csv")
    assert len(rows) == 6
    # Progress over the grid: cells done / total, each cell's time, the time left.
    assert "[1/6] train.fake-reader.epochs=1 pipeline.reader_top_k=1 → f1" in result.output
    assert "[6/6]" in result.output and "left" in result.output
    assert [r["trained"] for r in rows] == ["1", "0", "1", "0", "1", "0"]
    assert [(r["train.fake-reader.epochs"], r["pipeline.reader_top_k"]) for r in rows] == [
        ("1", "1"), ("1", "3"), ("2", "1"), ("2", "3"), ("3", "1"), ("3", "3"),
    ]  # fmt: skip
    sample = data.load_questions(data.sample_questions_path())
    assert {r["n_questions"] for r in rows} == {str(len(sample))}
    for row in rows:
        assert float(row["acc@1"]) <= float(row["acc@5"]) <= float(row["acc@20"]) <= 1.0
        assert 0.0 <= float(row["f1"]) <= 100.0
        assert row["fake-reader.epoch"] == row["train.fake-reader.epochs"]  # checkpoint = last, no sharing
    # Three epochs values → three training runs; the reader_top_k cells reuse them. One index for all six cells.
    assert sorted(run["epochs"] for run in FakeTrainer.runs) == [1, 2, 3]
    assert len(list((out / "cache" / "indexes").iterdir())) == 1
    assert len(list((out / "cache" / "models").iterdir())) == 3
    # The reader answers with `epoch` words, so F1 changes along the epochs axis: the rows are real evaluations.
    assert len({r["f1"] for r in rows}) > 1
    md = (out / "results.md").read_text()
    assert "**Best**" in md and "6 of 6 cells done" in md
    for plot in ("plot-topk.png", "plot-train.fake-reader.epochs.png", "plot-pipeline.reader_top_k.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    # The best cell as a pipeline file that `odqa run --config` takes as it is.
    best = max(rows, key=lambda r: float(r["f1"]))
    assert f"best: train.fake-reader.epochs={best['train.fake-reader.epochs']}" in result.output
    settings = read_pipeline_file(out / "best.toml")
    assert settings["reader_top_k"] == int(best["pipeline.reader_top_k"])
    assert Path(settings["options"]["fake-reader.model"]).is_dir()
    run = odqa(f"run --config {out / 'best.toml'} --output-dir {tmp_path / 'rerun'} --json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["reader_metrics"]["f1"] == pytest.approx(float(best["f1"]), abs=1e-3)
    # Each cell keeps its run outputs.
    cell_dir = out / "cells" / rows[0]["cell"]
    assert {"run.jsonl", "summary.json", "predictions.json", "cell.json"} <= {p.name for p in cell_dir.iterdir()}


def test_rerun_of_a_finished_sweep_computes_nothing(fake_plugins, odqa, tmp_path, monkeypatch):
    grid = write_grid(tmp_path, SAMPLE_GRID)
    assert odqa(f"sweep --config {grid}").exit_code == 0
    before = (tmp_path / "out" / "results.csv").read_text()
    calls = []
    monkeypatch.setattr(SweepRunner, "run_cell", lambda self, cell: calls.append(cell) or {})
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    assert calls == []
    assert (tmp_path / "out" / "results.csv").read_text() == before


def test_resume_after_an_interrupted_sweep(fake_plugins, odqa, tmp_path, monkeypatch):
    """The sweep is killed in its third cell: two rows stay; the rerun redoes the third and runs the rest, and
    never recomputes the two finished ones."""
    grid = write_grid(tmp_path, SAMPLE_GRID)
    original = SweepRunner.run_cell
    started = []

    def killed_in_third(self, cell):
        started.append(cell.index)
        if len(started) == 3:
            raise KeyboardInterrupt
        return original(self, cell)

    monkeypatch.setattr(SweepRunner, "run_cell", killed_in_third)
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code != 0
    first = rows_of(tmp_path / "out" / "results.csv")
    assert len(first) == 2
    assert "2 of 6 cells done" in (tmp_path / "out" / "results.md").read_text()

    started.clear()
    monkeypatch.setattr(
        SweepRunner, "run_cell", lambda self, cell: started.append(cell.index) or original(self, cell)
    )
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    assert started == [3, 4, 5, 6]  # the cell killed mid-way is redone; cells 1 and 2 are not
    rows = rows_of(tmp_path / "out" / "results.csv")
    assert len(rows) == 6
    assert rows[:2] == first  # untouched, timestamps included


def test_a_training_killed_mid_way_is_started_over(fake_plugins, odqa, tmp_path, monkeypatch):
    grid = write_grid(tmp_path, SAMPLE_GRID)
    original = FakeTrainer.train

    def dies_after_first_epoch(self, documents, questions, output, *, dev_questions=None):
        (Path(output) / "epoch-1").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeTrainer, "train", dies_after_first_epoch)
    assert odqa(f"sweep --config {grid}").exit_code != 0
    models = tmp_path / "out" / "cache" / "models"
    assert [".partial-" in p.name for p in models.iterdir()] == [True]
    assert not (tmp_path / "out" / "results.csv").exists()

    monkeypatch.setattr(FakeTrainer, "train", original)
    assert odqa(f"sweep --config {grid}").exit_code == 0
    assert not [p for p in models.iterdir() if ".partial-" in p.name]
    assert len(rows_of(tmp_path / "out" / "results.csv")) == 6


def test_new_axis_values_run_only_the_new_cells(fake_plugins, odqa, tmp_path):
    result, trained = sweep_then_rerun_changed(odqa, tmp_path, SAMPLE_GRID, "[1, 2, 3]", "[1, 2, 3, 4]")
    assert "6 of 8 cells already" in result.output
    assert [run["epochs"] for run in FakeTrainer.runs[trained:]] == [4]
    assert len(rows_of(tmp_path / "out" / "results.csv")) == 8


def test_share_epochs_trains_one_run_and_best_picks_the_dev_epoch(fake_plugins, odqa, tmp_path):
    text = SAMPLE_GRID.replace('metric = "f1"', 'metric = "f1"\nshare_epochs = true').replace(
        'checkpoint = "last"', 'checkpoint = "best"'
    )
    grid = write_grid(tmp_path, text)
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    assert [run["epochs"] for run in FakeTrainer.runs] == [3]  # one run of the largest value
    rows = rows_of(tmp_path / "out" / "results.csv")
    assert {r["fake-reader.trained_epochs"] for r in rows} == {"3"}
    # The fake's dev metric peaks at epoch 2: best of epochs ≤ 1 is 1, of ≤ 2 and ≤ 3 is 2.
    assert [r["fake-reader.epoch"] for r in rows] == ["1", "1", "2", "2", "2", "2"]


def test_fold_axis_gives_a_spread_table_and_plot(fake_plugins, odqa, tmp_path, toy_files):
    corpus, questions = toy_files
    grid = write_grid(
        tmp_path,
        f"""
[sweep]
output_dir = "folds"
metric = "f1"
[pipeline]
retriever = "fake"
reader = "fake-reader"
corpus = "{corpus}"
questions = "{questions}"
ks = [1, 2]
[train.fake-reader]
questions = "{questions}"
[axes]
"train.fake-reader.fold" = [1, 2, 3]
"train.fake-reader.epochs" = [1, 2]
""",
    )
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    out = tmp_path / "folds"
    assert len(rows_of(out / "results.csv")) == 6
    n = len(data.load_questions(questions))
    assert len(FakeTrainer.runs) == 6 and all(run["questions"] < n for run in FakeTrainer.runs)
    md = (out / "results.md").read_text()
    assert "**Spread over train.fake-reader.fold**" in md
    assert "| train.fake-reader.epochs=1 |" in md and "| train.fake-reader.epochs=2 |" in md
    assert (out / "plot-folds.png").is_file() and (out / "plot-train.fake-reader.epochs.png").is_file()
    assert not (out / "plot-train.fake-reader.fold.png").exists()


def test_dry_run_lists_cells_and_runs_nothing(fake_plugins, odqa, tmp_path):
    grid = write_grid(tmp_path, SAMPLE_GRID)
    result = odqa(f"sweep --config {grid} --dry-run")
    assert result.exit_code == 0, result.output
    assert "6 cells, 0 done, 6 to run" in result.output
    assert "fake-reader to train, epoch 3" in result.output
    assert not (tmp_path / "out").exists()
    assert FakeTrainer.runs == []
    assert odqa(f"sweep --config {grid}").exit_code == 0
    plan = json.loads(odqa(f"sweep --config {grid} --dry-run --json").output)
    assert all(cell["done"] for cell in plan) and all(m["cached"] for c in plan for m in c["models"])


def test_output_dir_option_overrides_the_grid(fake_plugins, odqa, tmp_path):
    grid = write_grid(tmp_path, SAMPLE_GRID)
    assert odqa(f"sweep --config {grid} --output-dir {tmp_path / 'elsewhere'}").exit_code == 0
    assert (tmp_path / "elsewhere" / "results.csv").is_file() and not (tmp_path / "out").exists()


def test_a_foreign_results_file_is_refused(fake_plugins, odqa, tmp_path):
    grid = write_grid(tmp_path, SAMPLE_GRID)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.csv").write_text("a,b\n1,2\n")
    assert_one_line_error(odqa(f"sweep --config {grid}"), contains="not a sweep's results file")
    assert (tmp_path / "out" / "results.csv").read_text() == "a,b\n1,2\n"


def test_fixed_grid_without_axes_is_one_cell(fake_plugins, odqa, tmp_path, monkeypatch):
    grid = write_grid(tmp_path, '[pipeline]\nretriever = "fake"\nks = [1, 5]\n')
    monkeypatch.chdir(tmp_path)  # without output_dir, results go to sweep-<grid name> in the current directory
    result = odqa(f"sweep --config {grid}")
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "sweep-grid" / "results.csv")
    assert len(rows) == 1 and float(rows[0]["acc@5"]) > 0


BASE = """
[pipeline]
retriever = "fake"
reader = "fake-reader"
[train.fake-reader]
epochs = 1
"""


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("[pipelines]\nretriever = 'fake'\n", "unknown key 'pipelines'"),
        ("sweep = 3\n", "[sweep] must be a table"),
        ("[sweep]\nout = 'x'\n", "sweep.out"),
        ("[sweep]\nshare_epochs = 'yes'\n", "sweep.share_epochs must be a bool"),
        ("[sweep]\nhit = 'passage'\n", "sweep.hit"),
        ("[sweep]\nmetric = 'accuracy'\n", "sweep.metric"),
        ("[sweep]\nmetric = 'acc@7'\n[pipeline]\nretriever = 'fake'\n", "sweep.metric acc@7"),
        ("[pipeline]\nretriver = 'fake'\n", "unknown key 'retriver'"),
        ("[pipeline]\nretriever = 'fake'\ntop_k = 'ten'\n", "'top_k' must be a int"),
        ("[pipeline]\nretriever = 'fake'\nquestions = 3\n", "pipeline.questions"),
        ("[pipeline]\nretriever = 'fake'\nquestions = {file = 'q.json'}\n", "unknown key 'file'"),
        ("[pipeline]\nretriever = 'fake'\nquestions = {path = 'q.json', articles = '1-2'}\n", "articles"),
        ("[pipeline]\nretriever = 'fake'\noutput_dir = 'x'\n", "pipeline.output_dir"),
        ("[pipeline]\nretriever = 'nope'\n", "retriever 'nope' is not available"),
        (BASE + "[axes]\n'train.fake-reader.epochs' = 3\n", 'axes."train.fake-reader.epochs" must be a non-empty'),
        (BASE + "[axes]\n'pipeline.top_k' = []\n", 'axes."pipeline.top_k" must be a non-empty list'),
        (BASE + "[axes]\n'pipeline.top_k' = [5, 5]\n", "lists a value twice"),
        (BASE + "[axes]\n'model.size' = [1, 2]\n", 'axes."model.size": an axis key is'),
        (BASE + "[axes]\n'pipeline.topk' = [1, 2]\n", "unknown pipeline setting 'topk'"),
        (BASE + "[axes]\n'pipeline.top_k' = ['a', 'b']\n", 'axes."pipeline.top_k"'),
        ("[pipeline]\nretriever = 'fake'\n[axes]\n'pipeline.reader' = ['fake-reader', 'nope']\n", "reader 'nope'"),
        (BASE + "[axes]\n'pipeline.options.fake-reader.max_wordz' = [1, 2]\n", "'max_wordz'"),
        (BASE + "[axes]\n'pipeline.options.fake' = [1, 2]\n", "name the stage and the option"),
        (BASE + "[axes]\n'train.fake-reader.epochs' = [1, 2]\n", "also fixed in [train.fake-reader]"),
        (BASE + "[axes]\n'train.fake-reader.epoch' = [1, 2]\n", "unknown setting 'epoch' of trainer"),
        (BASE.replace("epochs = 1\n", "") + "[axes]\n'train.fake-reader.epochs' = [1, 0]\n", 'epochs" = 0: trainer'),
        (BASE + "[axes]\n'train.dpr.epochs' = [1, 2]\n", "there is no [train.dpr] table"),
        (BASE + "[axes]\n'train.fake-reader.questions' = ['a', 'b']\n", "cannot vary"),
        (BASE + "[axes]\n'train.fake-reader.checkpoint' = ['best', 'worst']\n", "must be best or last"),
        ("[train.nope]\nepochs = 1\n", "[train.nope]: trainer 'nope' is not available"),
        ("[train]\nfake-reader = 3\n", "[train.fake-reader] must be a table"),
        (BASE + "epoks = 2\n", "[train.fake-reader]: unknown option 'epoks'"),
        (BASE.replace("epochs = 1", "epochs = -1"), "epochs must be a positive integer"),
        (BASE + "checkpoint = 'final'\n", "train.fake-reader.checkpoint must be best or last"),
        (BASE + "[pipeline.options.fake-reader]\nmodel = 'x'\n", "[train.fake-reader] trains that model"),
        (BASE + "[axes]\n'pipeline.options.fake-reader.model' = ['a', 'b']\n", "trains that model"),
        ("[pipeline]\nretriever = 'fake'\n[train.fake-reader]\n", "no cell's pipeline uses fake-reader"),
        ("[pipeline\nretriever = 'fake'\n", "not valid TOML"),
        ("[sweep]\nmetric = 'f1'\n[pipeline]\nretriever = 'fake'\n", "needs a reader"),
    ],
)
def test_malformed_grid_files_name_the_bad_key(fake_plugins, odqa, tmp_path, text, contains):
    grid = write_grid(tmp_path, text)
    result = odqa(f"sweep --config {grid} --dry-run")
    assert_one_line_error(result, contains=contains)
    assert str(grid) in result.output
    assert not (tmp_path / "sweep-grid").exists()


def test_a_missing_grid_file(fake_plugins, odqa, tmp_path):
    assert_one_line_error(odqa(f"sweep --config {tmp_path / 'nope.toml'}"), contains="cannot read grid file")


def test_relative_paths_resolve_against_the_grid_file(fake_plugins, tmp_path, toy_files, monkeypatch):
    corpus, questions = toy_files
    (tmp_path / "grids").mkdir()
    grid = write_grid(
        tmp_path / "grids",
        f'[sweep]\noutput_dir = "../o"\n[pipeline]\nretriever = "fake"\ncorpus = "../{corpus.name}"\n'
        f'questions = {{path = "../{questions.name}"}}\n',
    )
    monkeypatch.chdir(tmp_path / "grids")
    parsed = read_grid(grid)
    assert parsed.output_dir == (tmp_path / "o").resolve()
    assert parsed.pipeline["corpus"] == str(corpus.resolve())
    assert parsed.questions.path == str(questions.resolve())


def test_select_articles():
    questions = data.load_questions(data.sample_questions_path())
    with pytest.raises(UsageError, match="by article"):
        select_articles(questions, ":1")
    with pytest.raises(UsageError, match="range like"):
        select_articles(questions, "3")


def test_select_articles_on_a_squad_file(tmp_path):
    payload = {
        "version": "1",
        "data": [
            {
                "title": f"t{i}",
                "paragraphs": [
                    {
                        "context": f"문단 {i} 내용입니다",
                        "qas": [
                            {
                                "id": f"q{i}",
                                "question": f"질문 {i}?",
                                "answers": [{"text": "내용", "answer_start": 5}],
                            }
                        ],
                    }
                ],
            }
            for i in range(5)
        ],
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    questions = data.load_questions(path)
    assert [q.id for q in select_articles(questions, ":2")] == ["q0", "q1"]
    assert [q.id for q in select_articles(questions, "3:")] == ["q3", "q4"]
    assert [q.id for q in select_articles(questions, "1:-3")] == ["q1"]


@pytest.mark.korquad
def test_korquad_benchmark_split(korquad_path):
    questions = data.load_questions(korquad_path)
    train, test = select_articles(questions, ":100"), select_articles(questions, "100:")
    assert len(train) + len(test) == len(questions) == 5774
    assert {q.metadata["article"] for q in test} == set(range(100, 140))


@pytest.mark.parametrize("where", ["../outside", "/etc"])
def test_a_cached_model_cannot_name_a_checkpoint_outside_its_directory(tmp_path, where):
    from odqa_experiments.caches import MODEL_FORMAT, MODEL_FORMAT_VERSION, MODEL_MANIFEST, load_checkpoints

    (tmp_path / "outside").mkdir()
    model = tmp_path / "models" / "dpr-0"
    model.mkdir(parents=True)
    rows = [{"epoch": 1, "path": where, "dev_metric": 0.5, "loss": 1.0}]
    manifest = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "epochs": rows}
    (model / MODEL_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(UsageError, match="is not inside the model directory"):
        load_checkpoints(model)
