""":class:`~odqa_core.spec.PipelineSpec`: one description of a pipeline, whether flags, a pipeline file or settings
give it; frozen, checked when it is made, and built into components once."""

from __future__ import annotations

import dataclasses
import json

import pytest

import odqa_core._cli
from odqa_core.errors import UsageError
from odqa_core.hookspecs import hookimpl
from odqa_core.pipeline import Pipeline
from odqa_core.spec import FrozenOptions, PipelineSpec
from odqa_core.testing import FakeFuser, FakeReader, assert_one_line_error, registered_plugin


@pytest.fixture(autouse=True)
def _fakes(fake_plugins):
    yield


def _recorded_run(odqa, monkeypatch, command):
    """The spec and output directory 'odqa run' would run with, from its command line (nothing is run)."""
    seen = []
    monkeypatch.setattr(odqa_core._cli, "_run", lambda spec, output_dir, *rest: seen.append((spec, output_dir)))
    result = odqa(f"run {command}")
    assert result.exit_code == 0, result.output
    return seen[0]


def test_flags_a_pipeline_file_and_settings_give_the_same_spec(odqa, toy_files, tmp_path, monkeypatch):
    corpus, questions = toy_files
    flags, out = _recorded_run(
        odqa,
        monkeypatch,
        f"--retriever fake --fuser fake-sum --reader fake-reader --post fake-strip --corpus {corpus} "
        f"--questions {questions} --top-k 7 --reader-top-k 3 --n-best 2 --k 1,3 --metric squad --batch-size 16 "
        f"--split-words 50 --stride 25 --no-dedupe -o tokens=chars -o fake-sum.depth=4 -o fake-reader.max_words=1 "
        f"--output-dir {tmp_path / 'out'}",
    )
    pipeline_file = tmp_path / "pipeline.toml"
    pipeline_file.write_text(
        f'retriever = "fake"\nfuser = "fake-sum"\nreader = "fake-reader"\npost = ["fake-strip"]\n'
        f'corpus = "{corpus}"\nquestions = "{questions}"\ntop_k = 7\nreader_top_k = 3\nn_best = 2\nks = [1, 3]\n'
        f'metric = "squad"\nbatch_size = 16\nsplit_words = 50\nstride = 25\ndedupe = false\n'
        f'output_dir = "{tmp_path / "out"}"\n'
        "[options.fake]\ntokens = 'chars'\n[options.fake-sum]\ndepth = 4\n[options.fake-reader]\nmax_words = 1\n",
        encoding="utf-8",
    )
    from_file = PipelineSpec.from_file(pipeline_file)
    settings = {
        "retrievers": ["fake"],
        "fuser": "fake-sum",
        "reader": "fake-reader",
        "post": ["fake-strip"],
        "corpus": str(corpus),
        "questions": str(questions),
        "top_k": 7,
        "reader_top_k": 3,
        "n_best": 2,
        "ks": [1, 3],
        "metric": "squad",
        "batch_size": 16,
        "split_words": 50,
        "stride": 25,
        "dedupe": False,
        "options": {"tokens": "chars", "fake-sum.depth": 4, "fake-reader.max_words": 1},
    }
    from_settings = PipelineSpec.from_settings(settings)
    assert flags == from_file == from_settings
    assert hash(flags) == hash(from_file) == hash(from_settings)
    assert out == str(tmp_path / "out")
    assert flags.stages == [
        ("retriever", "fake"),
        ("fuser", "fake-sum"),
        ("reader", "fake-reader"),
        ("postprocessor", "fake-strip"),
    ]
    assert flags.options_of("fake") == {"tokens": "chars"} and flags.options_of("fake-sum") == {"depth": 4}
    assert (flags.top_k, flags.reader_top_k, flags.n_best, flags.ks, flags.metric) == (7, 3, 2, (1, 3), "squad")
    assert (flags.data.split_words, flags.data.stride, flags.data.dedupe) == (50, 25, False)
    # The file run through the command line, with flags of its own: the command line wins, options add up.
    overridden, out = _recorded_run(
        odqa, monkeypatch, f"--config {pipeline_file} --top-k 9 -o fake-sum.depth=5 --output-dir {tmp_path / 'o2'}"
    )
    assert overridden == PipelineSpec.from_file(pipeline_file, {"top_k": 9, "options": {"fake-sum.depth": 5}})
    assert overridden.top_k == 9 and overridden.options_of("fake-sum") == {"depth": 5}
    assert overridden.options_of("fake") == {"tokens": "chars"} and overridden.n_best == 2
    assert out == str(tmp_path / "o2")


def test_the_flags_defaults_are_the_specs(odqa, toy_files, monkeypatch):
    corpus, _ = toy_files
    spec, out = _recorded_run(odqa, monkeypatch, f"--retriever fake --corpus {corpus}")
    assert spec == PipelineSpec.from_settings({"retrievers": ["fake"], "corpus": str(corpus)})
    assert out == "odqa-output"


def test_a_spec_is_frozen_and_hashable():
    spec = PipelineSpec.from_settings({"retrievers": ["fake"], "options": {"fake.tokens": "chars"}}, sample=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.top_k = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.data.corpus = "other.jsonl"  # type: ignore[misc]
    stage, options = spec.options[0]
    assert stage == "fake" and isinstance(options, FrozenOptions)
    with pytest.raises(TypeError):
        options["tokens"] = "words"  # type: ignore[index]
    copy = spec.options_of("fake")
    copy["tokens"] = "words"  # a copy: the spec keeps its own
    assert spec.options_of("fake") == {"tokens": "chars"}
    same = PipelineSpec.from_settings({"retrievers": ["fake"], "options": {"tokens": "chars"}}, sample=False)
    assert len({spec, same}) == 1


def test_nested_option_values_are_frozen_and_come_back_as_json_values():
    options = FrozenOptions({"weights": [1, {"dpr": [2, 3]}], "name": "x"})
    assert options == {"weights": (1, FrozenOptions({"dpr": (2, 3)})), "name": "x"}
    assert hash(options) == hash(FrozenOptions({"name": "x", "weights": [1, {"dpr": [2, 3]}]}))
    assert options.thaw() == {"weights": [1, {"dpr": [2, 3]}], "name": "x"} == options
    assert options != {"weights": [1, {"dpr": [2, 4]}], "name": "x"}
    # A spec made directly (or by dataclasses.replace) is frozen the same way.
    direct = PipelineSpec(retrievers=["fake"], options=[("fake", {"tokens": "chars"})], ks=[1, 5])
    assert direct.retrievers == ("fake",) and direct.ks == (1, 5) and isinstance(direct.options[0][1], FrozenOptions)
    assert hash(direct) == hash(dataclasses.replace(direct, ks=(1, 5)))


class CountingFuser(FakeFuser):
    """``fake-sum`` that counts how many times it is created."""

    name = "counting-sum"
    created = 0

    def __init__(self, *, depth: int = 10) -> None:
        type(self).created += 1
        super().__init__(depth=depth)


class DemoReader(FakeReader):
    """``fake-reader`` with a demo setting for the bundled sample."""

    name = "demo-reader"

    @classmethod
    def sample_defaults(cls):
        return {"max_words": 1}


class _SpecTestPlugin:
    @hookimpl
    def register_fusers(self, register):
        register(CountingFuser)

    @hookimpl
    def register_readers(self, register):
        register(DemoReader)


@pytest.fixture
def counting_fuser(monkeypatch):
    monkeypatch.setattr(CountingFuser, "created", 0)
    with registered_plugin(_SpecTestPlugin(), "odqa-spec-test"):
        yield CountingFuser


def test_the_fuser_is_created_once_per_pipeline(counting_fuser, odqa, toy_files, tmp_path):
    spec = PipelineSpec.from_settings({"fuser": "counting-sum", "options": {"counting-sum.depth": 3}})
    assert spec.retrievers == ("fake",)  # chosen by the fuser when the spec was made ...
    pipeline = Pipeline.from_spec(spec)
    assert counting_fuser.created == 1  # ... which is the very fuser the pipeline fuses with
    assert pipeline.fuser.depth == 3
    assert Pipeline.from_spec(spec).fuser is not pipeline.fuser  # a second pipeline has a fuser of its own
    assert counting_fuser.created == 2
    # The command line makes one spec and one pipeline: one fuser, for indexing the corpus and for fusing.
    corpus, questions = toy_files
    counting_fuser.created = 0
    result = odqa(
        f"run --fuser counting-sum --corpus {corpus} --questions {questions} --output-dir {tmp_path / 'out'}"
    )
    assert result.exit_code == 0, result.output
    assert counting_fuser.created == 1
    index = tmp_path / "out" / "index" / "fake"
    counting_fuser.created = 0
    assert odqa(f'ask "서울" --index-dir {index} --fuser counting-sum --json').exit_code == 0
    assert counting_fuser.created == 1


def _fail_if_called(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} before the bad option was reported")

    return fail


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("fake.bogus=1", "unknown option 'bogus' for retriever 'fake'"),
        ("fake-sum.depth=0", "option 'depth' must be a positive integer"),
        ("fake-reader.bogus=1", "unknown option 'bogus' for reader 'fake-reader'"),
        ("fake-strip.bogus=1", "unknown option 'bogus' for postprocessor 'fake-strip'"),
        ("nope.x=1", "names stage 'nope', which is not in this pipeline"),
    ],
)
def test_a_bad_option_fails_when_the_spec_is_made(odqa, toy_files, tmp_path, monkeypatch, option, message):
    corpus, questions = toy_files
    settings = {"retrievers": ["fake"], "fuser": "fake-sum", "reader": "fake-reader", "post": ["fake-strip"]}
    key, _, value = option.partition("=")
    with pytest.raises(UsageError, match=message):
        PipelineSpec.from_settings({**settings, "options": {key: json.loads(value)}})
    for name in ("_check_inputs", "_load_corpus", "_load_questions", "previous_output"):
        monkeypatch.setattr(odqa_core._cli, name, _fail_if_called(f"{name} ran"))
    out = tmp_path / "out"
    result = odqa(
        f"run --retriever fake --fuser fake-sum --reader fake-reader --post fake-strip --corpus {corpus} "
        f"--questions {questions} --output-dir {out} -o {option}"
    )
    assert_one_line_error(result, 2, message)
    assert not out.exists()


def test_settings_are_checked_when_the_spec_is_made():
    fake = {"retrievers": ["fake"]}
    for settings, message in [
        ({**fake, "top_k": 0}, "top-k must be at least 1"),
        ({**fake, "reader": "fake-reader", "reader_top_k": 0}, "reader top-k must be at least 1"),
        ({**fake, "n_best": 0}, "--n-best must be at least 1"),
        ({**fake, "batch_size": 0}, "batch size must be at least 1"),
        ({**fake, "ks": [0, 5]}, r"ks must be positive integers, got \[0, 5\]"),
        ({**fake, "ks": []}, "ks must be positive integers"),
        ({**fake, "metric": "bleu"}, "option 'metric' must be one of korquad, squad, got 'bleu'"),
        ({**fake, "top_k": "10"}, "'top_k' must be a int"),
        ({**fake, "bogus": 1}, "unknown key 'bogus'"),
        ({**fake, "post": ["fake-strip"]}, "add a --reader"),
        ({"retrievers": ["fake", "fake-2"]}, r"2 retrievers \(fake, fake-2\) need a fuser"),
        ({}, "name a retriever"),
        ({**fake, "reader": "nope"}, "reader 'nope' is not available"),
        ({**fake, "options": {"fake.tokens": float("nan")}}, "option 'fake.tokens' must be a finite number"),
    ]:
        with pytest.raises(UsageError, match=message):
            PipelineSpec.from_settings(settings)


def test_to_toml_and_to_settings_give_the_spec_back(toy_files, tmp_path):
    corpus, questions = toy_files
    spec = PipelineSpec.from_settings(
        {
            "fuser": "fake-sum",
            "reader": "fake-reader",
            "post": ["fake-strip"],
            "corpus": str(corpus),
            "questions": str(questions),
            "top_k": 4,
            "ks": [1, 4],
            "split_words": 30,
            "options": {"tokens": "chars", "fake-strip.chars": ' ."\\'},
        }
    )
    assert PipelineSpec.from_settings(spec.to_settings(), sample=spec.sample) == spec
    pipeline_file = tmp_path / "spec.toml"
    pipeline_file.write_text(spec.to_toml(), encoding="utf-8")
    assert PipelineSpec.from_file(pipeline_file) == spec
    assert "[options.fake]" in spec.to_toml() and 'retrievers = ["fake"]' in spec.to_toml()


def test_with_options_makes_a_new_checked_spec():
    spec = PipelineSpec.from_settings({"retrievers": ["fake"], "reader": "fake-reader"}, sample=False)
    trained = spec.with_options({"fake-reader.model": "runs/reader/best"})
    assert trained.options_of("fake-reader") == {"model": "runs/reader/best"}
    assert dataclasses.replace(trained, options=spec.options) == spec
    assert spec.options_of("fake-reader") == {}
    with pytest.raises(UsageError, match="unknown option 'bogus'"):
        spec.with_options({"fake-reader.bogus": 1})


def test_the_sample_gets_its_demo_defaults_under_the_options_given(counting_fuser):
    settings = {"retrievers": ["fake"], "reader": "demo-reader"}
    on_sample = PipelineSpec.from_settings(settings)
    assert on_sample.sample and on_sample.data.corpus is None
    assert on_sample.options_of("demo-reader") == {"max_words": 1}
    given = PipelineSpec.from_settings({**settings, "options": {"demo-reader.max_words": 3}})
    assert given.options_of("demo-reader") == {"max_words": 3}
    elsewhere = PipelineSpec.from_settings({**settings, "corpus": "c.jsonl"})
    assert not elsewhere.sample and elsewhere.options_of("demo-reader") == {}
    assert PipelineSpec.from_settings(settings, sample=False).options_of("demo-reader") == {}


def test_stored_indexes_name_their_retrievers(odqa, toy_files, tmp_path):
    corpus, _ = toy_files
    index = tmp_path / "idx"
    assert odqa(f"index --retriever fake --corpus {corpus} --index-dir {index}").exit_code == 0
    spec = PipelineSpec.from_settings({"fuser": "fake-sum"}, index_dirs=[index])
    assert spec.retrievers == ("fake",) and spec.data.indexes == (("fake", str(index)),) and not spec.sample
    pipeline = Pipeline.from_spec(spec)
    assert pipeline.retrievers[0].is_indexed and len(pipeline.retrievers[0].documents) > 0
    with pytest.raises(UsageError, match="two indexes of retriever 'fake'"):
        PipelineSpec.from_settings({}, index_dirs=[index, index])
    with pytest.raises(UsageError, match="not both"):
        PipelineSpec.from_settings({"corpus": str(corpus)}, index_dirs=[index])
