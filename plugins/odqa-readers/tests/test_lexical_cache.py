"""The lexical reader's per-passage cache (odqa_readers.lexical.PassageTableCache): the question-independent work of
reading is done once per passage text, and reading answers exactly as without it — first call or repeated, a batch
or one question at a time — never with another passage's table, within its memory bound."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from odqa_readers import lexical
from odqa_readers.extractive import ExtractiveReader
from odqa_readers.lexical import LexicalModel, LexicalSettings, PassageTableCache, TrainingPassage, passage_table

from odqa_core.errors import UsageError
from odqa_core.types import Document, RankedResults

SMALL = {"hash_bits": 14, "idf_bits": 10, "max_iter": 40}


@pytest.fixture(scope="module")
def sample_model(sample) -> LexicalModel:
    """A small lexical model trained on the gold passages of the sample's first 40 training questions."""
    documents, train, _ = sample
    by_id = {d.id: d for d in documents}
    train = [q for q in train if q.doc_ids and q.doc_ids[0] in by_id][:40]
    passages = [[TrainingPassage(by_id[q.doc_ids[0]], q.answers)] for q in train]
    return LexicalModel.train(train, passages, documents, LexicalSettings(**SMALL))


def with_cache(model: LexicalModel, max_bytes: int) -> LexicalModel:
    return dataclasses.replace(model, passage_cache=PassageTableCache(max_bytes))


def retrieved(n_questions: int, documents, k: int = 5) -> RankedResults:
    """A fixed list of ``k`` passages per question; neighbouring questions share passages."""
    indices = (np.arange(n_questions)[:, None] * 3 + np.arange(k)[None, :] * 7) % len(documents)
    scores = np.tile(np.linspace(10.0, 6.0, k, dtype=np.float32), (n_questions, 1))
    return RankedResults(indices.astype(np.int64), scores, documents)


def one_row(results: RankedResults, i: int) -> RankedResults:
    return RankedResults(results.indices[i : i + 1], results.scores[i : i + 1], results.documents)


def exact(predictions) -> list[list[tuple]]:
    """Everything a prediction holds, floats by their bits."""
    return [
        [(p.question_id, p.answer, p.score.hex(), p.doc_id, p.start, sorted(p.metadata.items())) for p in row]
        for row in predictions
    ]


def test_cached_reading_is_bit_identical_first_repeated_batched_and_one_by_one(sample, sample_model):
    documents, _, questions = sample
    results = retrieved(len(questions), documents)
    reference = exact(with_cache(sample_model, 0).read(questions, results, n_best=5))
    assert all(reference), "every question has an answer to compare"
    cached = with_cache(sample_model, 64 << 20)
    first = exact(cached.read(questions, results, n_best=5))
    assert cached.passage_cache.misses > 0 and len(cached.passage_cache) <= len(documents)
    misses = cached.passage_cache.misses
    repeated = exact(cached.read(questions, results, n_best=5))
    assert cached.passage_cache.misses == misses and cached.passage_cache.hits > 0  # all from the cache
    one_by_one = [exact(cached.read([q], one_row(results, i), n_best=5))[0] for i, q in enumerate(questions)]
    fresh_one_by_one = with_cache(sample_model, 64 << 20)
    cold = [exact(fresh_one_by_one.read([q], one_row(results, i), n_best=5))[0] for i, q in enumerate(questions)]
    small_blocks = exact(with_cache(sample_model, 64 << 20).read(questions, results, n_best=5, pair_block=7))
    assert first == reference
    assert repeated == reference
    assert one_by_one == reference
    assert cold == reference
    assert small_blocks == reference


def test_split_then_concatenated_tables_equal_the_table_of_all_passages(sample):
    documents = sample[0]
    texts = [d.text for d in documents[:6]] + ["", documents[0].text]  # an empty passage and a repeated one
    table = passage_table(texts, LexicalSettings(), lexical._Hasher(), use_kiwi=lexical.kiwi_available())
    parts = lexical._split_table(table)
    assert [p.texts for p in parts] == [[t] for t in texts]
    rebuilt = lexical._concat_tables(parts)
    for name, value in vars(table).items():
        if isinstance(value, np.ndarray):
            assert rebuilt.__dict__[name].dtype == value.dtype, name
            assert np.array_equal(rebuilt.__dict__[name], value), name
        else:
            assert rebuilt.__dict__[name] == value, name


def test_two_passages_with_one_id_and_different_texts_never_share_a_table(sample, sample_model):
    documents, _, questions = sample
    first, second = documents[0], documents[1]
    twins = [Document("same-id", first.text, first.title), Document("same-id", second.text, second.title)]
    cached = with_cache(sample_model, 64 << 20)
    uncached = with_cache(sample_model, 0)
    qs = questions[:3]
    for row in (0, 1, 0):
        results = RankedResults(np.full((len(qs), 1), row, np.int64), np.ones((len(qs), 1), np.float32), twins)
        got = exact(cached.read(qs, results, n_best=3))
        assert got == exact(uncached.read(qs, results, n_best=3))
        assert all(twins[row].text[p[4] : p[4] + len(p[1])] == p[1] for r in got for p in r)
    assert len(cached.passage_cache) == 2


def test_the_cache_stays_within_its_bound_and_drops_the_least_recently_used(sample, sample_model):
    documents, _, questions = sample
    one = lexical._table_bytes(
        passage_table([documents[0].text], sample_model.settings, lexical._Hasher(), sample_model.use_kiwi)
    )
    bound = 3 * one  # room for about three passages
    cached = with_cache(sample_model, bound)
    results = retrieved(len(questions), documents)
    reference = exact(with_cache(sample_model, 0).read(questions, results, n_best=5))
    assert exact(cached.read(questions, results, n_best=5)) == reference
    cache = cached.passage_cache
    assert 0 < len(cache) < len({int(r) for r in results.indices.ravel()})
    assert cache.bytes <= bound
    assert cache.bytes == sum(size for _, size in cache._entries.values())
    last = documents[int(results.indices[-1, -1])].text
    assert last in cache._entries  # the most recently read passage is kept
    tiny = with_cache(sample_model, 1)  # smaller than any passage: nothing is kept, answers unchanged
    assert exact(tiny.read(questions, results, n_best=5)) == reference
    assert len(tiny.passage_cache) == 0 and tiny.passage_cache.bytes == 0


def test_the_cache_size_is_a_reader_option(sample_model, tmp_path):
    sample_model.save(tmp_path / "lex")
    reader = ExtractiveReader(model=str(tmp_path / "lex"), passage_cache_mb=3)
    reader.warm_up()
    assert reader.lexical.passage_cache.max_bytes == 3 << 20
    for bad in (-1, 1.5, True, "64"):
        with pytest.raises(UsageError, match="passage_cache_mb"):
            ExtractiveReader(model=str(tmp_path / "lex"), passage_cache_mb=bad)
    with pytest.raises(UsageError, match="passage cache"):
        PassageTableCache(-1)
