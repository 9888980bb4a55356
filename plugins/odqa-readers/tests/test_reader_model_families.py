"""The readers with the model families users bring (:mod:`odqa_transformers.model_families`: tiny random-weight models
built offline with each family's own tokenizer), through the CLI.

Per family: ``odqa train reader`` on a dozen questions must learn them (EM ≥ 70 on those same questions — a family
that runs but cannot learn fails), and ``odqa run`` reads with the result. Encoder families also read as the raw
HuggingFace directory and start a reader from a DPR checkpoint of theirs (klue/roberta crashed all three ways:
segment ids 1 for a RoBERTa with one segment type). Seq2seq families include a BART that forces ``<s>`` first at
generation (facebook/bart-*), which lost every answer's first token while training targets did not start with it.
"""

from __future__ import annotations

import json
import shutil

import pytest
from odqa_transformers.model_families import (
    ENCODER_FAMILIES,
    FAMILY_QUESTIONS,
    SEQ2SEQ_FAMILIES,
    build_family_model,
    family_texts,
)
from odqa_transformers.testing import train_family_dpr

from odqa_core.testing import assert_one_line_error, run_cli

#: The dozen questions are both the training and the dev set: the best epoch's dev EM is the overfit score.
OVERFIT = "--epochs {epochs} --lr 5e-3 --batch-size 4 --warmup 0 --seed 0 --device cpu --select exact_match"
EXTRACTIVE = f"--reader extractive {OVERFIT.format(epochs=12)} -o max_length=64 -o doc_stride=16"
GENERATIVE = f"--reader generative {OVERFIT.format(epochs=25)} -o max_length=96 -o max_answer_length=12"
READ_EXTRACTIVE = "-o extractive.max_length=64 -o extractive.device=cpu"
READ_GENERATIVE = "-o generative.max_length=96 -o generative.max_answer_length=12 -o generative.device=cpu"
MIN_OVERFIT_EM = 70.0


@pytest.fixture(scope="session")
def trained(family_model, family_files, tmp_path_factory):
    """``trained(name)``: ``odqa train reader`` of the family's reader on the dozen questions, evaluated on them
    (the output directory), trained once per session."""
    done = {}

    def get(name: str):
        if name not in done:
            corpus, questions = family_files
            out = tmp_path_factory.mktemp("trained") / name
            settings = EXTRACTIVE if name in ENCODER_FAMILIES else GENERATIVE
            result = run_cli(
                f"train reader --model {family_model(name)} --corpus {corpus} --questions {questions} "
                f"--dev-questions {questions} --output {out} {settings}"
            )
            assert result.exit_code == 0, result.output
            done[name] = out
        return done[name]

    return get


def _reader_of(name: str) -> tuple[str, str]:
    return ("extractive", READ_EXTRACTIVE) if name in ENCODER_FAMILIES else ("generative", READ_GENERATIVE)


def _run(reader_model, reader_name, options, family_files, output, extra=""):
    corpus, questions = family_files
    return run_cli(
        f"run --retriever bm25 --reader {reader_name} -o {reader_name}.model={reader_model} {options} "
        f"--corpus {corpus} --questions {questions} --top-k 3 --reader-top-k 1 --output-dir {output} {extra}"
    )


ALL_FAMILIES = (*ENCODER_FAMILIES, *SEQ2SEQ_FAMILIES)


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_each_family_learns_the_dozen_questions(name, trained):
    report = json.loads((trained(name) / "report.json").read_text())
    best = max(row["dev"]["exact_match"] for row in report["epochs"])
    assert best >= MIN_OVERFIT_EM, f"{name}: dev EM per epoch {[r['dev'] for r in report['epochs']]}"
    assert report["best"]["metric"] == best


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_each_family_reads_in_odqa_run(name, trained, family_files, tmp_path):
    reader_name, options = _reader_of(name)
    result = _run(trained(name) / "best", reader_name, options, family_files, tmp_path / "run")
    assert result.exit_code == 0, result.output
    predictions = json.loads((tmp_path / "run" / "predictions.json").read_text())
    assert sorted(predictions) == sorted(q.id for q in FAMILY_QUESTIONS)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["reader_metrics"]["n_scored"] == len(FAMILY_QUESTIONS)


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_each_family_reads_as_the_huggingface_directory_it_came_in(name, family_model, family_files, tmp_path):
    """Untrained, straight from the model directory (a new QA head for the encoders): it must run."""
    reader_name, options = _reader_of(name)
    result = _run(family_model(name), reader_name, options, family_files, tmp_path / "run")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ENCODER_FAMILIES)
def test_each_encoder_family_starts_a_reader_from_its_dpr_checkpoint(name, family_model, family_files, tmp_path):
    model = family_model(name)
    corpus, questions = family_files
    dpr = tmp_path / "dpr"
    train_family_dpr(model, family_files, dpr, epochs=3)
    two_epochs = EXTRACTIVE.replace("--epochs 12", "--epochs 2")
    reader = run_cli(
        f"train reader --model {dpr / 'best'} --corpus {corpus} --questions {questions} "
        f"--dev-questions {questions} --output {tmp_path / 'reader'} {two_epochs}"
    )
    assert reader.exit_code == 0, reader.output
    manifest = json.loads((tmp_path / "reader" / "best" / "manifest.json").read_text())
    assert manifest["config"]["base_model"] == "(encoder)"


@pytest.mark.parametrize("name", SEQ2SEQ_FAMILIES)
def test_the_model_generation_settings_do_not_change_the_answers(name, trained, family_files, tmp_path):
    """A hub model's generation config may carry summarisation settings; odqa's generation uses its own."""
    out = trained(name)
    plain = tmp_path / "plain"  # the trained model as a HuggingFace directory (no manifest: editable)
    shutil.copytree(out / "best", plain, ignore=shutil.ignore_patterns("manifest.json"))
    settings = json.loads((plain / "generation_config.json").read_text())
    settings.update({"min_length": 12, "no_repeat_ngram_size": 1, "repetition_penalty": 5.0})
    (plain / "generation_config.json").write_text(json.dumps(settings))
    result = _run(plain, "generative", READ_GENERATIVE, family_files, tmp_path / "run")
    assert result.exit_code == 0, result.output
    reference = _run(out / "best", "generative", READ_GENERATIVE, family_files, tmp_path / "reference")
    assert reference.exit_code == 0, reference.output
    read = json.loads((tmp_path / "run" / "predictions.json").read_text())
    assert read == json.loads((tmp_path / "reference" / "predictions.json").read_text())


# --- models that cannot be loaded -------------------------------------------------------------------------------


@pytest.mark.parametrize(("reader_name", "family_name"), [("extractive", "klue-roberta"), ("generative", "kobart")])
def test_broken_or_unsafe_weights_are_one_line_errors(reader_name, family_name, family_files, tmp_path):
    import argparse

    import torch

    model = build_family_model(family_name, tmp_path / "model", family_texts(), hidden=32)
    options = READ_EXTRACTIVE if reader_name == "extractive" else READ_GENERATIVE
    garbage = shutil.copytree(model, tmp_path / "garbage")
    (garbage / "model.safetensors").write_bytes(b"\x00not safetensors" * 32)
    result = _run(garbage, reader_name, options, family_files, tmp_path / "run-garbage")
    assert_one_line_error(result, None, f"{garbage / 'model.safetensors'} is not a valid safetensors file")
    unsafe = shutil.copytree(model, tmp_path / "unsafe", ignore=shutil.ignore_patterns("model.safetensors"))
    torch.save({"weights": argparse.Namespace(note="code, not tensors")}, unsafe / "pytorch_model.bin")
    result = _run(unsafe, reader_name, options, family_files, tmp_path / "run-unsafe")
    assert_one_line_error(result, None, f"{unsafe / 'pytorch_model.bin'} is a pickle")
    corpus, questions = family_files
    training = run_cli(
        f"train reader --reader {reader_name} --model {unsafe} --corpus {corpus} --questions {questions} "
        f"--output {tmp_path / 'train'} --epochs 1 --device cpu"
    )
    assert_one_line_error(training, None, "convert it to safetensors")
