"""``odqa train dpr``, ``odqa index --retriever dpr``, ``retrieve`` and ``evaluate`` end to end on the bundled sample.

Bad input must give one ``Error:`` line and a non-zero exit, and leave nothing half-written behind.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from dense_testdata import flip_byte
from odqa_dense.retriever import DPRRetriever
from odqa_transformers.testing import assert_a_second_training_is_refused

from odqa_core import data
from odqa_core.testing import assert_one_line_error, assert_refused_writing_nothing, run_cli, write_toy_files

SAMPLE_CORPUS = data.sample_corpus_path()
SAMPLE_QUESTIONS = data.sample_questions_path()
# The lengths the model below was trained with; the index encodes the same way.
LENGTHS = "-o passage_max_length=64 -o query_max_length=32"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``odqa train dpr`` on the bundled sample: micro bootstrap, 2 epochs."""
    output = tmp_path_factory.mktemp("cli") / "dpr"
    result = run_cli(
        f"train dpr --bootstrap micro --vocab-size 1000 --epochs 2 --output {output} --pooling mean --lr 3e-3 "
        "--batch-size 16 --passage-max-length 64 --query-max-length 32 --device cpu --seed 0 --eval-k 1,5,20"
    )
    assert result.exit_code == 0, result.output
    return output, result


@pytest.fixture(scope="module")
def index_dir(trained, tmp_path_factory):
    output, _ = trained
    index = tmp_path_factory.mktemp("cli") / "index"
    result = run_cli(
        f"index --retriever dpr --model {output / 'best'} --corpus {SAMPLE_CORPUS} --index-dir {index} {LENGTHS}"
    )
    assert result.exit_code == 0, result.output
    return index


def test_train_writes_report_and_checkpoints(trained):
    output, result = trained
    summary = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    report = json.loads((output / "report.json").read_text())
    assert summary == {"output": str(output), "best": report["best"], "select": "acc@20"}
    assert [row["epoch"] for row in report["epochs"]] == [1, 2] and report["done"] is True
    # no --dev-questions: a held-out share of the training questions selects the epoch
    assert 0 < report["n_dev"] < 30 and report["n_train"] + report["n_dev"] == 180  # the sample's training questions
    assert (output / "best" / "encoder.safetensors").is_file() and (output / "last" / "manifest.json").is_file()
    assert "best: epoch" in result.output


def test_index_retrieve_evaluate(trained, index_dir, tmp_path):
    output, _ = trained
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert (manifest["kind"], manifest["name"]) == ("retriever", "dpr")
    assert manifest["config"]["model"] == str((output / "best").resolve())
    run_file = tmp_path / "run.jsonl"
    result = run_cli(
        f"retrieve --index-dir {index_dir} --questions {SAMPLE_QUESTIONS} --top-k 20 --output {run_file} "
        "-o device=cpu"
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in run_file.read_text().splitlines()]
    assert len(rows) == 107 and all(len(row["hits"]) == 20 for row in rows)
    scores = [hit["score"] for hit in rows[0]["hits"]]
    assert scores == sorted(scores, reverse=True)

    result = run_cli(
        f"evaluate --run {run_file} --questions {SAMPLE_QUESTIONS} --index-dir {index_dir} --k 1,5,20 --json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["metrics"]) == {"doc", "answer"}
    for hit in ("doc", "answer"):
        for key in ("acc@1", "acc@5", "acc@20"):
            assert 0.0 <= report["metrics"][hit][key] <= 1.0
        assert report["metrics"][hit]["acc@1"] <= report["metrics"][hit]["acc@5"] <= report["metrics"][hit]["acc@20"]
    # 2 epochs of the micro model on its own training data beat chance (20 of 58 passages: 0.34) clearly
    assert report["metrics"]["answer"]["acc@20"] > 0.5


def test_runtime_options_at_retrieve(index_dir, tmp_path):
    plain, tuned = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for run_file, options in ((plain, ""), (tuned, "-o batch_size=7 -o device=cpu -o precision=fp32")):
        result = run_cli(
            f"retrieve --index-dir {index_dir} --questions {SAMPLE_QUESTIONS} --top-k 5 --output {run_file} {options}"
        )
        assert result.exit_code == 0, result.output
    ids = [[h["doc_id"] for h in json.loads(line)["hits"]] for line in plain.read_text().splitlines()]
    assert ids == [[h["doc_id"] for h in json.loads(line)["hits"]] for line in tuned.read_text().splitlines()]


def test_empty_corpus_is_a_one_line_error(trained, tmp_path):
    output, _ = trained
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    index = tmp_path / "index"
    result = run_cli(f"index --retriever dpr --model {output / 'best'} --corpus {empty} --index-dir {index}")
    assert_one_line_error(result, code=1, contains="no documents")
    assert not index.exists()


def test_missing_model_is_a_one_line_error(tmp_path):
    index = tmp_path / "index"
    result = run_cli(f"index --retriever dpr --model /no/such/dir --corpus {SAMPLE_CORPUS} --index-dir {index}")
    assert_one_line_error(result, contains="/no/such/dir")
    assert not index.exists()


def test_no_model_is_a_usage_error(tmp_path):
    # on the bundled sample 'odqa index' would train the demo model (model=sample), as 'odqa run' does
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "한강은 서울을 지나 서해로 흐른다."}, ensure_ascii=False) + "\n")
    result = run_cli(f"index --retriever dpr --corpus {corpus} --index-dir {tmp_path / 'index'}")
    assert_one_line_error(result, code=2, contains="needs a model")
    assert not (tmp_path / "index").exists()


def test_model_replaced_after_indexing(trained, other_micro_checkpoint, tmp_path):
    output, _ = trained
    model = shutil.copytree(output / "best", tmp_path / "model")
    index = tmp_path / "index"
    result = run_cli(f"index --retriever dpr --model {model} --corpus {SAMPLE_CORPUS} --index-dir {index}")
    assert result.exit_code == 0, result.output
    shutil.rmtree(model)
    shutil.copytree(other_micro_checkpoint, model)  # same path, same dimension, another model
    run_file = tmp_path / "run.jsonl"
    result = run_cli(f"retrieve --index-dir {index} --questions {SAMPLE_QUESTIONS} --output {run_file}")
    assert_one_line_error(result, code=1, contains="another model")
    assert not run_file.exists()


def test_corrupted_index_is_a_one_line_error(index_dir, tmp_path):
    index = shutil.copytree(index_dir, tmp_path / "index")
    flip_byte(index / "vectors.npy")
    run_file = tmp_path / "run.jsonl"
    command = f"retrieve --index-dir {index} --questions {SAMPLE_QUESTIONS} --output {run_file}"
    assert_refused_writing_nothing(command, run_file, code=1, contains="checksum")


def test_corrupted_checkpoint_is_a_one_line_error(trained, tmp_path):
    output, _ = trained
    model = shutil.copytree(output / "best", tmp_path / "model")
    flip_byte(model / "encoder.safetensors")
    index = tmp_path / "index"
    command = f"index --retriever dpr --model {model} --corpus {SAMPLE_CORPUS} --index-dir {index}"
    assert_refused_writing_nothing(command, index, code=1, contains="checksum")


def test_index_time_option_at_retrieve_is_a_usage_error(index_dir, tmp_path):
    run_file = tmp_path / "run.jsonl"
    result = run_cli(
        f"retrieve --index-dir {index_dir} --questions {SAMPLE_QUESTIONS} --output {run_file} -o pooling=mean"
    )
    assert_one_line_error(result, code=2, contains="pooling")
    assert not run_file.exists()


def test_failing_index_keeps_the_existing_index(trained, index_dir, tmp_path):
    output, _ = trained
    index = shutil.copytree(index_dir, tmp_path / "index")
    before = sorted((p.name, p.read_bytes()) for p in index.iterdir())
    bad_model = shutil.copytree(output / "best", tmp_path / "bad-model")
    flip_byte(bad_model / "encoder.safetensors")
    for model in ("/no/such/dir", bad_model):
        result = run_cli(f"index --retriever dpr --model {model} --corpus {SAMPLE_CORPUS} --index-dir {index}")
        assert_one_line_error(result)
    assert sorted((p.name, p.read_bytes()) for p in index.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad-model", "index"]  # no temporary leftovers
    questions = [q.text for q in data.load_questions(SAMPLE_QUESTIONS)[:10]]
    reloaded = DPRRetriever.load(index).search(questions, 5)
    original = DPRRetriever.load(index_dir).search(questions, 5)
    np.testing.assert_array_equal(reloaded.indices, original.indices)


@pytest.mark.parametrize(
    ("arguments", "contains"),
    [
        ("--epochs 0", "epochs"),
        ("--batch-size 0", "batch-size"),
        ("--select f1@3", "select"),
        ("--bootstrap huge", "bootstrap size"),
        ("--eval-k 0,5", "--eval-k"),
        ("--lr -1", "learning rate"),
    ],
)
def test_train_bad_options_are_usage_errors(arguments, contains, tmp_path):
    output = tmp_path / "out"
    result = run_cli(f"train dpr --output {output} {arguments}")
    assert_one_line_error(result, code=2, contains=contains)
    assert not output.exists()


def test_train_into_a_used_output_needs_resume(trained):
    output, _ = trained
    before = (output / "report.json").read_text()
    result = run_cli(f"train dpr --bootstrap micro --epochs 1 --output {output}")
    assert_one_line_error(result, code=2, contains="--resume")
    assert (output / "report.json").read_text() == before


def test_train_missing_questions_file(tmp_path):
    result = run_cli(f"train dpr --questions {tmp_path / 'absent.jsonl'} --output {tmp_path / 'out'}")
    assert_one_line_error(result, code=1, contains="absent.jsonl")
    assert not (tmp_path / "out").exists()


def test_train_is_listed(tmp_path):
    result = run_cli("train --help")
    assert result.exit_code == 0 and "dpr" in result.output
    result = run_cli("train dpr --help")
    assert result.exit_code == 0 and "--folds" in result.output and "Examples" in result.output
    rows = {row["name"]: row for row in json.loads(run_cli("plugins --json").output)}
    assert rows["dense"]["components"]["retrievers"] == ["dpr"]


def test_max_length_beyond_the_model_is_a_one_line_error(trained, tmp_path):
    output, _ = trained
    index = tmp_path / "index"
    result = run_cli(
        f"index --retriever dpr --model {output / 'best'} --corpus {SAMPLE_CORPUS} --index-dir {index} "
        "-o passage_max_length=1024"
    )
    assert_one_line_error(result)
    assert not index.exists()


def test_model_deleted_after_indexing(trained, tmp_path):
    output, _ = trained
    model = shutil.copytree(output / "best", tmp_path / "model")
    index = tmp_path / "index"
    assert (
        run_cli(f"index --retriever dpr --model {model} --corpus {SAMPLE_CORPUS} --index-dir {index}").exit_code == 0
    )
    shutil.rmtree(model)
    run_file = tmp_path / "run.jsonl"
    result = run_cli(f"retrieve --index-dir {index} --questions {SAMPLE_QUESTIONS} --output {run_file}")
    assert_one_line_error(result, code=1, contains=str(model))
    assert not run_file.exists()
    # ... and -o model=... points the index at a copy of the model it was built with
    shutil.copytree(output / "best", tmp_path / "moved")
    moved = tmp_path / "moved"
    result = run_cli(
        f"retrieve --index-dir {index} --questions {SAMPLE_QUESTIONS} --output {run_file} -o model={moved}"
    )
    assert result.exit_code == 0, result.output
    assert run_file.is_file()


def test_shared_heads_train_index_retrieve(tmp_path):
    """``--encoders shared-heads`` end to end: the index holds passage vectors after the passage head, questions
    go through the question head, and the run file ranks by their dot product."""
    import copy

    from odqa_dense.encoder import BiEncoder, passage_texts

    output, index, run_file = tmp_path / "dpr", tmp_path / "index", tmp_path / "run.jsonl"
    result = run_cli(
        f"train dpr --encoders shared-heads --bootstrap micro --vocab-size 1000 --epochs 1 --ict-epochs 0 "
        f"--output {output} --pooling mean --lr 3e-3 --batch-size 16 --passage-max-length 64 "
        "--query-max-length 32 --device cpu --seed 0 --eval-k 1,5,20"
    )
    assert result.exit_code == 0, result.output
    assert json.loads((output / "report.json").read_text())["config"]["encoders"] == "shared-heads"
    assert (output / "best" / "heads.safetensors").is_file()
    result = run_cli(
        f"index --retriever dpr --model {output / 'best'} --corpus {SAMPLE_CORPUS} --index-dir {index} {LENGTHS}"
    )
    assert result.exit_code == 0, result.output
    assert json.loads((index / "manifest.json").read_text())["params"]["encoders"] == "shared-heads"
    result = run_cli(
        f"retrieve --index-dir {index} --questions {SAMPLE_QUESTIONS} --top-k 5 --output {run_file} -o device=cpu"
    )
    assert result.exit_code == 0, result.output

    encoder = BiEncoder.load(str(output / "best"))
    headless = copy.copy(encoder)
    headless.heads = None
    documents = data.load_corpus(SAMPLE_CORPUS)
    texts = passage_texts(documents, include_title=True)
    stored = np.load(index / "vectors.npy", allow_pickle=False)
    np.testing.assert_allclose(stored, encoder.encode(texts, "passage", 64, desc=""), atol=1e-5)
    assert not np.allclose(stored, headless.encode(texts, "passage", 64, desc=""), atol=1e-3)

    questions = [q.text for q in data.load_questions(SAMPLE_QUESTIONS)]
    q_vectors = encoder.encode(questions, "question", 32, desc="")
    assert not np.allclose(q_vectors, headless.encode(questions, "question", 32, desc=""), atol=1e-3)
    rows = [json.loads(line) for line in run_file.read_text().splitlines()]
    ids = [d.id for d in documents]
    for row, vector in zip(rows, q_vectors):
        scores = stored @ vector
        assert [h["doc_id"] for h in row["hits"]][:1] == [ids[int(np.argmax(scores))]]
        np.testing.assert_allclose([h["score"] for h in row["hits"]], np.sort(scores)[::-1][:5], rtol=1e-4)


def test_a_second_training_into_the_same_output_is_refused(tmp_path):
    assert_a_second_training_is_refused("train dpr --bootstrap micro --epochs 1", tmp_path / "dpr")


def test_resume_into_a_directory_that_is_not_a_training_output_is_refused(tmp_path):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("my notes")
    result = run_cli(f"train dpr --bootstrap micro --epochs 1 --output {output} --resume")
    assert_one_line_error(result, code=2, contains="is not an odqa training output")
    assert sorted(p.name for p in output.iterdir()) == ["notes.txt"]


def test_a_selection_cut_off_beyond_the_corpus_is_a_one_line_error(tmp_path):
    corpus, questions = write_toy_files(tmp_path)
    result = run_cli(
        f"train dpr --corpus {corpus} --questions {questions} --bootstrap micro --output {tmp_path / 'o'}"
    )
    assert_one_line_error(result, code=2, contains="select acc@20 ranks the top 20 passages but the corpus has")
    assert not (tmp_path / "o").exists()
