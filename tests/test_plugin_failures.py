"""A broken plugin is the plugin's problem, not the program's.

Each case installs a fake distribution (a ``*.dist-info`` with ``entry_points.txt`` and ``METADATA``, which
``importlib.metadata`` discovers on ``sys.path``) next to a healthy one and runs the real ``odqa`` command in a
subprocess: ``--help``, ``--version``, ``odqa run`` and the other plugins keep working with one warning line naming
the broken plugin, ``odqa plugins`` lists it with its distribution and error, ``ODQA_STRICT_PLUGINS=1`` makes it a
one-line error and ``ODQA_BLOCK_PLUGINS`` silences it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import odqa_core
from odqa_core import plugins
from odqa_core.errors import PluginError, UnknownComponentError
from odqa_core.testing import FakeFuser, FakeRetriever, registered_plugin, write_toy_files

HEALTHY = """
import odqa_core
from odqa_core.testing import FakeRetriever


@odqa_core.hookimpl
def register_retrievers(register):
    register(FakeRetriever)
"""

#: case → (module source of the broken plugin, what its error says)
BROKEN = {
    "import-error": ("import odqa_dependency_that_is_not_installed\n", "ModuleNotFoundError: No module named"),
    "runtime-error": ("raise RuntimeError('no GPU driver found')\n", "RuntimeError: no GPU driver found"),
    "syntax-error": ("def register_retrievers(register:\n", "SyntaxError:"),
    "hook-raises": (
        """
        import odqa_core

        @odqa_core.hookimpl
        def register_retrievers(register):
            raise ValueError("config file missing")
        """,
        "register_retrievers raised ValueError: config file missing",
    ),
    "abstract-class": (
        """
        import odqa_core
        from odqa_core.testing import FakeRetriever


        class MyRetriever(odqa_core.Retriever):
            name = "mine"

            def index(self, documents): ...
            def search(self, queries, k): ...
            def save_state(self, writer): ...
            @classmethod
            def load_state(cls, reader, documents): ...


        class Fine(FakeRetriever):
            name = "fine-but-from-a-broken-plugin"


        @odqa_core.hookimpl
        def register_retrievers(register):
            register(Fine)
            register(MyRetriever)
        """,
        "MyRetriever does not implement: documents",
    ),
    "commands-raise": (
        """
        import click
        import odqa_core
        from odqa_core.testing import FakeRetriever


        class Fine(FakeRetriever):
            name = "fine-but-from-a-broken-plugin"


        @odqa_core.hookimpl
        def register_retrievers(register):
            register(Fine)


        @odqa_core.hookimpl
        def register_commands(cli):
            cli.add_command(click.Command("half-added", callback=lambda: None))
            cli.commands["train"].add_command(click.Command("half-trained", callback=lambda: None))
            raise KeyError("no-such-group")
        """,
        "register_commands raised KeyError: 'no-such-group'",
    ),
    "misspelled-hook": (
        """
        import odqa_core

        @odqa_core.hookimpl
        def register_retreivers(register):
            pass
        """,
        "implements hook register_retreivers, which odqa does not define",
    ),
}

#: What the tests set themselves: the session's other ODQA_* variables (its cache directory) pass through.
PLUGIN_VARIABLES = ("ODQA_LOAD_PLUGINS", "ODQA_BLOCK_PLUGINS", "ODQA_STRICT_PLUGINS")


def add_distribution(site: Path, dist: str, version: str, entry: str, module: str, source: str) -> None:
    """A minimal installed distribution: what ``pip install`` leaves for an entry point to be found."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[odqa]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


def odqa_command() -> list[str]:
    """The installed ``odqa`` console script (what users run), else the same entry point through Python."""
    script = Path(sys.executable).with_name("odqa")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from odqa_core._cli import cli; cli(prog_name='odqa')"]


def run_odqa(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARIABLES and k != "PYTHONPATH"}
    environ.update(PYTHONPATH=str(site), ODQA_PROGRESS="0", PYTHONDONTWRITEBYTECODE="1", **env)
    return subprocess.run([*odqa_command(), *args], capture_output=True, text=True, env=environ, timeout=300)


def stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    add_distribution(site, "odqa-toy", "2.0", "toy", "odqa_toy_plugin", HEALTHY)
    return site


def broken_site(site: Path, case: str) -> str:
    source, error = BROKEN[case]
    add_distribution(site, "odqa-bad", "1.0", "bad", f"odqa_bad_{case.replace('-', '_')}", source)
    return error


def assert_one_warning(result: subprocess.CompletedProcess, error: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in stderr_lines(result) if line.startswith("Warning") or "'bad'" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Warning: plugin 'bad' (odqa-bad 1.0) failed to load and is skipped: "), lines[0]
    assert error in lines[0] and "set ODQA_BLOCK_PLUGINS=bad to silence this" in lines[0], lines[0]


def assert_broken_row(result: subprocess.CompletedProcess, error: str) -> dict:
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result) == [], "odqa plugins lists broken plugins instead of warning"
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    bad = rows["bad"]
    assert (bad["distribution"], bad["version"], bad["components"]) == ("odqa-bad", "1.0", {})
    assert error in bad["error"]
    assert rows["toy"]["error"] is None and rows["toy"]["components"] == {"retrievers": ["fake"]}
    return rows


def test_import_error_every_command_survives_with_one_warning(site, tmp_path):
    error = broken_site(site, "import-error")
    help_ = run_odqa(site, "--help")
    assert help_.returncode == 0 and "Usage: odqa" in help_.stdout
    assert_one_warning(help_, error)
    version = run_odqa(site, "--version")
    assert version.returncode == 0 and odqa_core.__version__ in version.stdout
    assert_one_warning(version, error)

    assert_broken_row(run_odqa(site, "plugins", "--json"), error)
    text = run_odqa(site, "plugins")
    assert text.returncode == 0 and stderr_lines(text) == []
    assert "bad (odqa-bad 1.0)" in text.stdout and f"BROKEN, skipped: {error}" in text.stdout
    assert "ODQA_BLOCK_PLUGINS=bad" in text.stdout

    run = run_odqa(site, "run", "--retriever", "fake", "--output-dir", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert_one_warning(run, error)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["retrievers"] == ["fake"]

    strict = run_odqa(site, "--version", ODQA_STRICT_PLUGINS="1")
    assert strict.returncode == 1 and strict.stdout == ""
    [line] = stderr_lines(strict)
    assert line.startswith(f"Error: plugin 'bad' (odqa-bad 1.0) failed to load: {error}"), line
    assert "ODQA_STRICT_PLUGINS" in line

    blocked = run_odqa(site, "--version", ODQA_BLOCK_PLUGINS="bad")
    assert blocked.returncode == 0 and stderr_lines(blocked) == []


@pytest.mark.parametrize("case", [c for c in BROKEN if c != "import-error"])
def test_broken_plugin_is_listed_and_skipped_with_one_warning(case, site, tmp_path):
    error = broken_site(site, case)
    rows = assert_broken_row(run_odqa(site, "plugins", "--json"), error)
    assert "fine-but-from-a-broken-plugin" not in json.dumps(rows), "a broken plugin is skipped as a whole"

    corpus, _ = write_toy_files(tmp_path)
    index = run_odqa(
        site, "index", "--retriever", "fake", "--corpus", str(corpus), "--index-dir", str(tmp_path / "i")
    )
    assert index.returncode == 0, index.stderr
    assert_one_warning(index, error)


@pytest.mark.parametrize("case", ["syntax-error", "hook-raises", "commands-raise"])
def test_strict_makes_a_broken_plugin_fatal(case, site):
    error = broken_site(site, case)
    strict = run_odqa(site, "plugins", ODQA_STRICT_PLUGINS="1")
    assert strict.returncode == 1 and strict.stdout == "" and "Traceback" not in strict.stderr
    [line] = stderr_lines(strict)
    assert line.startswith("Error: plugin 'bad' (odqa-bad 1.0) failed to load: ") and error in line, line


def test_half_registered_commands_are_removed(site):
    error = broken_site(site, "commands-raise")
    help_ = run_odqa(site, "--help")
    assert help_.returncode == 0 and "half-added" not in help_.stdout and "train" in help_.stdout
    assert_one_warning(help_, error)
    train = run_odqa(site, "train", "--help")
    assert train.returncode == 0 and "half-trained" not in train.stdout


COMMANDS_PLUGIN = """
import click
import odqa_core


@odqa_core.hookimpl
def register_commands(cli):
    cli.add_command(click.Command("hello", callback=lambda: click.echo("hello")))
    cli.commands["train"].add_command(click.Command("hello", callback=lambda: None))
"""


def test_odqa_plugins_lists_the_commands_a_plugin_adds(site):
    """A plugin that only adds commands (like odqa-experiments: odqa sweep, odqa tune) shows them; a broken one,
    whose half-added commands are removed, shows none."""
    add_distribution(site, "odqa-hello", "1.0", "hello", "odqa_hello_plugin", COMMANDS_PLUGIN)
    broken_site(site, "commands-raise")
    listed = run_odqa(site, "plugins")
    assert listed.returncode == 0, listed.stderr
    assert "hello (odqa-hello 1.0)\n  commands: odqa hello, odqa train hello\n" in listed.stdout
    rows = {row["name"]: row for row in json.loads(run_odqa(site, "plugins", "--json").stdout)}
    assert rows["hello"]["commands"] == ["odqa hello", "odqa train hello"]
    assert "commands" not in rows["bad"] and "commands" not in rows["toy"]


# --- in-process: the registry's rules ------------------------------------------------------------------------------


class _Registers:
    """A plugin object whose hooks register the given classes (or raise)."""

    def __init__(self, retrievers=(), fusers=(), raise_in_fusers: Exception | None = None) -> None:
        self.retrievers, self.fusers, self.raise_in_fusers = retrievers, fusers, raise_in_fusers

    @odqa_core.hookimpl
    def register_retrievers(self, register):
        for item in self.retrievers:
            register(*item) if isinstance(item, tuple) else register(item)

    @odqa_core.hookimpl
    def register_fusers(self, register):
        for item in self.fusers:
            register(item)
        if self.raise_in_fusers is not None:
            raise self.raise_in_fusers


class Renamed(FakeRetriever):
    name = "fake-renamed"


class Nameless(FakeRetriever):
    name = ""


class MissingSearch(odqa_core.Retriever):
    name = "half"

    @property
    def documents(self):
        return []

    def index(self, documents): ...

    def save_state(self, writer): ...

    @classmethod
    def load_state(cls, reader, documents): ...


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        (_Registers(retrievers=[Renamed, MissingSearch]), "MissingSearch does not implement: search"),
        (_Registers(retrievers=[Renamed, Nameless]), "registered Nameless with name ''"),
        (_Registers(retrievers=[Renamed, (FakeRetriever, 7)]), "registered FakeRetriever with name 7"),
        (_Registers(retrievers=[Renamed, FakeFuser]), "which is not a Retriever subclass"),
        (_Registers(retrievers=[Renamed], raise_in_fusers=OSError("disk")), "register_fusers raised OSError: disk"),
        (
            _Registers(retrievers=[Renamed], raise_in_fusers=SystemExit("bye")),
            "register_fusers raised SystemExit: bye",
        ),
    ],
)
def test_invalid_registration_skips_the_whole_plugin_with_a_warning(fresh_plugins, plugin, error):
    with (
        pytest.warns(plugins.PluginWarning, match="plugin 'sloppy' failed to load and is skipped") as caught,
        registered_plugin(plugin, "sloppy"),
    ):
        assert "fake-renamed" not in plugins.registry("retriever")
        rows = {row["name"]: row for row in plugins.list_plugins()}
        assert error in rows["sloppy"]["error"] and rows["sloppy"]["components"] == {}
        with pytest.raises(UnknownComponentError, match="broken plugin skipped: sloppy"):
            plugins.get_component_class("retriever", "fake-renamed")
    assert len(caught) == 1 and error in str(caught[0].message)


def test_a_plugin_catching_the_registration_error_is_still_broken(fresh_plugins):
    class Sneaky:
        @odqa_core.hookimpl
        def register_retrievers(self, register):
            with contextlib.suppress(Exception):
                register(MissingSearch)

    with (
        pytest.warns(plugins.PluginWarning, match="MissingSearch does not implement: search"),
        registered_plugin(Sneaky(), "sneaky"),
    ):
        assert "half" not in plugins.registry("retriever")


def test_a_broken_plugin_registered_again_is_reported_again(fresh_plugins):
    for _ in range(2):
        with (
            pytest.warns(plugins.PluginWarning, match="MissingSearch does not implement: search"),
            registered_plugin(_Registers(retrievers=[MissingSearch]), "sloppy"),
        ):
            plugins.registry("retriever")


def test_strict_makes_a_registration_failure_an_error(fresh_plugins, monkeypatch):
    monkeypatch.setenv("ODQA_STRICT_PLUGINS", "1")
    with registered_plugin(_Registers(retrievers=[MissingSearch]), "sloppy"):
        for _ in range(2):  # and stays one until fixed
            with pytest.raises(PluginError, match="plugin 'sloppy' failed to load: MissingSearch does not implement"):
                plugins.registry("retriever")


def test_duplicate_name_is_an_error_only_when_used(fake_plugins, odqa, tmp_path):
    with registered_plugin(_Registers(retrievers=[FakeRetriever, Renamed]), "second-plugin"):
        assert plugins.get_component_class("retriever", "fake-renamed") is Renamed
        assert plugins.get_component_class("fuser", "fake-sum") is FakeFuser
        with pytest.raises(PluginError) as info:
            plugins.create("retriever", "fake")
        assert "retriever 'fake' is registered twice: by plugin 'odqa-fakes' and by plugin 'second-plugin'" in str(
            info.value
        )
        rows = {row["name"]: row for row in plugins.list_plugins()}
        conflict = {"kind": "retriever", "name": "fake", "plugins": ["odqa-fakes", "second-plugin"]}
        assert rows["odqa-fakes"]["conflicts"] == rows["second-plugin"]["conflicts"] == [conflict]
        assert rows["second-plugin"]["components"] == {"retrievers": ["fake", "fake-renamed"]}

        text = odqa("plugins")
        assert "conflict: retriever 'fake' is also registered by plugin 'second-plugin'" in text.output
        used = odqa(f"run --retriever fake --output-dir {tmp_path / 'a'}")
        assert used.exit_code == 1 and "registered twice" in used.output and "Traceback" not in used.output
        unused = odqa(f"run --retriever fake-renamed --output-dir {tmp_path / 'b'}")
        assert unused.exit_code == 0, unused.output


def test_broken_entry_point_in_process_keeps_the_others(fresh_plugins, site, monkeypatch):
    broken_site(site, "runtime-error")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ODQA_LOAD_PLUGINS", "toy,bad")
    with pytest.warns(plugins.PluginWarning, match=r"plugin 'bad' \(odqa-bad 1.0\) failed to load"):
        assert plugins.get_component_class("retriever", "fake") is FakeRetriever
    [failure] = plugins.failures()
    assert (failure.name, failure.distribution, failure.error) == (
        "bad",
        "odqa-bad",
        "RuntimeError: no GPU driver found",
    )
    distinfo = {
        plugins.get_plugin_manager().get_name(p): d for p, d in plugins.get_plugin_manager().list_plugin_distinfo()
    }
    assert distinfo["toy"].project_name == "odqa-toy" and distinfo["toy"].version == "2.0"
    assert "bad" not in distinfo
    sys.modules.pop("odqa_toy_plugin")


def test_core_imports_without_pytest(tmp_path):
    """``odqa_core.testing`` needs pytest (the ``odqa[testing]`` extra); the core, the registry and the CLI do not."""
    check = textwrap.dedent(
        """
        import sys

        class NoPytest:
            def find_spec(self, name, path=None, target=None):
                if name == "pytest" or name.startswith(("pytest.", "_pytest")):
                    raise ImportError("pytest is not installed")

        sys.meta_path.insert(0, NoPytest())
        import odqa_core
        from odqa_core import plugins
        from odqa_core._cli import cli
        plugins.load_all()
        try:
            import odqa_core.testing
        except ImportError as exc:
            print(exc)
        """
    )
    environ = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARIABLES}
    # the outside test plugin is built on odqa_core.testing, as plugin tests are; every other plugin loads
    environ["ODQA_BLOCK_PLUGINS"] = "example"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=environ, check=True)
    assert out.stderr == ""
    assert "pip install 'odqa[testing]'" in out.stdout
