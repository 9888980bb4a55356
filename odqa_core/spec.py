"""One description of a pipeline, checked once: :class:`PipelineSpec`.

Every way of naming a pipeline ends here: the pipeline options of ``odqa run`` / ``odqa ask`` / ``odqa retrieve``,
a pipeline file (:meth:`PipelineSpec.from_file`) and a sweep cell's settings all become settings in the pipeline
file's form (``retrievers``, ``fuser``, ``reader``, ``post``, ``top_k``, ..., ``options`` flat as
``{"cross.lam": 1.1}``) and go through :meth:`PipelineSpec.from_settings`. That is where names, options and k's are
checked, the fuser chooses its retrievers, options go to their stages, the analyzer to the sparse retrievers and,
on the bundled sample, the stages get their demo defaults; every component is created there, so a bad name or
option fails before anything is read or written. :meth:`Pipeline.from_spec <odqa_core.pipeline.Pipeline.from_spec>`
builds the pipeline with those very components (the fuser is created once per pipeline), and
:meth:`PipelineSpec.to_toml` writes the spec back as a pipeline file.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odqa_core import data, plugins
from odqa_core.errors import UsageError
from odqa_core.evaluation import DEFAULT_KS
from odqa_core.interfaces import Component, Fuser
from odqa_core.options import check_finite_options, choice
from odqa_core.qa_metrics import METRICS
from odqa_core.storage import open_store

__all__ = [
    "PIPELINE_KEYS",
    "DataSpec",
    "FrozenOptions",
    "PipelineSpec",
    "check_pipeline_settings",
    "check_type",
    "command_line_settings",
    "merge_settings",
    "read_pipeline_file",
    "read_toml",
]

# --- pipeline files ------------------------------------------------------------------------------------------------

#: The keys of a pipeline file (``odqa run --config pipeline.toml``) and the type each must have.
PIPELINE_KEYS: dict[str, tuple[type, ...]] = {
    "retrievers": (list, tuple),
    "fuser": (str,),
    "reader": (str,),
    "post": (list, tuple),
    "corpus": (str,),
    "questions": (str,),
    "output_dir": (str,),
    "top_k": (int,),
    "n_best": (int,),
    "reader_top_k": (int,),
    "ks": (list, tuple),
    "metric": (str,),
    "batch_size": (int,),
    "analyzer": (str,),
    "split_words": (int,),
    "stride": (int,),
    "dedupe": (bool,),
    "options": (dict,),
}
#: Settings that only the command line gives (``--analyzer-option``), beside :data:`PIPELINE_KEYS`.
_FLAG_ONLY_KEYS: dict[str, tuple[type, ...]] = {"analyzer_options": (dict,)}


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file's tables; an unreadable or invalid file is a one-line usage error naming ``what`` it is."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def check_type(label: str, value: Any, types: tuple[type, ...]) -> None:
    """``value`` is one of ``types`` (a bool only where ``bool`` is listed); else a one-line error on ``label``."""
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        raise UsageError(f"{label} must be a {types[0].__name__}, got {value!r}")


def read_pipeline_file(path: str | Path) -> dict[str, Any]:
    """A pipeline file's settings, checked: every key known and of the right type, one-line errors naming it.

    ``options`` is a table of stage tables (``[options.cross] lam = 1.1``); it comes back flattened to
    ``{"cross.lam": 1.1}``, the form ``-o`` gives. ``retriever = "bm25"`` is accepted for one retriever.
    """
    return check_pipeline_settings(read_toml(path, "pipeline file"), str(path))


def check_pipeline_settings(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Pipeline settings (a pipeline file's, or a sweep grid's ``[pipeline]`` table) checked and normalised:
    every key known and of the right type (one-line errors naming it, prefixed by ``where``), ``retriever``
    folded into ``retrievers`` and the ``options`` table flattened to ``{"stage.key": value}``."""
    raw = dict(raw)
    if "retriever" in raw:
        if "retrievers" in raw:
            raise UsageError(f"{where}: give 'retriever' or 'retrievers', not both")
        value = raw.pop("retriever")
        raw["retrievers"] = [value] if isinstance(value, str) else value
    settings = _check_keys(raw, where, {"retriever": (str,), **PIPELINE_KEYS})  # retriever: folded above
    flat: dict[str, Any] = {}
    for stage, table in settings.pop("options", {}).items():
        if not isinstance(table, dict):
            raise UsageError(f"{where}: options.{stage} must be a table of that stage's options, got {table!r}")
        for key, value in table.items():
            flat[f"{stage}.{key}"] = value
    check_finite_options(flat, where)
    settings["options"] = flat
    return settings


def _check_keys(raw: Mapping[str, Any], where: str, keys: Mapping[str, tuple[type, ...]]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in keys:
            raise UsageError(f"{where}: unknown key {key!r}; valid keys: {', '.join(keys)}")
        check_type(f"{where}: {key!r}", value, keys[key])
        settings[key] = value
    for key, item_type in (("retrievers", str), ("post", str), ("ks", int)):
        if key in settings and not all(isinstance(v, item_type) and not isinstance(v, bool) for v in settings[key]):
            raise UsageError(f"{where}: {key!r} must be a list of {item_type.__name__}s, got {settings[key]!r}")
    return settings


def merge_settings(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (a pipeline file's settings) with ``overrides`` (the command line's) winning key by key; the
    ``options`` of both add up, the overrides' last so that they win option by option."""
    merged = {**base, **overrides}
    if "options" in base or "options" in overrides:
        merged["options"] = {**base.get("options", {}), **overrides.get("options", {})}
    return merged


def command_line_settings(ctx: Any, config_path: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline settings of a command with :func:`odqa_core.options.pipeline_options` ('odqa run', 'odqa ask',
    'odqa serve'): the options' values, or with a pipeline file (``--config``) the file's, overridden by the options
    given on the command line (those left at their default only fill in what the file does not set); ``options``
    add up, the command line's last so that they win. ``ctx`` is the command's click context; keys of settings the
    command does not have (a run's ``questions`` or ``output_dir`` for 'odqa ask') are left out."""
    from click.core import ParameterSource

    from odqa_core.options import SETTING_PARAMS, flag_setting

    keys = {key: param for key, param in SETTING_PARAMS.items() if param in params}
    flags = {key: flag_setting(key, params[param]) for key, param in keys.items()}
    if config_path is None:
        return flags
    from_file = {key: value for key, value in read_pipeline_file(config_path).items() if key in keys}
    defaults = {key: value for key, value in flags.items() if key not in from_file}
    given = [key for key, param in keys.items() if ctx.get_parameter_source(param) is not ParameterSource.DEFAULT]
    return merge_settings({**defaults, **from_file}, {key: flags[key] for key in given})


# --- frozen option values ------------------------------------------------------------------------------------------


class FrozenOptions(Mapping[str, Any]):
    """One stage's options, read-only and hashable, equal to any mapping with the same items.

    Values are kept frozen (lists as tuples, tables as :class:`FrozenOptions`); :meth:`thaw` gives back the
    plain JSON values a component is created from.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items = {str(key): _freeze(value) for key, value in pairs}

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._items == (other if isinstance(other, FrozenOptions) else FrozenOptions(other))._items

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenOptions({self._items!r})"

    def thaw(self) -> dict[str, Any]:
        return {key: _thaw(value) for key, value in self._items.items()}


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenOptions(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, FrozenOptions):
        return value.thaw()
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


# --- the spec ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """What a pipeline runs on: a corpus to index (None: the bundled sample's) and questions (None: the sample's;
    the words ``sample`` and ``sample-train`` name its question sets), or stored ``indexes`` its retrievers are
    opened from instead (retriever name → index directory)."""

    corpus: str | None = None
    questions: str | None = None
    split_words: int | None = None
    stride: int | None = None
    dedupe: bool = True
    indexes: tuple[tuple[str, str], ...] = ()


class _Created:
    """The components created while a spec was checked, until the first pipeline built from the spec takes them."""

    __slots__ = ("components",)

    def __init__(self) -> None:
        self.components: dict[tuple[str, str], Component] | None = None

    def take(self) -> dict[tuple[str, str], Component] | None:
        components, self.components = self.components, None
        return components


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline, checked: its stages by name, each stage's options, its k's and its data.

    Make one with :meth:`from_settings` or :meth:`from_file` (which check everything and create the components);
    ``retrievers`` are the retrievers the pipeline runs, the fuser's choice included, and ``options`` each stage's
    options in stage order, routed and with the sample's demo defaults applied (``sample``).
    """

    retrievers: tuple[str, ...]
    fuser: str | None = None
    reader: str | None = None
    postprocessors: tuple[str, ...] = ()
    options: tuple[tuple[str, FrozenOptions], ...] = ()
    top_k: int = 100
    #: Passages the reader reads per question: the best of the ``top_k`` retrieved (retrieval is still evaluated
    #: at every cut-off up to ``top_k``).
    reader_top_k: int = 10
    n_best: int = 5
    ks: tuple[int, ...] = DEFAULT_KS
    batch_size: int = 1024
    #: How reader answers are scored: ``korquad`` (character F1) or ``squad`` (token F1).
    metric: str = "korquad"
    data: DataSpec = field(default_factory=DataSpec)
    #: Whether the stages got the bundled sample's demo defaults (:meth:`Component.sample_defaults`).
    sample: bool = False
    _created: _Created = field(default_factory=_Created, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen all the way down, whatever sequences and mappings were given: equal specs hash alike.
        for name in ("retrievers", "postprocessors", "ks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "options", tuple((stage, FrozenOptions(opts)) for stage, opts in self.options))
        if not self.retrievers:
            raise UsageError("a pipeline needs at least one retriever (--retriever)")
        if len(self.retrievers) > 1 and self.fuser is None:
            raise UsageError(
                f"{len(self.retrievers)} retrievers ({', '.join(self.retrievers)}) need a fuser (--fuser) to "
                "combine them"
            )
        if self.postprocessors and not self.reader:
            raise UsageError("postprocessors (--post) rewrite a reader's answers; add a --reader")
        for label, value in (
            ("top-k", self.top_k),
            ("reader top-k", self.reader_top_k),
            ("--n-best", self.n_best),
            ("batch size", self.batch_size),
        ):
            if value < 1:
                raise UsageError(f"{label} must be at least 1, got {value}")
        if not self.ks or min(self.ks) < 1:
            raise UsageError(f"ks must be positive integers, got {list(self.ks)}")
        choice("pipeline", "metric", self.metric, METRICS)

    # --- making one ------------------------------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, sample: bool | None = None, index_dirs: Sequence[str | Path] = ()
    ) -> PipelineSpec:
        """The spec of pipeline settings in the pipeline file's form (:func:`read_pipeline_file`; also
        ``analyzer_options``, and ``output_dir``, which is where a run writes and not part of the spec).

        With a fuser, the fuser chooses its retrievers (:meth:`Fuser.select_retrievers`): the given ones fill its
        slots and the rest are its defaults. Options prefixed with a stage name go to that stage; unprefixed ones
        go to the first retriever given (else the first one fused); ``analyzer`` (and its options) to every
        retriever that takes one. ``index_dirs`` are stored indexes (``odqa index``) whose retrievers are opened
        instead of created; their options are only the runtime ones. ``sample``: give the stages their
        :meth:`~odqa_core.interfaces.Component.sample_defaults` under the options given; by default when the data is
        the bundled sample (no corpus, or indexes built over the sample).
        """
        settings = {key: value for key, value in settings.items() if value is not None}  # None: not set
        settings = _check_keys(settings, "pipeline settings", {**PIPELINE_KEYS, **_FLAG_ONLY_KEYS})
        given = list(dict.fromkeys(settings.get("retrievers") or ()))
        fuser, reader = settings.get("fuser"), settings.get("reader")
        posts = [p for p in settings.get("post") or () if p]
        options = dict(settings.get("options") or {})
        check_finite_options(options)
        indexes = _stored_indexes(index_dirs)
        if indexes and settings.get("corpus") is not None:
            raise UsageError("give either --corpus (indexed now) or --index-dir (already indexed), not both")
        given = [*indexes, *(name for name in given if name not in indexes)]
        if not given and not fuser:
            raise UsageError("name a retriever (--retriever bm25), or a fuser that brings its own (--fuser cross)")
        if fuser is None and len(given) > 1:
            raise UsageError(f"{len(given)} retrievers ({', '.join(given)}) need a fuser (--fuser) to combine them")
        if sample is None:
            sample = _is_sample_data(settings.get("corpus"), indexes)

        fuser_component = None
        names = given
        if fuser is not None:
            fuser_defaults = plugins.get_component_class("fuser", fuser).sample_defaults() if sample else {}
            fuser_component = plugins.create("fuser", fuser, {**fuser_defaults, **_stage_options(options, fuser)})
            names = _fused_retrievers(fuser_component, given)
        if not names:
            raise UsageError("a pipeline needs at least one retriever (--retriever)")
        stages = [*names, *([fuser] if fuser else []), *([reader] if reader else []), *posts]
        routed = _split_stage_options(options, stages, given[0] if given else names[0])
        if fuser is not None:  # the options the fuser was created with, its demo defaults included
            routed[fuser] = {**fuser_defaults, **routed[fuser]}
        _route_analyzer(names, indexes, routed, settings.get("analyzer"), settings.get("analyzer_options"))
        if sample:  # the bundled sample: demo models for the stages given none (a stored index has its own)
            demo = [("retriever", n) for n in names if n not in indexes] + ([("reader", reader)] if reader else [])
            for kind, stage in demo:
                routed[stage] = {**plugins.get_component_class(kind, stage).sample_defaults(), **routed[stage]}

        spec = cls(
            retrievers=tuple(names),
            fuser=fuser,
            reader=reader,
            postprocessors=tuple(posts),
            options=tuple((stage, FrozenOptions(routed[stage])) for stage in stages),
            top_k=settings.get("top_k", 100),
            reader_top_k=settings.get("reader_top_k", 10),
            n_best=settings.get("n_best", 5),
            ks=tuple(settings.get("ks", DEFAULT_KS)),
            batch_size=settings.get("batch_size", 1024),
            metric=settings.get("metric", "korquad"),
            data=DataSpec(
                corpus=settings.get("corpus"),
                questions=settings.get("questions"),
                split_words=settings.get("split_words"),
                stride=settings.get("stride"),
                dedupe=settings.get("dedupe", True),
                indexes=tuple((name, str(path)) for name, path in indexes.items()),
            ),
            sample=sample,
        )
        spec._created.components = spec._new_components(fuser_component)
        return spec

    @classmethod
    def from_file(
        cls, path: str | Path, overrides: Mapping[str, Any] | None = None, *, sample: bool | None = None
    ) -> PipelineSpec:
        """The spec of a pipeline file, with ``overrides`` (settings, e.g. the command line's) winning over the
        file's (:func:`merge_settings`)."""
        return cls.from_settings(merge_settings(read_pipeline_file(path), overrides or {}), sample=sample)

    def with_options(self, options: Mapping[str, Any]) -> PipelineSpec:
        """This spec with ``{"stage.key": value}`` options set (a model trained for it, ...), checked anew."""
        settings = merge_settings(self.to_settings(), {"options": dict(options)})
        return PipelineSpec.from_settings(
            settings, sample=self.sample, index_dirs=[path for _, path in self.data.indexes]
        )

    # --- reading it ------------------------------------------------------------------------------------------------

    @property
    def stages(self) -> list[tuple[str, str]]:
        """``(kind, name)`` of every stage, in order: retrievers, fuser, reader, postprocessors."""
        return [
            *(("retriever", name) for name in self.retrievers),
            *([("fuser", self.fuser)] if self.fuser else []),
            *([("reader", self.reader)] if self.reader else []),
            *(("postprocessor", name) for name in self.postprocessors),
        ]

    def options_of(self, stage: str) -> dict[str, Any]:
        """The options of the stage called ``stage`` (a copy, plain JSON values); ``{}`` for a stage it lacks."""
        return next((opts.thaw() for name, opts in self.options if name == stage), {})

    def to_settings(self) -> dict[str, Any]:
        """The spec as pipeline settings (a pipeline file's form, every option prefixed by its stage):
        :meth:`from_settings` of them with the same ``sample`` gives this spec back."""
        data = self.data
        settings: dict[str, Any] = {
            "retrievers": list(self.retrievers),
            "fuser": self.fuser,
            "reader": self.reader,
            "post": list(self.postprocessors),
            "corpus": data.corpus,
            "questions": data.questions,
            "top_k": self.top_k,
            "reader_top_k": self.reader_top_k,
            "n_best": self.n_best,
            "ks": list(self.ks),
            "metric": self.metric,
            "batch_size": self.batch_size,
            "split_words": data.split_words,
            "stride": data.stride,
            "dedupe": data.dedupe,
            "options": {
                f"{stage}.{key}": value for stage, opts in self.options for key, value in opts.thaw().items()
            },
        }
        return {key: value for key, value in settings.items() if value is not None and value != []}

    def to_toml(self) -> str:
        """The spec as a pipeline file (``odqa run --config``): settings, then one ``[options.<stage>]`` table per
        stage with options."""
        settings = self.to_settings()
        lines = [f"{key} = {_toml_value(value)}" for key, value in settings.items() if key != "options"]
        for stage, opts in self.options:
            if opts:
                lines += ["", f"[options.{_toml_key(stage)}]"]
                lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in opts.thaw().items()]
        return "\n".join(lines) + "\n"

    # --- its components --------------------------------------------------------------------------------------------

    def create_components(self) -> dict[tuple[str, str], Component]:
        """``(kind, name)`` → component, for every stage not opened from a stored index (:attr:`DataSpec.indexes`).

        The first call gets the components created when the spec was checked, so that nothing is created twice
        (the fuser above all, which chose the retrievers); later calls get new ones. :meth:`Pipeline.from_spec
        <odqa_core.pipeline.Pipeline.from_spec>` builds a pipeline with them.
        """
        return self._created.take() or self._new_components()

    def _new_components(self, fuser: Fuser | None = None) -> dict[tuple[str, str], Component]:
        """Every stage not opened from a stored index, created from its options (``fuser``: already created)."""
        indexed = {name for name, _ in self.data.indexes}
        created: dict[tuple[str, str], Component] = {}
        for kind, name in self.stages:
            if kind == "fuser" and fuser is not None:
                created[kind, name] = fuser
            elif not (kind == "retriever" and name in indexed):
                created[kind, name] = plugins.create(kind, name, self.options_of(name))
        return created


# --- resolution helpers --------------------------------------------------------------------------------------------


def _stage_options(options: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """The ``stage.key=value`` options of one stage, prefix removed."""
    prefix = stage + "."
    return {k[len(prefix) :]: v for k, v in options.items() if k.startswith(prefix)}


def _split_stage_options(options: Mapping[str, Any], stages: Sequence[str], default: str) -> dict[str, dict]:
    """Route ``name.key`` options to the stage called ``name``; unprefixed keys go to ``default``."""
    routed: dict[str, dict] = {stage: {} for stage in stages}
    for key, value in options.items():
        stage, dot, rest = key.partition(".")
        if dot and stage in routed:
            routed[stage][rest] = value
        elif dot:
            raise UsageError(
                f"option {key!r} names stage {stage!r}, which is not in this pipeline ({', '.join(stages)})"
            )
        else:
            routed[default][key] = value
    return routed


def _fused_retrievers(fuser: Fuser, given: Sequence[str]) -> list[str]:
    """The retrievers ``fuser`` combines given the user's (:meth:`Fuser.select_retrievers`), each checked to be
    registered and to fit the fuser's options (:meth:`Fuser.check_names`) before anything is built."""
    names = fuser.select_retrievers(given)
    for name in names:
        plugins.get_component_class("retriever", name)
    fuser.check_names(names)
    return names


def _route_analyzer(
    names: Sequence[str],
    indexes: Mapping[str, Path],
    routed: dict[str, dict[str, Any]],
    analyzer: str | None,
    analyzer_options: Mapping[str, Any] | None,
) -> None:
    """``analyzer`` (and its options) go to every retriever of the pipeline that takes an analyzer (the sparse
    ones), but a stored index's, whose analyzer was fixed when it was built; an error when none takes one."""
    if analyzer is None and not analyzer_options:
        return
    takers = [n for n in names if "analyzer" in plugins.get_component_class("retriever", n).option_names()]
    if not takers:
        raise UsageError(f"--analyzer: none of the retrievers ({', '.join(names)}) takes an analyzer")
    for name in takers:
        if name not in indexes:
            routed[name] = {
                **routed[name],
                **({"analyzer": analyzer} if analyzer is not None else {}),
                **({"analyzer_options": dict(analyzer_options)} if analyzer_options else {}),
            }


def _stored_indexes(index_dirs: Sequence[str | Path]) -> dict[str, Path]:
    """Retriever name → index directory, from each index's manifest; two indexes of one retriever are refused."""
    stored: dict[str, Path] = {}
    for index_dir in index_dirs:
        name = open_store(index_dir, kind="retriever", verify=False).manifest["name"]
        if name in stored:
            raise UsageError(f"two indexes of retriever {name!r} ({stored[name]} and {index_dir}); give one of each")
        stored[name] = Path(index_dir)
    return stored


def _is_sample_data(corpus: str | None, indexes: Mapping[str, Path]) -> bool:
    """Whether a pipeline runs on the bundled sample: no corpus given, or stored indexes of the sample's
    documents (read up to the first that is not one of them)."""
    if not indexes:
        return corpus is None
    from odqa_core.shards import is_sharded, iter_stored_documents

    first = next(iter(indexes.values()))
    if is_sharded(first):
        return data.is_sample_corpus(iter_stored_documents(first))
    return data.is_sample_corpus(open_store(first, verify=False).iter_documents())


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise UsageError(f"cannot write {value!r} to a pipeline file")
