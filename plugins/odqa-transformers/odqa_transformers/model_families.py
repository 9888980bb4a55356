"""Tiny random-weight models of the families users bring, built offline, for tests.

odqa's users start from ``klue/roberta``, ``klue/bert``, KoELECTRA, XLM-RoBERTa, KoBART, BART and KE-T5/mT5. Each
family has its own quirks — klue's RoBERTa has one segment type but a BERT WordPiece tokenizer that emits segment
ids 1 and numbers ``[CLS]=0 [PAD]=1 [SEP]=2``; ELECTRA has no pooler; XLM-R and T5 use a sentencepiece (Unigram)
vocabulary; BART decodes from ``</s>`` and facebook's checkpoints force ``<s>`` as the first generated token;
KoBART's tokenizer adds no special tokens at all. :func:`build_family_model` writes a HuggingFace model directory
of a family (``config.json``, tokenizer files, ``model.safetensors``) with the family's own tokenizer class and
special-token layout, its vocabulary learned from the given texts, and a model of hidden size ``hidden`` with one
layer, so that every code path that loads a user's model can be tested against every family in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odqa_core.errors import UsageError
from odqa_core.types import Document, Question


@dataclass(frozen=True)
class Family:
    """How to build one family: ``kind`` is ``encoder`` (DPR, extractive reader) or ``seq2seq`` (generative)."""

    kind: str
    build: Callable[[Sequence[str], int, int, int], tuple[Any, Any]]
    description: str


def _bert_tokenizer(texts: Sequence[str], vocab_size: int, specials: Sequence[str]) -> Any:
    from tokenizers import normalizers
    from transformers import BertTokenizerFast

    from odqa_transformers.bootstrap import SPECIAL_TOKEN_ROLES, wordpiece_backend

    # klue and KoELECTRA keep case and accents (accent stripping would decompose Hangul into jamo). Learned as the
    # bootstrap's (the same tokenizer.json in every process), specials numbered as given.
    normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    backend = wordpiece_backend(texts, vocab_size, normalizer, specials)
    return BertTokenizerFast(
        tokenizer_object=backend,
        do_lower_case=False,
        strip_accents=False,
        **SPECIAL_TOKEN_ROLES,
        model_max_length=512,
    )


#: klue's vocabulary starts ``[CLS] [PAD] [SEP] [UNK] [MASK]``; BERT's and KoELECTRA's ``[PAD] [UNK] [CLS] [SEP]``.
KLUE_SPECIALS = ("[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]")
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _encoder_dims(hidden: int, layers: int) -> dict[str, Any]:
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }


#: RoBERTa's layout (klue/roberta's and XLM-R's): one segment type, ``<s>``/``[CLS]``=0 pads with 1, ends with 2,
#: positions offset by the padding id (514 for 512 tokens).
_ROBERTA_LAYOUT = {
    "type_vocab_size": 1,
    "max_position_embeddings": 514,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}


def _klue_roberta(texts: Sequence[str], vocab_size: int, hidden: int, layers: int) -> tuple[Any, Any]:
    from transformers import RobertaConfig, RobertaForMaskedLM

    tokenizer = _bert_tokenizer(texts, vocab_size, KLUE_SPECIALS)
    config = RobertaConfig(vocab_size=len(tokenizer), **_ROBERTA_LAYOUT, **_encoder_dims(hidden, layers))
    return tokenizer, RobertaForMaskedLM(config)


def _bert(texts: Sequence[str], vocab_size: int, hidden: int, layers: int) -> tuple[Any, Any]:
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = _bert_tokenizer(texts, vocab_size, BERT_SPECIALS)
    config = BertConfig(
        vocab_size=len(tokenizer), max_position_embeddings=512, pad_token_id=0, **_encoder_dims(hidden, layers)
    )
    return tokenizer, BertForMaskedLM(config)


def _electra(texts: Sequence[str], vocab_size: int, hidden: int, layers: int) -> tuple[Any, Any]:
    from transformers import ElectraConfig, ElectraForPreTraining

    tokenizer = _bert_tokenizer(texts, vocab_size, BERT_SPECIALS)
    config = ElectraConfig(
        vocab_size=len(tokenizer),
        embedding_size=hidden,
        max_position_embeddings=512,
        pad_token_id=0,
        **_encoder_dims(hidden, layers),
    )
    return tokenizer, ElectraForPreTraining(config)


def _unigram(texts: Sequence[str], vocab_size: int, specials: Sequence[str], unk: str) -> Any:
    """A sentencepiece-like Unigram tokenizer (``▁`` marks a word start), as XLM-R and T5 ship."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=list(specials), unk_token=unk, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def _xlm_roberta(texts: Sequence[str], vocab_size: int, hidden: int, layers: int) -> tuple[Any, Any]:
    from tokenizers import processors
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaTokenizerFast

    backend = _unigram(texts, vocab_size, ("<s>", "<pad>", "</s>", "<unk>", "<mask>"), "<unk>")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer = XLMRobertaTokenizerFast(tokenizer_object=backend, model_max_length=512)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), **_ROBERTA_LAYOUT, **_encoder_dims(hidden, layers))
    return tokenizer, XLMRobertaForMaskedLM(config)


def _seq2seq_dims(hidden: int, layers: int) -> dict[str, Any]:
    return {
        "d_model": hidden,
        "encoder_layers": layers,
        "decoder_layers": layers,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 2 * hidden,
        "decoder_ffn_dim": 2 * hidden,
        "max_position_embeddings": 512,
        # BART's default init (std 0.02) suits d_model 768-1024; at a tiny width its cross-attention starts so flat
        # that the decoder first learns the answers' marginal distribution and stays there for hundreds of steps.
        "init_std": hidden**-0.5,
        "dropout": 0.0,
        "attention_dropout": 0.0,
    }


def _bart_model(vocab_size: int, pad_id: int, bos_id: int, eos_id: int, hidden: int, layers: int) -> Any:
    """A BART that starts decoding from ``</s>`` (``eos_id``) and ends every generation with it (BART, KoBART)."""
    from transformers import BartConfig, BartForConditionalGeneration

    config = BartConfig(
        vocab_size=vocab_size,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        **dict.fromkeys(("eos_token_id", "decoder_start_token_id", "forced_eos_token_id"), eos_id),
        **_seq2seq_dims(hidden, layers),
    )
    return BartForConditionalGeneration(config)


def _bart_with(forced_bos: bool) -> Callable[[Sequence[str], int, int, int], tuple[Any, Any]]:
    def build(texts: Sequence[str], vocab_size: int, hidden: int, layers: int) -> tuple[Any, Any]:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
        from transformers import BartTokenizerFast

        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer)
        backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
        tokenizer = BartTokenizerFast(tokenizer_object=backend, model_max_length=512)
        model = _bart_model(len(tokenizer), pad_id=1, bos_id=0, eos_id=2, hidden=hidden, layers=layers)
        if forced_bos:  # as facebook/bart-*: generation starts </s> <s>, the decoder input of BART's pre-training
            model.generation_config.forced_bos_token_id = 0
        return tokenizer, model

    return build


def _kobart(texts: Sequence[str], vocab_size: int, hidden: int, layers: int) -> tuple[Any, Any]:
    """KoBART's layout: a ``▁``-prefixed BPE in a plain ``PreTrainedTokenizerFast`` that adds no special tokens,
    ``<s>=0 </s>=1 <usr>=2 <pad>=3 <sys>=4 <unk>=5 <mask>=6``, decoding from ``</s>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<usr>", "<pad>", "<sys>", "<unk>", "<mask>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )
    return tokenizer, _bart_model(len(tokenizer), pad_id=3, bos_id=0, eos_id=1, hidden=hidden, layers=layers)


def _mt5(texts: Sequence[str], vocab_size: int, hidden: int, layers: int) -> tuple[Any, Any]:
    """mT5 / KE-T5 (T5 v1.1: gated GELU, untied output embedding) with a Unigram vocabulary, ``<pad>=0 </s>=1``."""
    from tokenizers import processors
    from transformers import MT5Config, MT5ForConditionalGeneration, T5TokenizerFast

    backend = _unigram(texts, vocab_size, ("<pad>", "</s>", "<unk>"), "<unk>")
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = T5TokenizerFast(tokenizer_object=backend, extra_ids=0, model_max_length=512)
    config = MT5Config(
        vocab_size=len(tokenizer),
        d_model=hidden,
        d_kv=hidden // 4,
        d_ff=2 * hidden,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return tokenizer, MT5ForConditionalGeneration(config)


FAMILIES: dict[str, Family] = {
    "klue-roberta": Family("encoder", _klue_roberta, "RoBERTa, type_vocab_size 1, klue's WordPiece [CLS]=0 [PAD]=1"),
    "bert": Family("encoder", _bert, "BERT (klue/bert), WordPiece [PAD]=0, two segment types"),
    "electra": Family("encoder", _electra, "ELECTRA discriminator (KoELECTRA): no pooler"),
    "xlm-roberta": Family("encoder", _xlm_roberta, "XLM-RoBERTa with a Unigram (sentencepiece) vocabulary"),
    "bart": Family("seq2seq", _bart_with(forced_bos=False), "BART, byte-level BPE"),
    "bart-forced-bos": Family("seq2seq", _bart_with(forced_bos=True), "BART forcing <s> first (facebook/bart-*)"),
    "kobart": Family("seq2seq", _kobart, "KoBART: char BPE, no special tokens added, </s>=1"),
    "mt5": Family("seq2seq", _mt5, "mT5 / KE-T5 (T5 v1.1) with a Unigram vocabulary"),
}
ENCODER_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.kind == "encoder")
SEQ2SEQ_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.kind == "seq2seq")


#: Six short passages, each answering two questions of :data:`FAMILY_QUESTIONS` with a whole word or two (so that
#: a span of any family's tokens can be the answer exactly): the overfit check of every family. Two questions per
#: passage make the reader read the question, not just remember which word of a passage is its answer.
FAMILY_DOCUMENTS: tuple[Document, ...] = (
    Document("f-1", "신미양요는 1871년 강화도 앞바다에서 일어난 전쟁이다.", "신미양요"),
    Document("f-2", "The Han River flows through Seoul and into the Yellow Sea.", "Han River"),
    Document("f-3", "한라산은 제주도 한가운데 있는 화산이며 높이는 1947미터 정도이다.", "한라산"),
    Document("f-4", "Busan is a port city famous for the Jagalchi fish market and Haeundae beach.", "Busan"),
    Document("f-5", "훈민정음은 1443년 세종대왕 시대에 만들어진 문자이다.", "훈민정음"),
    Document("f-6", "Kimchi is fermented cabbage seasoned with chili and garlic.", "Kimchi"),
)
FAMILY_QUESTIONS: tuple[Question, ...] = tuple(
    Question(f"fq-{i}", text, (answer,), doc_ids=(doc,))
    for i, (doc, text, answer) in enumerate(
        [
            ("f-1", "신미양요는 언제 일어났는가?", "1871년"),
            ("f-1", "신미양요는 어느 섬 앞바다에서 일어났는가?", "강화도"),
            ("f-2", "Which sea does the Han River flow into?", "Yellow Sea"),
            ("f-2", "Which city does the Han River flow through?", "Seoul"),
            ("f-3", "한라산의 높이는 얼마인가?", "1947미터"),
            ("f-3", "한라산은 어느 섬에 있는가?", "제주도"),
            ("f-4", "Which fish market is Busan famous for?", "Jagalchi"),
            ("f-4", "Which beach is Busan famous for?", "Haeundae"),
            ("f-5", "훈민정음은 어느 왕의 시대에 만들어졌는가?", "세종대왕"),
            ("f-5", "훈민정음은 몇 년에 만들어졌는가?", "1443년"),
            ("f-6", "What vegetable is kimchi made from?", "cabbage"),
            ("f-6", "Kimchi is seasoned with chili and what else?", "garlic"),
        ],
        start=1,
    )
)


def family_texts() -> list[str]:
    """The texts a family's vocabulary is learned from: the passages and questions above."""
    return [*(f"{d.title} {d.text}" for d in FAMILY_DOCUMENTS), *(q.text for q in FAMILY_QUESTIONS)]


def build_family_model(
    family: str,
    directory: str | Path,
    texts: Sequence[str],
    *,
    vocab_size: int = 400,
    hidden: int = 32,
    layers: int = 1,
    seed: int = 0,
) -> Path:
    """Write a random-weight model of ``family`` (:data:`FAMILIES`) with a vocabulary learned from ``texts`` as a
    HuggingFace model directory (``config.json``, tokenizer files, ``model.safetensors``); returns its path."""
    import torch

    from odqa_transformers.hf import quiet_transformers

    if family not in FAMILIES:
        raise UsageError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    quiet_transformers()
    torch.manual_seed(seed)
    tokenizer, model = FAMILIES[family].build(list(texts), vocab_size, hidden, layers)
    directory = Path(directory)
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    return directory


class FamilyModels:
    """``models(family)``: the model directory of ``family`` under ``root`` (:func:`build_family_model` on the
    family texts), built on first request and reused after (the tests build each family once per session)."""

    def __init__(self, root: str | Path, hidden: int = 64) -> None:
        self.root = Path(root)
        self.hidden = hidden
        self._built: dict[str, Path] = {}

    def __call__(self, family: str) -> Path:
        if family not in self._built:
            self._built[family] = build_family_model(family, self.root / family, family_texts(), hidden=self.hidden)
        return self._built[family]


__all__ = [
    "ENCODER_FAMILIES",
    "FAMILIES",
    "FamilyModels",
    "FAMILY_DOCUMENTS",
    "FAMILY_QUESTIONS",
    "SEQ2SEQ_FAMILIES",
    "Family",
    "build_family_model",
    "family_texts",
]
