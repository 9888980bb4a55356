"""Plugin manager and component registries.

Plugins are found through the ``odqa`` entry-point group, the same way for the project's own plugin packages and
for third-party ones. Environment variables control loading:

- ``ODQA_LOAD_PLUGINS=a,b`` loads only the named entry points (empty: none);
- ``ODQA_BLOCK_PLUGINS=a,b`` loads all but the named ones.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from odqa_core import hookspecs
from odqa_core.errors import PluginError, UnknownComponentError
from odqa_core.interfaces import COMPONENT_KINDS, Component

ENTRY_POINT_GROUP = "odqa"
_HOOKS = {
    "retriever": "register_retrievers",
    "fuser": "register_fusers",
    "reader": "register_readers",
    "postprocessor": "register_postprocessors",
    "analyzer": "register_analyzers",
    "trainer": "register_trainers",
}

_pm: pluggy.PluginManager | None = None
_registries: dict[str, dict[str, Registration]] | None = None


@dataclass(frozen=True)
class Registration:
    name: str
    cls: type[Component]
    plugin: str


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with the ``odqa`` entry points loaded once."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("odqa")
        pm.add_hookspecs(hookspecs)
        only = _env_list("ODQA_LOAD_PLUGINS")
        blocked = _env_list("ODQA_BLOCK_PLUGINS") or []
        for name in blocked:
            pm.set_blocked(name)
        if only is None:
            _load_entry_points(pm)
        else:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                if ep.name in only and not pm.is_blocked(ep.name):
                    _load_entry_points(pm, name=ep.name)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {exc.plugin!r} implements a hook odqa does not define: {exc}") from None
        _pm = pm
    return _pm


def _load_entry_points(pm: pluggy.PluginManager, name: str | None = None) -> None:
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin_name!r} is invalid: {exc}") from None
    except ImportError as exc:
        raise PluginError(f"an odqa plugin failed to import: {exc}") from None


def reset() -> None:
    """Forget the loaded plugins and registries (tests, or after installing a plugin in-process)."""
    global _pm, _registries
    _pm = None
    _registries = None


def invalidate() -> None:
    """Rebuild the registries on next use, e.g. after ``get_plugin_manager().register(...)`` in a test."""
    global _registries
    _registries = None


def _registrar(kind: str, plugin: str, entries: dict[str, Registration]) -> Callable[..., None]:
    """The ``register`` callable handed to one plugin's hook for one component kind."""
    base = COMPONENT_KINDS[kind]

    def register(cls: type[Component], name: str | None = None) -> None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"plugin {plugin!r} registered {cls!r}, which is not a {base.__name__}")
        key = name or cls.name
        if not key:
            raise PluginError(f"plugin {plugin!r} registered {cls.__name__} without a name")
        previous = entries.get(key)
        if previous is not None:
            raise PluginError(
                f"{kind} {key!r} is registered twice: by plugin {previous.plugin!r} and by plugin {plugin!r}"
            )
        entries[key] = Registration(key, cls, plugin)

    return register


def _build_registries() -> dict[str, dict[str, Registration]]:
    pm = get_plugin_manager()
    registries: dict[str, dict[str, Registration]] = {kind: {} for kind in _HOOKS}
    for kind, hook_name in _HOOKS.items():
        # Call each implementation separately so every registration knows which plugin made it.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            impl.function(_registrar(kind, impl.plugin_name, registries[kind]))
    return registries


def registry(kind: str) -> dict[str, Registration]:
    """``{name: Registration}`` of one component kind."""
    global _registries
    if _registries is None:
        _registries = _build_registries()
    return _registries[kind]


def get_component_class(kind: str, name: str) -> type[Component]:
    """The class registered as ``name``; an unknown name lists the available ones."""
    entries = registry(kind)
    if name not in entries:
        available = ", ".join(sorted(entries)) or "none installed"
        raise UnknownComponentError(
            f"{kind} {name!r} is not available (plugin may not be installed); "
            f"available: {available}. Run 'odqa plugins' to see installed plugins"
        )
    return entries[name].cls


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate a registered component from user options."""
    return get_component_class(kind, name).from_options(options)


def list_plugins() -> list[dict[str, Any]]:
    """Each loaded plugin with its distribution, version and the component names it registers."""
    pm = get_plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    components: dict[str, dict[str, list[str]]] = {}
    for kind in _HOOKS:
        for reg in registry(kind).values():
            components.setdefault(reg.plugin, {}).setdefault(kind + "s", []).append(reg.name)
    rows = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        if name is None:
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(impl.name for impl in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "distribution": dist.project_name if dist else None,
                "version": dist.version if dist else None,
                "hooks": hooks,
                "components": {k: sorted(v) for k, v in sorted(components.get(name, {}).items())},
            }
        )
    return sorted(rows, key=lambda row: row["name"])
