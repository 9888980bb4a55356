"""The boundaries that make odqa a plugin framework, read from the source (no imports, nothing installed needed).

- A plugin under ``plugins/`` speaks to the core through its public modules only (the ones without a leading
  underscore, pluggy's convention), and imports no other plugin's package, except the ``odqa_transformers``
  library that the transformer plugins share.
- The core imports no plugin.
- No package has an import circle between its modules, lazy (function-level) imports included: a circle is a
  design circle even when Python tolerates it at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import odqa_core

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "odqa_core"
#: The plugin library every plugin may import (the HF loading, the offline bootstrap and the training loop).
SHARED_LIBRARIES = {"odqa_transformers"}


def _packages() -> dict[str, Path]:
    """Package name → its directory: the core and every plugin distribution's package (tests excluded)."""
    found = {"odqa_core": CORE}
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        for init in sorted(pyproject.parent.glob("*/__init__.py")):
            if init.parent.name != "tests":
                found[init.parent.name] = init.parent
    return found


PACKAGES = _packages()


def _modules(package: str) -> dict[str, Path]:
    """Dotted module name → file, for every module of ``package``."""
    base = PACKAGES[package]
    modules = {}
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(base.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules ``module`` imports anywhere in its file (lazy imports included), resolved to the most specific
    name: ``from pkg import sub`` counts as ``pkg.sub`` when ``sub`` is a module of ``known``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                parts = parts[: len(parts) - node.level + (1 if is_package else 0)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def _all_imports(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


PUBLIC_CORE = {
    name for name in _modules("odqa_core") if not any(part.startswith("_") for part in name.split(".")[1:])
}


def test_the_public_core_is_what_the_package_declares():
    """``odqa_core.PUBLIC_MODULES`` (and docs/plugins.md) name exactly the modules without a leading underscore."""
    declared = {f"odqa_core.{name}" for name in odqa_core.PUBLIC_MODULES}
    assert declared | {"odqa_core"} == PUBLIC_CORE
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    undocumented = sorted(name for name in declared if f"`{name}`" not in docs)
    assert not undocumented, f"public core modules missing from docs/plugins.md: {undocumented}"


@pytest.mark.parametrize("package", sorted(set(PACKAGES) - {"odqa_core"}))
def test_a_plugin_uses_only_the_public_core_and_no_other_plugin(package):
    allowed_plugins = {package} | SHARED_LIBRARIES
    problems = []
    for module, imported in _all_imports(package).items():
        for name in sorted(imported):
            top = name.split(".")[0]
            if top == "odqa_core" and name not in PUBLIC_CORE:
                problems.append(f"{module} imports the private core module {name}")
            elif top in PACKAGES and top != "odqa_core" and top not in allowed_plugins:
                problems.append(f"{module} imports the plugin package {name}")
    assert not problems, "\n".join(problems)


def test_the_core_imports_no_plugin():
    problems = [
        f"{module} imports {name}"
        for module, imported in _all_imports("odqa_core").items()
        for name in sorted(imported)
        if name.split(".")[0] in PACKAGES and name.split(".")[0] != "odqa_core"
    ]
    assert not problems, "\n".join(problems)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_circle_inside_a_package(package):
    imports = _all_imports(package)
    # A package's __init__ re-exports its modules: an arrow into the package itself is not an arrow into them.
    inside = set(imports) - {package}
    graph = {module: imported & inside for module, imported in imports.items()}
    assert not _cycles(graph)


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
