"""The bi-encoder: fast encoding equals the naive baseline; poolings, shared/separate/shared-heads towers,
checkpoints, loading."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from dense_testdata import flip_byte
from odqa_dense.encoder import BiEncoder
from odqa_transformers import hf
from odqa_transformers.bootstrap import bootstrap_encoder

from odqa_core import DataError, Document, IndexFormatError, UsageError
from odqa_core.storage import open_store
from odqa_core.testing import TOY_DOCUMENTS, TOY_QUESTIONS

MIXED = [
    "짧다",
    "The Han River flows through Seoul and into the Yellow Sea, past many bridges and parks, for a long while.",
    "abacus",
    "김치는 배추를 고춧가루와 마늘로 양념해 발효시킨 음식이다. " * 3,
    "",
    "Jeju Island has a volcano called Hallasan.",
    "ok",
    "한강은 서울을 가로질러 서해로 흘러가는 강이다.",
]
PAIRS = [("Han River", MIXED[1]), ("김치", MIXED[3]), ("", "untitled passage text"), ("t", "x")]


@pytest.fixture(scope="module")
def bootstrapped(vocab_texts):
    """An in-memory micro tokenizer + BERT (with a pooler layer)."""
    return bootstrap_encoder(vocab_texts, "micro", 500, 512, 11)


@pytest.fixture(scope="module")
def mean_encoder(bootstrapped):
    return BiEncoder.from_models(*bootstrapped, pooling="mean")


@pytest.fixture(scope="module")
def cls_encoder(bootstrapped):
    return BiEncoder.from_models(*bootstrapped, pooling="cls")


# --- encoding -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["cls", "mean", "pooler"])
@pytest.mark.parametrize("which", ["question", "passage"])
def test_fast_encoding_equals_naive(bootstrapped, pooling, which):
    encoder = BiEncoder.from_models(*bootstrapped, pooling=pooling)
    texts = MIXED + PAIRS if which == "passage" else MIXED
    fast = encoder.encode(texts, which, 48, batch_size=3, desc="")
    naive = encoder.encode_naive(texts, which, 48)
    assert fast.dtype == np.float32 and fast.shape == (len(texts), 32)
    np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-5)


def test_encoding_keeps_the_input_order(mean_encoder):
    fast = mean_encoder.encode(MIXED, "passage", 48, batch_size=2, desc="")
    one_by_one = np.stack([mean_encoder.encode([t], "passage", 48, desc="")[0] for t in MIXED])
    np.testing.assert_allclose(fast, one_by_one, rtol=0, atol=1e-5)
    reversed_ = mean_encoder.encode(MIXED[::-1], "passage", 48, batch_size=5, desc="")
    np.testing.assert_allclose(reversed_[::-1], fast, rtol=0, atol=1e-5)
    assert len({tuple(np.round(v, 4)) for v in fast}) == len(MIXED), "different texts gave the same vector"


def test_encoding_does_not_change_training_mode(mean_encoder):
    mean_encoder.train(True)
    try:
        mean_encoder.encode(MIXED[:2], "question", 16, desc="")
        assert mean_encoder.question_model.training
    finally:
        mean_encoder.train(False)


def test_truncation_at_max_length(mean_encoder):
    long = " ".join(["seoul busan"] * 100)
    ids = mean_encoder.tokenize([long, ("title", long)], 16)
    assert [len(r) for r in ids] == [16, 16]
    np.testing.assert_allclose(
        mean_encoder.encode([long], "passage", 16, desc=""),
        mean_encoder.encode_naive([long], "passage", 16),
        rtol=0,
        atol=1e-5,
    )
    with pytest.raises(UsageError, match="at least 4"):
        mean_encoder.tokenize(["a"], 3)


def test_empty_input_and_bad_arguments(mean_encoder):
    assert mean_encoder.encode([], "question", 16).shape == (0, 32)
    with pytest.raises(UsageError, match="batch size"):
        mean_encoder.encode(["a"], "question", 16, batch_size=0)
    with pytest.raises(ValueError, match="which"):
        mean_encoder.encode(["a"], "answer", 16)


def test_poolings_differ(bootstrapped):
    vectors = {
        pooling: BiEncoder.from_models(*bootstrapped, pooling=pooling).encode(MIXED, "passage", 48, desc="")
        for pooling in ("cls", "mean", "pooler")
    }
    assert not np.allclose(vectors["cls"], vectors["mean"], atol=1e-3)
    assert not np.allclose(vectors["cls"], vectors["pooler"], atol=1e-3)
    # pooler = tanh(dense(cls)): bounded by 1, unlike the raw cls vector of a LayerNorm output
    assert np.abs(vectors["pooler"]).max() <= 1.0 < np.abs(vectors["cls"]).max()


def test_mean_pooling_ignores_padding(mean_encoder):
    rows = mean_encoder.tokenize(["seoul", "a much longer text about busan and seoul"], 32)
    one = mean_encoder.embed_rows("passage", rows[:1])
    padded = mean_encoder.embed_rows("passage", rows)[:1]
    np.testing.assert_allclose(one.detach().numpy(), padded.detach().numpy(), rtol=0, atol=1e-5)


def test_pooler_on_a_model_without_pooler_is_a_usage_error(bootstrapped):
    from transformers import BertModel

    tokenizer, model = bootstrapped
    no_pooler = BertModel(model.config, add_pooling_layer=False)
    with pytest.raises(UsageError, match="pooler"):
        BiEncoder.from_models(tokenizer, no_pooler, pooling="pooler")
    BiEncoder.from_models(tokenizer, no_pooler, pooling="mean")  # other poolings are fine


@pytest.mark.parametrize(("kwargs", "match"), [({"pooling": "max"}, "pooling"), ({"encoders": "three"}, "encoders")])
def test_unknown_pooling_or_encoders(bootstrapped, kwargs, match):
    with pytest.raises(UsageError, match=match):
        BiEncoder.from_models(*bootstrapped, **kwargs)


# --- shared / separate, checkpoints -------------------------------------------------------------------------------


def test_shared_checkpoint_round_trip(mean_encoder, tmp_path):
    mean_encoder.save(tmp_path / "ck")
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert {"manifest.json", "config.json", "tokenizer.json", "encoder.safetensors"} <= set(files)
    assert not any(name.startswith(("question_", "passage_")) for name in files)
    manifest = json.loads((tmp_path / "ck" / "manifest.json").read_text())
    assert (manifest["kind"], manifest["name"]) == ("checkpoint", "dpr")
    assert manifest["config"] == {"encoders": "shared", "pooling": "mean"}
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    assert all(len(meta["sha256"]) == 64 for meta in manifest["files"].values())

    loaded = BiEncoder.load(str(tmp_path / "ck"))
    assert (loaded.encoders, loaded.pooling, loaded.dim) == ("shared", "mean", 32)
    assert loaded.question_model is loaded.passage_model
    assert loaded.fingerprint == hf.fingerprint(tmp_path / "ck") != ""
    for which, texts in (("question", MIXED), ("passage", MIXED + PAIRS)):
        np.testing.assert_array_equal(
            loaded.encode(texts, which, 48, desc=""), mean_encoder.encode(texts, which, 48, desc="")
        )
    assert loaded.tokenizer.tokenize("부산 항구 Busan") == mean_encoder.tokenizer.tokenize("부산 항구 Busan")


def test_separate_checkpoint_round_trip(bootstrapped, tmp_path):
    import torch

    encoder = BiEncoder.from_models(*bootstrapped, encoders="separate", pooling="mean")
    assert encoder.encoders == "separate" and encoder.question_model is not encoder.passage_model
    with torch.no_grad():  # make the towers really differ, as after training
        for p in encoder.question_model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    q_before = encoder.encode(MIXED, "question", 48, desc="")
    p_before = encoder.encode(MIXED, "passage", 48, desc="")
    assert not np.allclose(q_before, p_before, atol=1e-3)

    encoder.save(tmp_path / "ck")
    names = {p.name for p in (tmp_path / "ck").iterdir()}
    assert {"question_encoder.safetensors", "passage_encoder.safetensors"} <= names
    assert "encoder.safetensors" not in names
    loaded = BiEncoder.load(str(tmp_path / "ck"))
    assert loaded.encoders == "separate" and loaded.question_model is not loaded.passage_model
    np.testing.assert_array_equal(loaded.encode(MIXED, "question", 48, desc=""), q_before)
    np.testing.assert_array_equal(loaded.encode(MIXED, "passage", 48, desc=""), p_before)
    # the shared model's bytes are not the separate pair's: their fingerprints differ
    BiEncoder.from_models(*bootstrapped, pooling="mean").save(tmp_path / "shared")
    assert hf.fingerprint(tmp_path / "shared") != loaded.fingerprint


def shared_heads_encoder(bootstrapped, seed: int = 0, scale: float = 0.05):
    """A ``shared-heads`` bi-encoder whose two heads are moved off the identity, each its own way (as after
    training)."""
    import torch

    encoder = BiEncoder.from_models(*bootstrapped, encoders="shared-heads", pooling="mean")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in encoder.heads.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return encoder


def test_untrained_shared_heads_encode_exactly_as_the_shared_model(bootstrapped):
    shared = BiEncoder.from_models(*bootstrapped, pooling="mean")
    heads = BiEncoder.from_models(*bootstrapped, encoders="shared-heads", pooling="mean")
    assert heads.encoders == "shared-heads" and heads.question_model is heads.passage_model
    assert heads.dim == shared.dim == 32 and len(heads.head_parameters()) == 4 and shared.head_parameters() == []
    for which, texts in (("question", MIXED), ("passage", MIXED + PAIRS)):
        np.testing.assert_array_equal(
            heads.encode(texts, which, 48, batch_size=3, desc=""),
            shared.encode(texts, which, 48, batch_size=3, desc=""),
        )
        np.testing.assert_array_equal(heads.encode_naive(texts, which, 48), shared.encode_naive(texts, which, 48))


def test_shared_heads_apply_each_side_its_own_head(bootstrapped):
    import torch

    encoder = shared_heads_encoder(bootstrapped)
    shared = BiEncoder.from_models(*bootstrapped, pooling="mean")
    for which in ("question", "passage"):
        head = encoder.heads[which]
        pooled = torch.from_numpy(shared.encode(MIXED, which, 48, desc=""))
        expected = (pooled @ head.weight.detach().T + head.bias.detach()).numpy()
        np.testing.assert_allclose(encoder.encode(MIXED, which, 48, batch_size=3, desc=""), expected, atol=1e-5)
        np.testing.assert_allclose(encoder.encode_naive(MIXED, which, 48), expected, atol=1e-5)
    assert not np.allclose(
        encoder.encode(MIXED, "question", 48, desc=""), encoder.encode(MIXED, "passage", 48, desc=""), atol=1e-3
    )


def test_shared_heads_checkpoint_round_trip(bootstrapped, tmp_path):
    encoder = shared_heads_encoder(bootstrapped)
    q_before = encoder.encode(MIXED, "question", 48, desc="")
    p_before = encoder.encode(MIXED + PAIRS, "passage", 48, desc="")
    encoder.save(tmp_path / "ck")
    names = {p.name for p in (tmp_path / "ck").iterdir()}
    assert {"encoder.safetensors", "heads.safetensors"} <= names
    assert not any(name.startswith(("question_", "passage_")) for name in names)
    assert open_store(tmp_path / "ck").config == {"encoders": "shared-heads", "pooling": "mean"}

    loaded = BiEncoder.load(str(tmp_path / "ck"))
    assert loaded.encoders == "shared-heads" and loaded.question_model is loaded.passage_model
    np.testing.assert_array_equal(loaded.encode(MIXED, "question", 48, desc=""), q_before)
    np.testing.assert_array_equal(loaded.encode(MIXED + PAIRS, "passage", 48, desc=""), p_before)
    # the heads are part of the model: other heads on the same encoder, or none, are another fingerprint
    shared_heads_encoder(bootstrapped, seed=1).save(tmp_path / "other-heads")
    BiEncoder.from_models(*bootstrapped, pooling="mean").save(tmp_path / "shared")
    fingerprints = {loaded.fingerprint, hf.fingerprint(tmp_path / "other-heads"), hf.fingerprint(tmp_path / "shared")}
    assert len(fingerprints) == 3


def test_shared_heads_bad_heads_file_is_an_index_format_error(bootstrapped, tmp_path):
    from odqa_dense.encoder import identity_heads

    encoder = shared_heads_encoder(bootstrapped)
    encoder.save(tmp_path / "ck")
    flip_byte(tmp_path / "ck" / "heads.safetensors")
    with pytest.raises(IndexFormatError, match="heads.safetensors: checksum"):
        BiEncoder.load(str(tmp_path / "ck"))

    encoder.heads = identity_heads(16)  # heads of another width than the encoder's 32
    encoder.save(tmp_path / "narrow")
    with pytest.raises(IndexFormatError, match="heads.safetensors: cannot load weights"):
        BiEncoder.load(str(tmp_path / "narrow"))


def test_unknown_encoders_in_a_checkpoint_is_an_index_format_error(micro_checkpoint, tmp_path):
    path = shutil.copytree(micro_checkpoint, tmp_path / "ck")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["config"]["encoders"] = "triple"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="encoders 'triple' are not one of shared, separate, shared-heads"):
        BiEncoder.load(str(path))


def test_fingerprint_is_stable_across_copies_and_differs_between_models(
    micro_checkpoint, other_micro_checkpoint, tmp_path
):
    copy = shutil.copytree(micro_checkpoint, tmp_path / "copy")
    assert BiEncoder.load(str(copy)).fingerprint == BiEncoder.load(micro_checkpoint).fingerprint
    assert BiEncoder.load(other_micro_checkpoint).fingerprint != BiEncoder.load(micro_checkpoint).fingerprint


def test_corrupted_checkpoint_is_an_index_format_error(micro_checkpoint, tmp_path):
    path = shutil.copytree(micro_checkpoint, tmp_path / "ck")
    flip_byte(path / "encoder.safetensors")
    with pytest.raises(IndexFormatError, match="checksum"):
        BiEncoder.load(str(path))


def test_truncated_checkpoint_is_an_index_format_error(micro_checkpoint, tmp_path):
    path = shutil.copytree(micro_checkpoint, tmp_path / "ck")
    weights = path / "encoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(IndexFormatError, match="truncated"):
        BiEncoder.load(str(path))


def test_checkpoint_options_that_conflict(micro_checkpoint, hf_model_dir):
    with pytest.raises(UsageError, match="pooling 'mean', not 'cls'"):
        BiEncoder.load(micro_checkpoint, pooling="cls")
    with pytest.raises(UsageError, match="question_model"):
        BiEncoder.load(micro_checkpoint, question_model=hf_model_dir)
    assert BiEncoder.load(micro_checkpoint, pooling="mean").pooling == "mean"


def test_an_index_is_not_a_checkpoint(micro_checkpoint, tmp_path):
    from odqa_dense.retriever import DPRRetriever

    retriever = DPRRetriever(model=micro_checkpoint, device="cpu")
    retriever.index(list(TOY_DOCUMENTS))
    retriever.save(tmp_path / "index")
    with pytest.raises(DataError, match="not a DPR checkpoint"):
        BiEncoder.load(str(tmp_path / "index"))


# --- HuggingFace directories and ids ------------------------------------------------------------------------------


def test_huggingface_directory_loads_like_the_model(hf_model):
    hf_model_dir, tokenizer, model = hf_model
    loaded = BiEncoder.load(hf_model_dir, pooling="mean")
    assert (loaded.encoders, loaded.pooling, loaded.source) == ("shared", "mean", hf_model_dir)
    assert BiEncoder.load(hf_model_dir).pooling == "cls"
    expected = BiEncoder.from_models(tokenizer, model, pooling="mean")
    np.testing.assert_allclose(
        loaded.encode(MIXED, "passage", 48, desc=""), expected.encode(MIXED, "passage", 48, desc=""), atol=1e-6
    )
    assert loaded.fingerprint == hf.fingerprint(hf_model_dir)


def test_huggingface_question_model_pair(hf_model_dir, micro_checkpoint, vocab_texts, tmp_path):
    _, other = bootstrap_encoder(vocab_texts, "micro", 500, 512, 4)
    other.save_pretrained(str(tmp_path / "question"))
    pair = BiEncoder.load(hf_model_dir, question_model=str(tmp_path / "question"), pooling="mean")
    assert pair.encoders == "separate"
    single = BiEncoder.load(hf_model_dir, pooling="mean")
    np.testing.assert_array_equal(
        pair.encode(MIXED, "passage", 48, desc=""), single.encode(MIXED, "passage", 48, desc="")
    )
    assert not np.allclose(pair.encode(MIXED, "question", 48, desc=""), single.encode(MIXED, "question", 48, desc=""))
    assert pair.fingerprint != single.fingerprint

    _, wide = bootstrap_encoder(vocab_texts, "tiny", 500, 512, 0)
    wide.save_pretrained(str(tmp_path / "wide"))
    with pytest.raises(DataError, match="dimension 128.*32"):
        BiEncoder.load(hf_model_dir, question_model=str(tmp_path / "wide"))


def test_passage_input_is_title_and_text(mean_encoder):
    from odqa_dense.encoder import passage_texts

    docs = [Document("a", "text a", "Title"), Document("b", "text b")]
    assert passage_texts(docs, True) == [("Title", "text a"), "text b"]
    assert passage_texts(docs, False) == ["text a", "text b"]
    with_title = mean_encoder.encode(passage_texts(docs, True), "passage", 32, desc="")
    without = mean_encoder.encode(passage_texts(docs, False), "passage", 32, desc="")
    assert not np.allclose(with_title[0], without[0]) and np.allclose(with_title[1], without[1])


def test_questions_and_passages_share_a_shared_model(mean_encoder):
    texts = [q.text for q in TOY_QUESTIONS]
    np.testing.assert_array_equal(
        mean_encoder.encode(texts, "question", 32, desc=""), mean_encoder.encode(texts, "passage", 32, desc="")
    )


def test_a_stored_checkpoint_verifies(micro_checkpoint):
    assert open_store(micro_checkpoint, kind="checkpoint", name="dpr").config["pooling"] == "mean"


def test_bf16_on_cpu_is_close_to_fp32(mean_encoder):
    fp32 = mean_encoder.encode(MIXED, "passage", 48, desc="")
    bf16 = mean_encoder.encode(MIXED, "passage", 48, precision="bf16", desc="")
    assert bf16.dtype == np.float32
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.99
    assert not np.array_equal(fp32, bf16)  # autocast really ran in bf16


@pytest.mark.gpu
def test_cuda_encoding_matches_cpu(micro_checkpoint):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    cpu = BiEncoder.load(micro_checkpoint).encode(MIXED, "passage", 48, desc="")
    encoder = BiEncoder.load(micro_checkpoint).to(torch.device("cuda"))
    np.testing.assert_allclose(encoder.encode(MIXED, "passage", 48, desc=""), cpu, rtol=0, atol=1e-4)
    bf16 = encoder.encode(MIXED, "passage", 48, precision="bf16", desc="")
    cosine = (cpu * bf16).sum(1) / np.linalg.norm(cpu, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.99
