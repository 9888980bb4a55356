"""``odqa --help``, ``odqa --version`` and ``odqa plugins`` start fast: they import neither numpy nor any other
heavy library, nor a plugin's component modules (issue 17; benchmarks/cli_start.py measures the time, no timing
here).

That holds because the core imports numpy only where arrays are made, and plugins register their components and
commands by reference (``register("package.module:Class", name=...)``, ``plugins.lazy_command(...)``): the
registry keeps the names and imports a module when its component or command is used. Each check runs the real
command in a fresh process, with the installed plugins plus a fake distribution (``odqa-lazy``) whose component and
command modules import numpy and pytest at the top, so the checks mean something even where no component plugin is
installed (tox's core env).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import click
import pytest

import odqa_core
from odqa_core import _cli, plugins
from odqa_core._lazy_command import LazyCommand
from odqa_core.errors import PluginError
from odqa_core.interfaces import COMPONENT_KINDS
from odqa_core.testing import (
    FakeRetriever,
    assert_one_line_error,
    cli_modules_imported,
    registered_plugin,
    run_cli,
    write_toy_files,
)

#: The libraries none of the light commands may import (pytest: odqa_core.testing imports it).
HEAVY = ("numpy", "torch", "transformers", "faiss", "scipy", "numba", "sklearn", "kiwipiepy", "pytest")
#: Modules of the plugin packages that registration itself needs: the hook state of ``model=sample`` (the readers).
LIGHT_PLUGIN_MODULES = {"odqa_readers.demo"}
#: tests/outside_plugin (installed with the test suite) registers classes directly, on purpose, from a module that
#: imports odqa_core.testing (numpy, pytest): what such a plugin imports is its own choice, so it is left out here.
BLOCKED = "example"

LAZY_PLUGIN = """
import odqa_core
from odqa_core.plugins import lazy_command


@odqa_core.hookimpl
def register_retrievers(register):
    register("odqa_lazy_components:LazyRetriever", name="lazy-fake")
    register("odqa_lazy_missing_module:Nothing", name="lazy-missing")


@odqa_core.hookimpl
def register_commands(cli):
    cli.add_command(lazy_command("odqa_lazy_commands:hello", name="hello", help="Say hello, lazily."))
    cli.commands["train"].add_command(lazy_command("odqa_lazy_commands:train", name="lazy", help="Train nothing."))
    cli.add_command(lazy_command("odqa_lazy_missing_module:hello", name="hello-missing", help="Cannot import."))
"""

LAZY_COMPONENTS = """
import numpy  # what a real component module imports at the top; the light commands must not run this
from odqa_core.testing import FakeRetriever


class LazyRetriever(FakeRetriever):
    name = "lazy-fake"
"""

LAZY_COMMANDS = """
import click
import numpy  # as above


@click.command()
@click.option("--name", default="world", help="Whom to greet.")
def hello(name):
    '''Say hello, lazily.

    A longer description that only 'odqa hello --help' shows.
    '''
    click.echo(f"hello {name}")


@click.command()
def train():
    '''Train nothing.'''
    click.echo("trained nothing")
"""

PLUGIN_VARIABLES = ("ODQA_LOAD_PLUGINS", "ODQA_BLOCK_PLUGINS", "ODQA_STRICT_PLUGINS")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A directory on PYTHONPATH with the fake ``odqa-lazy`` distribution (what ``pip install`` leaves)."""
    site = tmp_path_factory.mktemp("site")
    info = site / "odqa_lazy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: odqa-lazy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[odqa]\nlazy = odqa_lazy_plugin\n")
    (site / "odqa_lazy_plugin.py").write_text(textwrap.dedent(LAZY_PLUGIN))
    (site / "odqa_lazy_components.py").write_text(textwrap.dedent(LAZY_COMPONENTS))
    (site / "odqa_lazy_commands.py").write_text(textwrap.dedent(LAZY_COMMANDS))
    return site


def environment(site: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARIABLES and k != "PYTHONPATH"}
    environ.update(PYTHONPATH=str(site), ODQA_BLOCK_PLUGINS=BLOCKED, ODQA_PROGRESS="0", PYTHONDONTWRITEBYTECODE="1")
    return environ


def run_and_list_modules(site: Path, *args: str) -> tuple[str, list[str]]:
    """``odqa args`` in a fresh process: its output and the modules it imported."""
    output, modules, stderr = cli_modules_imported(*args, env=environment(site))
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr
    return output, modules


def run_odqa(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from odqa_core._cli import cli; cli(prog_name='odqa')", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment(site), cwd=cwd, timeout=300)


def plugin_component_modules(modules: list[str]) -> list[str]:
    """The imported modules of plugin packages other than their registration modules (the entry points' modules,
    their packages and :data:`LIGHT_PLUGIN_MODULES`)."""
    allowed = set(LIGHT_PLUGIN_MODULES)
    packages = {"odqa_lazy_components", "odqa_lazy_commands"}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == plugins.ENTRY_POINT_GROUP and ep.name != BLOCKED:
                allowed.add(ep.value)
                allowed.add(ep.value.split(".")[0])
                packages.add(ep.value.split(".")[0])
    return [m for m in modules if m.split(".")[0] in packages and m not in allowed]


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["plugins"], ["plugins", "--json"], ["train", "--help"]], ids=" ".join
)
def test_light_commands_import_no_heavy_library_and_no_component_module(site, args):
    output, modules = run_and_list_modules(site, *args)
    assert output.strip()
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    assert not heavy, f"odqa {' '.join(args)} imported {sorted({m.split('.')[0] for m in heavy})}"
    components = plugin_component_modules(modules)
    assert not components, f"odqa {' '.join(args)} imported the plugins' component modules {components}"


def test_lazy_components_and_commands_are_listed_without_importing_them(site):
    listed, modules = run_and_list_modules(site, "plugins")
    assert (
        "lazy (odqa-lazy 1.0)\n  retrievers: lazy-fake, lazy-missing\n"
        "  commands: odqa hello, odqa hello-missing, odqa train lazy\n"
    ) in listed
    help_, _ = run_and_list_modules(site, "--help")
    assert re.search(r"^  hello +Say hello, lazily\.$", help_, re.MULTILINE), help_
    train_help, _ = run_and_list_modules(site, "train", "--help")
    assert re.search(r"^  lazy +Train nothing\.$", train_help, re.MULTILINE), train_help
    assert "odqa_lazy_components" not in modules and "odqa_lazy_commands" not in modules


def test_lazy_components_and_commands_work_when_used(site, tmp_path):
    corpus, _ = write_toy_files(tmp_path)
    index = run_odqa(
        site, tmp_path, "index", "--retriever", "lazy-fake", "--corpus", str(corpus), "--index-dir", "idx"
    )
    assert index.returncode == 0 and (tmp_path / "idx").is_dir(), index.stderr
    hello = run_odqa(site, tmp_path, "hello", "--name", "odqa")
    assert (hello.returncode, hello.stdout) == (0, "hello odqa\n"), hello.stderr
    own_help = run_odqa(site, tmp_path, "hello", "--help")
    assert own_help.returncode == 0 and "Usage: odqa hello [OPTIONS]" in own_help.stdout
    assert "only 'odqa hello --help' shows" in own_help.stdout and "--name TEXT" in own_help.stdout
    trained = run_odqa(site, tmp_path, "train", "lazy")
    assert (trained.returncode, trained.stdout) == (0, "trained nothing\n"), trained.stderr


def test_a_reference_that_cannot_be_imported_is_a_one_line_error_when_used(site, tmp_path):
    corpus, _ = write_toy_files(tmp_path)
    for args, expected in [
        (
            ("index", "--retriever", "lazy-missing", "--corpus", str(corpus), "--index-dir", "idx"),
            "Error: retriever 'lazy-missing' of plugin 'lazy' (odqa_lazy_missing_module:Nothing) cannot be "
            "imported: ModuleNotFoundError: No module named 'odqa_lazy_missing_module'",
        ),
        (
            ("hello-missing",),
            "Error: command 'hello-missing' (odqa_lazy_missing_module:hello) cannot be imported: "
            "ModuleNotFoundError: No module named 'odqa_lazy_missing_module'",
        ),
    ]:
        result = run_odqa(site, tmp_path, *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert [line for line in result.stderr.splitlines() if line.strip()] == [expected]
    assert not (tmp_path / "idx").exists()


# --- in-process: registration by reference next to registration by class --------------------------------------------


class Eager(FakeRetriever):
    name = "eager"


class _References:
    """A plugin object registering ``items`` (``(target, name)`` pairs, or a class alone) as retrievers."""

    def __init__(self, *items) -> None:
        self.items = items

    @odqa_core.hookimpl
    def register_retrievers(self, register):
        for item in self.items:
            register(*item) if isinstance(item, tuple) else register(item)


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Write a module (a fresh name per test) on sys.path; returns ``write(source) -> module name``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"odqa_test_lazy_{uuid.uuid4().hex[:12]}"

    def write(source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    yield write
    sys.modules.pop(name, None)


COMPONENTS = """
import odqa_core
from odqa_core.testing import FakeRetriever


class Lazy(FakeRetriever):
    name = "lazy"


class Abstract(odqa_core.Retriever):
    name = "abstract"


class NotARetriever:
    name = "other"
"""


def test_both_forms_register_and_the_reference_is_imported_on_first_use(fresh_plugins, module):
    name = module(COMPONENTS)
    with registered_plugin(_References(Eager, (f"{name}:Lazy", "lazy"), (f"{name}:Lazy", "alias")), "both"):
        registry = plugins.registry("retriever")
        assert registry["eager"].cls is Eager and not registry["eager"].is_lazy
        assert registry["lazy"].is_lazy and registry["lazy"].plugin == "both"
        rows = {row["name"]: row for row in plugins.list_plugins()}
        assert rows["both"]["components"] == {"retrievers": ["alias", "eager", "lazy"]}
        assert name not in sys.modules, "listing the plugins imported a component module"

        lazy = plugins.create("retriever", "lazy")
        assert name in sys.modules and type(lazy) is sys.modules[name].Lazy
        assert plugins.get_component_class("retriever", "alias") is type(lazy)
        assert not registry["lazy"].is_lazy
        plugins.load_components("both")


@pytest.mark.parametrize(
    ("item", "error"),
    [
        (
            ("Lazy", "lazy"),
            "register_retrievers registered 'Lazy': a class or a reference 'package.module:ClassName'",
        ),
        (("{module}:Lazy",), "a component registered by reference needs its name: register("),
        (("{module}:Lazy", " "), "a component registered by reference needs its name"),
    ],
)
def test_a_malformed_reference_breaks_the_plugin_at_registration(fresh_plugins, module, item, error):
    name = module(COMPONENTS)
    item = (item[0].format(module=name), *item[1:])
    with pytest.warns(plugins.PluginWarning) as warned, registered_plugin(_References(Eager, item), "bad"):
        assert "eager" not in plugins.registry("retriever"), "a broken plugin is skipped as a whole"
    assert error in str(warned[0].message)


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("{module}:Abstract", "cannot be used: Abstract does not implement: documents, index"),
        ("{module}:NotARetriever", "cannot be used: register_retrievers registered <class"),
        ("{module}:Missing", "cannot be imported: AttributeError: module"),
        ("odqa_no_such_module_anywhere:Lazy", "cannot be imported: ModuleNotFoundError: No module named"),
    ],
)
def test_a_reference_that_fails_on_first_use_is_an_error_naming_the_plugin(
    fresh_plugins, module, tmp_path, target, error
):
    name = module(COMPONENTS)
    target = target.format(module=name)
    with registered_plugin(_References(Eager, (target, "broken-ref")), "refs"):
        assert set(plugins.registry("retriever")) >= {"eager", "broken-ref"}  # nothing imported yet
        with pytest.raises(PluginError) as info:
            plugins.create("retriever", "broken-ref")
        message = str(info.value)
        assert message.startswith(f"retriever 'broken-ref' of plugin 'refs' ({target}) ") and error in message
        assert "\n" not in message
        with pytest.raises(PluginError, match="broken-ref"):
            plugins.load_components("refs")
        assert plugins.get_component_class("retriever", "eager") is Eager  # the plugin's other components work
        result = run_cli(f"index --retriever broken-ref --corpus sample --index-dir {tmp_path / 'index'}")
        assert_one_line_error(result, contains="retriever 'broken-ref' of plugin 'refs'")
        assert not (tmp_path / "index").exists()


def test_lazy_command_refuses_a_malformed_reference():
    with pytest.raises(PluginError, match="give the command as 'package.module:command'"):
        plugins.lazy_command("odqa_x.cli.train", name="x", help="x")


def test_a_lazy_command_naming_something_else_is_an_error(module):
    name = module("not_a_command = 42\n")
    command = plugins.lazy_command(f"{name}:not_a_command", name="x", help="X.")
    with pytest.raises(PluginError, match=f"command 'x': {name}:not_a_command is int, not a click command"):
        command.load()


# --- the project's own lazy registrations agree with what they stand for --------------------------------------------


def _lazy_commands(group: click.Group, prefix: str = "") -> dict[str, LazyCommand]:
    found = {}
    for name, command in group.commands.items():
        if isinstance(command, LazyCommand):
            found[prefix + name] = command
        elif isinstance(command, click.Group):
            found.update(_lazy_commands(command, f"{prefix}{name} "))
    return found


def test_a_lazy_commands_summary_is_its_commands_own():
    """``odqa --help`` lists what the real command would show: the summary given is its help's first paragraph."""
    commands = _lazy_commands(_cli.cli)
    if not commands:
        pytest.skip("no installed plugin adds a command by reference")
    for path, lazy in commands.items():
        real = lazy.load()
        for limit in (45, 1000):
            assert lazy.get_short_help_str(limit) == real.get_short_help_str(limit), f"odqa {path}"


def test_the_installed_plugins_references_import_under_their_names():
    references = [
        reg
        for kind in COMPONENT_KINDS
        for reg in plugins.registry(kind).values()
        if isinstance(reg.target, str) and reg.plugin != BLOCKED
    ]
    if not references:
        pytest.skip("no installed plugin registers a component by reference")
    for reg in references:
        assert reg.cls.name == reg.name and reg.cls.kind == reg.kind, reg


def test_the_choices_the_cli_spells_out_are_the_modules():
    from odqa_core import _runs, evaluation, qa_metrics

    assert _cli.RUN_FORMATS == _runs.RUN_FORMATS
    assert _cli.METRICS == qa_metrics.METRICS
    assert _cli.DEFAULT_KS == evaluation.DEFAULT_KS
