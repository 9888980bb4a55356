"""Plugin manager and component registries.

Plugins are found through the ``odqa`` entry-point group, the same way for the project's own plugin packages and
for third-party ones. Environment variables control loading:

- ``ODQA_LOAD_PLUGINS=a,b`` loads only the named entry points (empty: none);
- ``ODQA_BLOCK_PLUGINS=a,b`` loads all but the named ones;
- ``ODQA_STRICT_PLUGINS=1`` makes a broken plugin an error instead of a warning.

A plugin is *broken* when its module fails to import (any exception, a ``SyntaxError`` included), when pluggy
refuses it (a hook odqa does not define, a hook argument the hook does not have), when one of its ``register_*``
hooks raises, or when it registers something odqa could not use (not a subclass of the kind, abstract members
left unimplemented, no name). A broken plugin is skipped as a whole — none of its components or commands is
registered — and reported once: as a :class:`PluginWarning` (the CLI prints one ``Warning:`` line), or with
``ODQA_STRICT_PLUGINS=1`` as a :class:`PluginError`. :func:`list_plugins` lists it with its error, so one bad
package never takes the program or the other plugins down (what pytest and llm users expect).

Two plugins registering the same component name are not an error until that name is used: asking for it raises
the error naming both plugins, and :func:`list_plugins` shows the conflict.

A plugin may register a component *lazily*, by reference: ``register("odqa_x.retrievers:MyRetriever",
name="mine")``. Nothing of ``odqa_x.retrievers`` is imported until the component is used (:func:`create`,
:func:`get_component_class`, :attr:`Registration.cls`), so loading the plugins — what every command and ``odqa
--help`` does — stays as fast as importing the plugin's registration module; :func:`list_plugins` and ``odqa
plugins`` need only the names. The class is checked when it is first imported (a subclass of the kind, nothing
abstract left); a reference that cannot be imported or names an unusable class is then a :class:`PluginError`
naming the plugin, the component and why (the other components stay usable). :func:`load_components` imports and
checks every lazy registration now: a plugin's tests call it. For commands the same holds with
:func:`lazy_command`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import inspect
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from odqa_core import hookspecs
from odqa_core.errors import PluginError, UnknownComponentError
from odqa_core.interfaces import COMPONENT_KINDS, Component

if TYPE_CHECKING:
    import click

ENTRY_POINT_GROUP = "odqa"
_HOOKS = {
    "retriever": "register_retrievers",
    "fuser": "register_fusers",
    "reader": "register_readers",
    "postprocessor": "register_postprocessors",
    "analyzer": "register_analyzers",
    "trainer": "register_trainers",
}


class PluginWarning(UserWarning):
    """A broken plugin was skipped (see :class:`PluginFailure`)."""


#: ``package.module:ClassName`` (a dotted attribute path after the colon is allowed): a lazy registration.
_REFERENCE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _import_reference(reference: str) -> Any:
    """The object ``package.module:attribute`` names, imported now."""
    module_name, _, path = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for attribute in path.split("."):
        target = getattr(target, attribute)
    return target


@dataclass(frozen=True)
class Registration:
    """One registered component: its name, the plugin that registered it and the class — or, for a lazy
    registration, the ``"module:ClassName"`` reference that :attr:`cls` imports on first use."""

    name: str
    #: The class, or its ``"package.module:ClassName"`` reference.
    target: type[Component] | str
    plugin: str
    #: The component kind ("retriever", ...): what the class is checked against.
    kind: str

    @property
    def is_lazy(self) -> bool:
        """Whether the class is registered by reference and not imported yet."""
        return isinstance(self.target, str) and "cls" not in self.__dict__

    @functools.cached_property
    def cls(self) -> type[Component]:
        """The component class; a lazy registration imports and checks it here, once (a :class:`PluginError` naming
        the plugin when the reference cannot be imported or names something odqa cannot use)."""
        if not isinstance(self.target, str):
            return self.target
        what = f"{self.kind} {self.name!r} of plugin {self.plugin!r} ({self.target})"
        try:
            cls = _import_reference(self.target)
        except (Exception, SystemExit) as exc:
            raise PluginError(f"{what} cannot be imported: {_describe(exc)}") from None
        problem = _registration_problem(_HOOKS[self.kind], COMPONENT_KINDS[self.kind], cls, self.name)
        if problem is not None:
            raise PluginError(f"{what} cannot be used: {problem}")
        return cls


@dataclass(frozen=True)
class PluginFailure:
    """Why a plugin was skipped."""

    #: The plugin's name: its entry-point name (what ``ODQA_BLOCK_PLUGINS`` takes).
    name: str
    #: One line: ``ImportError: ...``, ``register_retrievers raised RuntimeError: ...``,
    #: ``MyRetriever does not implement: documents``.
    error: str
    distribution: str | None = None
    version: str | None = None

    def origin(self) -> str:
        """``'x' (odqa-x 1.0)``: the plugin and, when it came from one, its distribution."""
        if self.distribution is None:
            return repr(self.name)
        return f"{self.name!r} ({self.distribution}{' ' + self.version if self.version else ''})"

    def warning_message(self) -> str:
        blocked = list(dict.fromkeys([*(_env_list("ODQA_BLOCK_PLUGINS") or []), self.name]))
        return (
            f"plugin {self.origin()} failed to load and is skipped: {self.error}; "
            f"set ODQA_BLOCK_PLUGINS={','.join(blocked)} to silence this"
        )

    def fatal_message(self) -> str:
        return (
            f"plugin {self.origin()} failed to load: {self.error} (ODQA_STRICT_PLUGINS is set; fix or uninstall "
            f"the plugin, or skip it with ODQA_BLOCK_PLUGINS={self.name})"
        )


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the distribution of every entry point tried (loaded or broken).

    Entry points are loaded one at a time (pluggy's ``load_setuptools_entrypoints`` loads all of them or raises),
    so the distributions are recorded here and :meth:`list_plugin_distinfo` answers for them as pluggy's would.
    """

    def __init__(self) -> None:
        super().__init__("odqa")
        self.distributions: dict[str, importlib.metadata.Distribution] = {}
        self._loaded: list[tuple[Any, importlib.metadata.Distribution]] = []

    def list_plugin_distinfo(self) -> list[tuple[Any, Any]]:
        return [
            *super().list_plugin_distinfo(),
            *((p, _DistInfo(d)) for p, d in self._loaded if self.is_registered(p)),
        ]

    def failure(self, name: str, error: str) -> PluginFailure:
        dist = self.distributions.get(name)
        if dist is None:
            return PluginFailure(name, error)
        return PluginFailure(name, error, dist.metadata["Name"], dist.version)

    def load_entry_points(self, group: str, only: list[str] | None) -> list[PluginFailure]:
        """Load the entry points of ``group`` one by one, as pluggy's ``load_setuptools_entrypoints`` does (the
        first distribution wins a name, blocked names are skipped), but keep every other plugin when one fails."""
        failures: list[PluginFailure] = []
        for dist in list(importlib.metadata.distributions()):
            for ep in dist.entry_points:
                if (
                    ep.group != group
                    or (only is not None and ep.name not in only)
                    or self.has_plugin(ep.name)
                    or self.is_blocked(ep.name)
                    or ep.name in self.distributions  # tried already: a broken one, or one found twice on sys.path
                ):
                    continue
                self.distributions[ep.name] = dist
                try:
                    plugin = ep.load()
                    self.register(plugin, name=ep.name)
                # SyntaxError, ImportError, whatever its import raises (sys.exit included); pluggy's refusal.
                except (Exception, SystemExit) as exc:
                    failures.append(self.failure(ep.name, _describe(exc)))
                    continue
                unknown = self.undefined_hooks(plugin)
                if unknown:
                    self.unregister(plugin)
                    error = f"implements hook {', '.join(unknown)}, which odqa does not define (misspelled?)"
                    failures.append(self.failure(ep.name, error))
                    continue
                self._loaded.append((plugin, dist))
        return failures

    def undefined_hooks(self, plugin: Any) -> list[str]:
        """The hooks ``plugin`` implements that have no spec: what ``check_pending`` refuses, for one plugin."""
        names = []
        for caller in self.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            if any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()):
                names.append(caller.name)
        return sorted(names)


class _DistInfo:
    """pluggy's distribution facade: a ``Distribution`` with the ``project_name`` of pkg_resources."""

    def __init__(self, dist: importlib.metadata.Distribution) -> None:
        self._dist = dist

    @property
    def project_name(self) -> str:
        return self._dist.metadata["Name"]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._dist, attr)


#: Per kind, each hook call's plugin and what it registered, in pluggy's hook order.
_Calls = dict[str, list[tuple[str, list[Registration]]]]


@dataclass
class _Registries:
    calls: _Calls
    #: Plugins broken while registering (a hook raised, an unusable class).
    failures: dict[str, PluginFailure]
    entries: dict[str, dict[str, Registration]] = field(default_factory=dict)
    #: ``(kind, name)`` → the plugins registering it, in registration order (two or more).
    conflicts: dict[tuple[str, str], list[str]] = field(default_factory=dict)


_pm: _PluginManager | None = None
_registries: _Registries | None = None
#: Plugins broken while loading (import, validation) or adding their commands; kept until :func:`reset`.
_load_failures: dict[str, PluginFailure] = {}
_reporter: Callable[[PluginFailure], None] | None = None


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def strict() -> bool:
    """Whether ``ODQA_STRICT_PLUGINS`` makes a broken plugin an error."""
    return os.environ.get("ODQA_STRICT_PLUGINS", "").strip().lower() not in ("", "0", "false", "no", "off")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(exc: BaseException) -> str:
    return _one_line(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def failure_reporter(report: Callable[[PluginFailure], None]) -> Iterator[None]:
    """Within the block, hand each newly broken plugin to ``report`` instead of warning (the CLI prints one line
    per plugin). ``ODQA_STRICT_PLUGINS`` still turns a failure into a :class:`PluginError`."""
    global _reporter
    previous, _reporter = _reporter, report
    try:
        yield
    finally:
        _reporter = previous


def _report(failure: PluginFailure) -> None:
    if strict():
        raise PluginError(failure.fatal_message())
    if _reporter is not None:
        _reporter(failure)
    else:
        warnings.warn(failure.warning_message(), PluginWarning, stacklevel=4)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with the ``odqa`` entry points loaded once (broken ones skipped)."""
    return _manager()


def _manager() -> _PluginManager:
    global _pm
    if _pm is None:
        pm = _PluginManager()
        pm.add_hookspecs(hookspecs)
        for name in _env_list("ODQA_BLOCK_PLUGINS") or []:
            pm.set_blocked(name)
        failures = pm.load_entry_points(ENTRY_POINT_GROUP, _env_list("ODQA_LOAD_PLUGINS"))
        for failure in failures:
            _report(failure)  # may raise (strict): nothing is kept, the next call tries again
        _load_failures.update((f.name, f) for f in failures)
        _pm = pm
    return _pm


def reset() -> None:
    """Forget the loaded plugins and registries (tests, or after installing a plugin in-process)."""
    global _pm, _registries
    _pm = None
    _registries = None
    _load_failures.clear()


def invalidate() -> None:
    """Rebuild the registries on next use, e.g. after ``get_plugin_manager().register(...)`` in a test."""
    global _registries
    _registries = None


def mark_broken(name: str, error: str) -> None:
    """Record that plugin ``name`` broke outside registration (the CLI: its ``register_commands`` raised); its
    components are dropped from the registries and it is reported like any broken plugin."""
    global _registries
    failure = _manager().failure(name, _one_line(error))
    _load_failures[name] = failure
    if _registries is not None:  # drop its components without calling every hook again
        _registries = _merge(_registries.calls, _registries.failures)
    _report(failure)


def _healthy(name: str | None) -> bool:
    return name not in _load_failures and (_registries is None or name not in _registries.failures)


def command_hooks() -> list[tuple[str, Callable[..., None]]]:
    """``(plugin name, register_commands)`` of each plugin that is not broken, in pluggy's call order; the CLI
    calls them one at a time so that one failing leaves the others' commands in place."""
    load_all()
    impls = _manager().hook.register_commands.get_hookimpls()
    # Reversed: pluggy calls the last registered implementation first.
    return [(impl.plugin_name, _bound(impl)) for impl in reversed(impls) if _healthy(impl.plugin_name)]


def _bound(impl: Any) -> Callable[..., None]:
    """Call a hook implementation with the arguments it declares, as pluggy does."""

    def call(**kwargs: Any) -> None:
        impl.function(*[kwargs[name] for name in impl.argnames])

    return call


class _InvalidRegistration(PluginError):
    """``register(...)`` was given something odqa cannot use."""


def _registration_problem(hook: str, base: type[Component], cls: Any, name: Any) -> str | None:
    if isinstance(cls, str):
        return _reference_problem(hook, cls, name)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{hook} registered {cls!r}, which is not a {base.__name__} subclass"
    key = cls.name if name is None else name
    if not isinstance(key, str) or not key.strip():
        return (
            f"{hook} registered {cls.__name__} with name {key!r}; a component needs a non-empty name (set "
            f"{cls.__name__}.name or call register({cls.__name__}, name=...))"
        )
    if inspect.isabstract(cls):
        return f"{cls.__name__} does not implement: {', '.join(sorted(cls.__abstractmethods__))}"
    return None


def _reference_problem(hook: str, reference: str, name: Any) -> str | None:
    """What is wrong with a lazy registration, seen without importing it (the class is checked on first use)."""
    if not _REFERENCE.fullmatch(reference):
        return f"{hook} registered {reference!r}: a class or a reference 'package.module:ClassName'"
    if not isinstance(name, str) or not name.strip():
        return (
            f"{hook} registered {reference!r} with name {name!r}; a component registered by reference needs its "
            f"name: register({reference!r}, name=...)"
        )
    return None


def _registrar(kind: str, plugin: str, made: list[Registration], problems: list[str]) -> Callable[..., None]:
    """The ``register`` callable handed to one plugin's hook for one component kind. A problem is kept in
    ``problems`` as well as raised, so a plugin that catches the exception is still found out."""
    hook, base = _HOOKS[kind], COMPONENT_KINDS[kind]

    def register(cls: type[Component] | str, name: str | None = None) -> None:
        problem = _registration_problem(hook, base, cls, name)
        if problem is not None:
            problems.append(problem)
            raise _InvalidRegistration(problem)
        # A reference always comes with its name (checked above); a class defaults to its own.
        made.append(Registration(cls.name if name is None else name, cls, plugin, kind))

    return register


def _build_registries(pm: _PluginManager) -> _Registries:
    # Each implementation is called separately, so every registration knows which plugin made it and one plugin's
    # failure drops that plugin only.
    calls: _Calls = {kind: [] for kind in _HOOKS}
    failures: dict[str, PluginFailure] = {}
    for kind, hook in _HOOKS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            plugin = impl.plugin_name
            if plugin in _load_failures or plugin in failures:
                continue
            made: list[Registration] = []
            problems: list[str] = []
            try:
                _bound(impl)(register=_registrar(kind, plugin, made, problems))
            except _InvalidRegistration:
                pass
            except (Exception, SystemExit) as exc:
                problems.append(f"{hook} raised {_describe(exc)}")
            if problems:
                failures[plugin] = pm.failure(plugin, problems[0])
            calls[kind].append((plugin, made))

    for failure in failures.values():
        _report(failure)  # may raise (strict) before the registries are kept: the next call tries again
    return _merge(calls, failures)


def _merge(calls: _Calls, failures: dict[str, PluginFailure]) -> _Registries:
    """The registries of what the plugins that are not broken registered; a name registered twice is a conflict."""
    registries = _Registries(calls, failures, {kind: {} for kind in _HOOKS})
    for kind, made_by in calls.items():
        entries = registries.entries[kind]
        for plugin, made in made_by:
            if plugin in failures or plugin in _load_failures:
                continue
            for reg in made:
                previous = entries.get(reg.name)
                if previous is None:
                    entries[reg.name] = reg
                else:
                    registries.conflicts.setdefault((kind, reg.name), [previous.plugin]).append(plugin)
    return registries


def _get_registries() -> _Registries:
    global _registries
    pm = _manager()
    if _registries is None:
        _registries = _build_registries(pm)
    return _registries


def load_all() -> None:
    """Load every plugin and build every registry now (the CLI does this once, before running a command)."""
    _get_registries()


def registry(kind: str) -> dict[str, Registration]:
    """``{name: Registration}`` of one component kind (a conflicting name maps to its first registration)."""
    return _get_registries().entries[kind]


def failures() -> list[PluginFailure]:
    """The broken plugins (skipped), whichever way they broke."""
    registries = _get_registries()
    return [*_load_failures.values(), *(f for f in registries.failures.values() if f.name not in _load_failures)]


def _conflict_message(kind: str, name: str, owners: list[str]) -> str:
    times = "twice" if len(owners) == 2 else f"{len(owners)} times"
    by = ", ".join(f"by plugin {p!r}" for p in owners[:-1]) + f" and by plugin {owners[-1]!r}"
    return f"{kind} {name!r} is registered {times}: {by}; uninstall one of them, or skip one with ODQA_BLOCK_PLUGINS"


def get_component_class(kind: str, name: str) -> type[Component]:
    """The class registered as ``name``; an unknown name lists the available ones, a name two plugins registered
    is an error naming both."""
    registries = _get_registries()
    owners = registries.conflicts.get((kind, name))
    if owners is not None:
        raise PluginError(_conflict_message(kind, name, owners))
    entries = registries.entries[kind]
    if name not in entries:
        available = ", ".join(sorted(entries)) or "none installed"
        broken = [f.name for f in failures()]
        raise UnknownComponentError(
            f"{kind} {name!r} is not available (plugin may not be installed); available: {available}"
            + (f"; broken plugin{'s' if len(broken) > 1 else ''} skipped: {', '.join(broken)}" if broken else "")
            + ". Run 'odqa plugins' to see installed plugins"
        )
    return entries[name].cls


def load_components(plugin: str | None = None) -> None:
    """Import every component registered by reference now (those of ``plugin`` only, when given) and check it as
    a class registration is checked; the first that fails raises its :class:`PluginError`. A plugin's tests call
    ``load_components("myplugin")`` so that a stale reference fails there rather than at a user's first use.
    Names registered twice (a conflict) are checked for each plugin that registered them; broken plugins are
    skipped, as everywhere."""
    registries = _get_registries()
    for made_by in registries.calls.values():
        for owner, made in made_by:
            if (plugin is None or owner == plugin) and _healthy(owner):
                for reg in made:
                    reg.cls  # noqa: B018 - imports and checks the class


def lazy_command(reference: str, *, name: str, help: str) -> click.Command:
    """A command for ``register_commands`` that imports its module only when it runs or shows its own help.

    ``reference`` names the click command, ``"package.module:command"``; ``name`` is what the user types and
    ``help`` the first paragraph of the command's help, shown in the parent's command list (``odqa --help``) without
    importing anything. For example ``cli.add_command(lazy_command("odqa_x.cli:train", name="train-x",
    help="Train an X model."))``. A reference that cannot be imported is a one-line ``Error:`` when the command
    is used.
    """
    if not _REFERENCE.fullmatch(reference):
        raise PluginError(f"lazy_command({reference!r}): give the command as 'package.module:command'")
    from odqa_core._lazy_command import LazyCommand

    return LazyCommand(reference, name=name, help=help)


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate a registered component from user options."""
    return get_component_class(kind, name).from_options(options)


def list_plugins() -> list[dict[str, Any]]:
    """Each plugin — loaded or broken — with its distribution, version, hooks, the component names it registers,
    the names it shares with another plugin (``conflicts``) and, when broken, its ``error`` (else ``None``)."""
    pm = _manager()
    registries = _get_registries()
    broken = {f.name: f for f in failures()}
    components: dict[str, dict[str, list[str]]] = {}
    for kind in _HOOKS:
        for reg in registries.entries[kind].values():
            components.setdefault(reg.plugin, {}).setdefault(kind + "s", []).append(reg.name)
    conflicts: dict[str, list[dict[str, Any]]] = {}
    for (kind, name), owners in sorted(registries.conflicts.items()):
        for owner in dict.fromkeys(owners):
            conflicts.setdefault(owner, []).append({"kind": kind, "name": name, "plugins": owners})
            if owner != owners[0]:
                components.setdefault(owner, {}).setdefault(kind + "s", []).append(name)
    names = [pm.get_name(plugin) for plugin in pm.get_plugins()]
    rows = []
    for name in sorted({n for n in names if n is not None} | set(broken)):
        plugin = pm.get_plugin(name)
        dist = pm.distributions.get(name)
        failure = broken.get(name)
        rows.append(
            {
                "name": name,
                "distribution": dist.metadata["Name"] if dist else None,
                "version": dist.version if dist else None,
                "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []) if plugin else [],
                "components": {} if failure else {k: sorted(v) for k, v in sorted(components.get(name, {}).items())},
                "conflicts": [] if failure else conflicts.get(name, []),
                "error": failure.error if failure else None,
            }
        )
    return rows
