"""Encoder precisions of the dpr retriever: bf16 (CPU autocast) and int8 (dynamically quantized Linear layers).

Tolerance: every precision's vectors must keep a cosine ≥ 0.99 with the fp32 vectors of the same text, the bound
the bf16 tests already use. bf16 keeps 8 bits of mantissa (relative error ≈ 4e-3 per product) and int8 rounds
each weight to 1/254 of its tensor's range and each activation batch likewise; over the micro model's layer the
errors stay a few 1e-3 of the vector's norm (measured: cosine > 0.99999 on these texts), so 0.99 only fails when
the precision is not applied correctly (wrong model, wrong pooling, a missing scale), not from rounding. Vectors
must also differ from fp32's, or the precision did not run at all.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from odqa_dense.encoder import BiEncoder, resolve_encode_precision
from odqa_dense.retriever import DPRRetriever
from odqa_transformers import hf
from odqa_transformers.bootstrap import bootstrap_encoder

from odqa_core import UsageError, data
from odqa_core.storage import open_store
from odqa_core.testing import assert_one_line_error, run_cli

TEXTS = [
    ("한강", "한강은 서울을 가로질러 서해로 흘러가는 강이다."),
    "The Han River flows through Seoul and into the Yellow Sea, past many bridges and parks.",
    "김치는 배추를 고춧가루와 마늘로 양념해 발효시킨 음식이다. " * 3,
    "Jeju Island has a volcano called Hallasan.",
    "ok",
]
needs_bf16 = pytest.mark.skipif(not hf.cpu_bf16_native(), reason="this CPU has no bfloat16 instructions")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def encoder(vocab_texts):
    return BiEncoder.from_models(*bootstrap_encoder(vocab_texts, "micro", 500, 512, 5), pooling="mean")


# --- the encoder ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["question", "passage"])
def test_int8_vectors_are_close_to_fp32(encoder, which):
    fp32 = encoder.encode(TEXTS, which, 48, desc="")
    int8 = encoder.encode(TEXTS, which, 48, precision="int8", desc="")
    assert int8.dtype == np.float32 and int8.shape == fp32.shape
    assert cosines(fp32, int8).min() >= 0.99
    assert not np.array_equal(fp32, int8)  # the quantized model really ran


def test_int8_quantizes_the_linear_layers_of_a_copy(encoder):
    import torch

    quantized = encoder.int8_model("passage")
    assert quantized is not encoder.passage_model
    dynamic = [m for m in quantized.modules() if "quantized.dynamic" in type(m).__module__]
    assert len(dynamic) >= 4  # the micro layer's query, key, value, output, intermediate, ... and the pooler
    assert not any(type(m) is torch.nn.Linear for m in quantized.modules())
    assert any(type(m) is torch.nn.Linear for m in encoder.passage_model.modules())  # the fp32 model is untouched
    assert encoder.int8_model("question") is quantized  # one shared model, quantized once


def test_int8_copy_follows_changed_weights(vocab_texts):
    import torch

    enc = BiEncoder.from_models(*bootstrap_encoder(vocab_texts, "micro", 500, 512, 6), pooling="mean")
    before = enc.encode(TEXTS, "passage", 48, precision="int8", desc="")
    first = enc.int8_model("passage")
    with torch.no_grad():  # what an optimizer step does: the weights change in place
        for p in enc.passage_model.parameters():
            p.mul_(1.5)
    after = enc.encode(TEXTS, "passage", 48, precision="int8", desc="")
    assert enc.int8_model("passage") is not first
    fp32_after = enc.encode(TEXTS, "passage", 48, desc="")
    assert cosines(after, fp32_after).min() >= 0.99
    assert not np.allclose(before, after)


def test_shared_heads_apply_their_heads_in_int8(vocab_texts):
    import torch

    enc = BiEncoder.from_models(
        *bootstrap_encoder(vocab_texts, "micro", 500, 512, 7), encoders="shared-heads", pooling="mean"
    )
    with torch.no_grad():
        enc.heads["question"].weight.mul_(-1.0)  # questions now point the other way
    q = enc.encode(TEXTS, "question", 48, precision="int8", desc="")
    p = enc.encode(TEXTS, "passage", 48, precision="int8", desc="")
    assert cosines(q, -p).min() >= 0.99


@needs_bf16
def test_bf16_resolves_on_this_cpu():
    import torch

    assert resolve_encode_precision("bf16", torch.device("cpu")) == "bf16"


def test_precisions_a_device_cannot_run_are_usage_errors(monkeypatch):
    import torch

    cpu = torch.device("cpu")
    assert resolve_encode_precision("auto", cpu) == "fp32"
    assert resolve_encode_precision("int8", cpu) == "int8"
    with pytest.raises(UsageError, match="int8.*CPU only"):
        resolve_encode_precision("int8", torch.device("cuda"))
    with pytest.raises(UsageError, match="precision must be one of auto, fp32, bf16, fp16, int8, got 'int4'"):
        resolve_encode_precision("int4", cpu)
    monkeypatch.setattr(hf, "cpu_bf16_native", lambda: False)
    with pytest.raises(UsageError, match="bf16 needs a CPU with bfloat16 instructions"):
        resolve_encode_precision("bf16", cpu)


def test_encode_wants_a_resolved_precision(encoder):
    for precision in ("auto", "int4"):
        with pytest.raises(ValueError, match="resolved"):
            encoder.encode(TEXTS, "passage", 48, precision=precision, desc="")


# --- the retriever: option, manifest, search ------------------------------------------------------------------------

PRECISIONS = ["int8", pytest.param("bf16", marks=needs_bf16)]


@pytest.fixture(scope="module")
def fp32_index(micro_checkpoint, sample_documents, tmp_path_factory):
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    retriever.index(sample_documents)
    path = tmp_path_factory.mktemp("precision") / "fp32"
    retriever.save(path)
    return retriever, path


@pytest.fixture(scope="module")
def queries(sample_questions):
    return [q.text for q in sample_questions]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_index_records_its_precision_and_search_reuses_it(
    precision, fp32_index, micro_checkpoint, sample_documents, queries, tmp_path
):
    reference, _ = fp32_index
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu", precision=precision)
    retriever.index(sample_documents)
    assert cosines(retriever.passage_vectors, reference.passage_vectors).min() >= 0.99
    assert not np.array_equal(retriever.passage_vectors, reference.passage_vectors)
    retriever.save(tmp_path / "index")
    store = open_store(tmp_path / "index")
    assert store.params["encoder_precision"] == precision and store.config["precision"] == precision

    loaded = DPRRetriever.load(tmp_path / "index")
    assert loaded.encode_precision == precision
    np.testing.assert_array_equal(loaded.encode_queries(queries), retriever.encode_queries(queries))
    # an index built with the default precision ('auto') searches in the precision it recorded, not auto's fp32
    auto = DPRRetriever.load(tmp_path / "index", {"precision": "auto"})
    assert auto.encode_precision == precision
    # an explicit precision at search time overrides it (a runtime option)
    assert DPRRetriever.load(tmp_path / "index", {"precision": "fp32"}).encode_precision == "fp32"


@pytest.mark.parametrize("precision", PRECISIONS)
def test_top1_matches_fp32_where_fp32_is_not_a_near_tie(
    precision, fp32_index, micro_checkpoint, sample_documents, queries
):
    reference, _ = fp32_index
    expected = reference.search(queries, 2)
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu", precision=precision)
    retriever.index(sample_documents)
    got = retriever.search(queries, 2)
    # fp32's top-1 is stable where fp32's margin over the runner-up exceeds how far this precision moves those two
    # scores (then rounding alone cannot swap them); near ties may flip. Most questions must be stable here, or
    # the test would compare nothing; every stable one must keep its top-1 (no other passage overtakes either).
    moved = np.abs(retriever.score(queries, expected.indices) - expected.scores).sum(1)
    stable = expected.scores[:, 0] - expected.scores[:, 1] > moved
    assert stable.mean() > 0.5
    np.testing.assert_array_equal(got.indices[stable, 0], expected.indices[stable, 0])


def test_auto_index_records_the_resolved_precision(fp32_index):
    _, path = fp32_index
    store = open_store(path)
    assert store.config["precision"] == "auto" and store.params["encoder_precision"] == "fp32"
    assert DPRRetriever.load(path).encode_precision == "fp32"


@needs_bf16
def test_bf16_index_searched_where_bf16_cannot_run_falls_back_to_fp32(
    micro_checkpoint, sample_documents, queries, tmp_path, monkeypatch
):
    retriever = DPRRetriever(model=micro_checkpoint, device="cpu", precision="bf16")
    retriever.index(sample_documents)
    retriever.save(tmp_path / "index")
    monkeypatch.setattr(hf, "cpu_bf16_native", lambda: False)
    with pytest.raises(UsageError, match="bf16 needs a CPU"):  # asked for explicitly (the index's option): refused
        DPRRetriever.load(tmp_path / "index").warm_up()
    loaded = DPRRetriever.load(tmp_path / "index", {"precision": "auto"})
    with pytest.warns(UserWarning, match="encoded in bf16 .* encoding questions in fp32"):
        assert loaded.encode_precision == "fp32"
    assert loaded.search(queries, 3).indices.shape == (len(queries), 3)


@pytest.mark.parametrize("value", ["int4", "INT8", 8, None])
def test_bad_precision_is_a_usage_error(value):
    with pytest.raises(UsageError, match="precision"):
        DPRRetriever.from_options({"precision": value})


def test_int8_precision_on_a_gpu_is_a_usage_error(micro_checkpoint, sample_documents, monkeypatch):
    import torch

    monkeypatch.setattr(hf, "resolve_device", lambda device: torch.device("cuda"))
    with pytest.raises(UsageError, match="int8.*CPU only"):
        DPRRetriever(model=micro_checkpoint, device="cuda", precision="int8").index(sample_documents)


# --- the command line -----------------------------------------------------------------------------------------------


def test_cli_index_and_retrieve_in_int8(micro_checkpoint, fp32_index, tmp_path):
    corpus, questions = data.sample_corpus_path(), data.sample_questions_path()
    index = tmp_path / "index"
    result = run_cli(
        f"index --retriever dpr --model {micro_checkpoint} --corpus {corpus} --index-dir {index} "
        "-o precision=int8 -o device=cpu"
    )
    assert result.exit_code == 0, result.output
    assert json.loads((index / "manifest.json").read_text())["params"]["encoder_precision"] == "int8"
    run_file = tmp_path / "run.jsonl"
    result = run_cli(f"retrieve --index-dir {index} --questions {questions} --top-k 3 --output {run_file}")
    assert result.exit_code == 0, result.output
    assert len(run_file.read_text().splitlines()) == len(data.load_questions(questions))


def test_cli_bad_precision_is_a_one_line_error(micro_checkpoint, fp32_index, tmp_path):
    corpus = data.sample_corpus_path()
    index = tmp_path / "index"
    result = run_cli(
        f"index --retriever dpr --model {micro_checkpoint} --corpus {corpus} --index-dir {index} -o precision=int4"
    )
    assert_one_line_error(result, contains="precision")
    assert "int8" in result.output
    assert not index.exists()
    _, built = fp32_index
    result = run_cli(
        f"retrieve --index-dir {built} --questions {data.sample_questions_path()} --top-k 3 "
        f"--output {tmp_path / 'run.jsonl'} -o precision=int4"
    )
    assert_one_line_error(result, contains="precision")
    assert not (tmp_path / "run.jsonl").exists()


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "native"), [(False, False, False), (True, False, True), (False, True, True)]
)
def test_cpu_bf16_native_reads_the_cpu_flags(avx512_bf16, amx, native, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert hf.cpu_bf16_native() is native


# --- torch.compile --------------------------------------------------------------------------------------------------


def test_compiled_encoding_equals_eager_and_is_a_runtime_option(
    micro_checkpoint, sample_documents, queries, tmp_path, monkeypatch
):
    # inductor writes its kernels under TORCHINDUCTOR_CACHE_DIR: keep them in this test's directory
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    eager = DPRRetriever(model=micro_checkpoint, device="cpu")
    eager.index(sample_documents[:8])
    eager.save(tmp_path / "index")
    compiled = DPRRetriever.load(tmp_path / "index", {"compile": True})
    some = queries[:6]
    # the same kernels up to float reassociation (compiled fp32 matches eager to ~1e-6, measured)
    np.testing.assert_allclose(compiled.encode_queries(some), eager.encode_queries(some), rtol=0, atol=1e-4)
    assert compiled.encoder.compiled_model("question") is compiled.encoder.compiled_model("passage")
    assert (tmp_path / "inductor").is_dir()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_bad_compile_is_a_usage_error(value):
    with pytest.raises(UsageError, match="compile"):
        DPRRetriever.from_options({"compile": value})


def test_compile_with_int8_is_a_usage_error(encoder):
    with pytest.raises(UsageError, match="compile.*int8"):
        DPRRetriever.from_options({"compile": True, "precision": "int8"})
    with pytest.raises(UsageError, match="compile.*not to int8"):
        encoder.encode(TEXTS, "passage", 48, precision="int8", compile=True, desc="")
