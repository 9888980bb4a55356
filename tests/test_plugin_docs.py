"""docs/plugins.md is runnable: its files make a plugin package that installs, works through ``odqa`` and passes
the documented contract tests; and it is complete: every hook of ``odqa_core.hookspecs`` is documented on the page
and implemented by its example plugin, whose result these tests check.

Every fenced block whose header names a file (```` ```python title="odqa_ngram/retriever.py" ````) is written out
as that file; the package is installed once with pip (no network: ``--no-deps --no-build-isolation``, the build
backend the page's ``pyproject.toml`` names must be importable); then the page's ``try-it.sh`` commands run, each as
a real ``odqa`` process, and pytest runs the page's ``tests/test_contracts.py`` against the installed package.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from odqa_core import data, hookspecs
from odqa_core.testing import write_toy_files

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<body>.*?)^```$', re.MULTILINE | re.DOTALL)
CODE_BLOCK = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
#: Every hook odqa calls: the functions pluggy's ``hookspec`` marker tagged in odqa_core.hookspecs.
HOOKS = sorted(name for name, value in vars(hookspecs).items() if hasattr(value, "odqa_spec"))
#: What ``odqa plugins`` lists for the example plugin, by kind: the components of each ``register_<kind>`` hook.
LISTED = {
    "retrievers": "ngram, ngram-title",
    "fusers": "weighted-sum",
    "readers": "overlap",
    "postprocessors": "unquote",
    "analyzers": "ngram",
    "trainers": "overlap",
}
#: The commands the example plugin adds (``register_commands``) that the page's try-it.sh runs.
COMMANDS = ("odqa corpus-stats", "odqa train overlap")

#: What the tests set themselves: the session's other ODQA_* variables (its cache directory) pass through.
PLUGIN_VARIABLES = ("ODQA_LOAD_PLUGINS", "ODQA_BLOCK_PLUGINS", "ODQA_STRICT_PLUGINS")


def documented_files() -> dict[str, str]:
    files = {m["path"]: m["body"] for m in FILE_BLOCK.finditer(DOC.read_text(encoding="utf-8"))}
    for path in files:
        assert not Path(path).is_absolute() and ".." not in Path(path).parts, path
    return files


def odqa_command() -> list[str]:
    """The installed ``odqa`` console script (what users run), else the same entry point through Python."""
    script = Path(sys.executable).with_name("odqa")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from odqa_core._cli import cli; cli(prog_name='odqa')"]


def environment(site: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in PLUGIN_VARIABLES and k != "PYTHONPATH"}
    # Only the example plugin, and strict: a plugin that fails to load must fail the test, not warn.
    environ.update(
        PYTHONPATH=str(site),
        ODQA_LOAD_PLUGINS="ngram",
        ODQA_STRICT_PLUGINS="1",
        ODQA_PROGRESS="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return environ


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """``(package source, site)``: the page's files written out and installed into ``site``."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.fail("the documented pyproject.toml builds with setuptools: install it in the test environment")
    root = tmp_path_factory.mktemp("plugin-docs")
    source = root / "odqa-ngram"
    for path, body in documented_files().items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(body, encoding="utf-8")
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"]
    options = ["--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(source)]
    result = subprocess.run([*pip, *options], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    return source, site


def test_the_page_has_every_kind_and_a_complete_pyproject():
    files = documented_files()
    kinds = {"retriever", "fuser", "reader", "postprocessor", "analyzer", "trainer", "commands", "plugin"}
    assert {f"odqa_ngram/{kind}.py" for kind in kinds} <= set(files)
    pyproject = files["pyproject.toml"]
    for section in ("[build-system]", "[project]", "[project.entry-points.odqa]", "[tool.setuptools]"):
        assert section in pyproject


def test_the_documented_commands_run(installed, tmp_path):
    _, site = installed
    write_toy_files(tmp_path)  # the corpus.jsonl and questions.jsonl the page's index/retrieve lines read
    commands = [line for line in documented_files()["try-it.sh"].splitlines() if line.strip()]
    outputs = {}
    for line in commands:
        result = subprocess.run(
            [*odqa_command(), *shlex.split(line)[1:]],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=environment(site),
            timeout=300,
        )
        assert result.returncode == 0 and "Warning" not in result.stderr, f"{line}\n{result.stderr}"
        outputs[line.split(" -")[0]] = result.stdout

    listed = outputs["odqa plugins"]
    assert "ngram (odqa-ngram 0.1.0)" in listed
    for kind, names in LISTED.items():
        assert f"  {kind}: {names}" in listed
    assert f"  commands: {', '.join(sorted(COMMANDS))}" in listed
    assert set(COMMANDS) <= set(outputs), "the plugin's commands ran"
    sample_size = len(data.load_corpus(data.sample_corpus_path()))
    assert outputs["odqa corpus-stats"].startswith(f"{sample_size} documents, ")

    model = json.loads((tmp_path / "runs" / "overlap" / "model.json").read_text())
    assert isinstance(model["answer_words"], int) and model["answer_words"] >= 1
    questions = data.load_questions(data.sample_questions_path())

    summary = json.loads((tmp_path / "out" / "ngram" / "summary.json").read_text())
    stages = (summary["retrievers"], summary["reader"], summary["postprocessors"])
    assert stages == (["ngram"], "overlap", ["unquote"])
    assert summary["components"]["overlap"]["model"] == "runs/overlap"
    assert {"exact_match", "f1"} <= set(summary["reader_metrics"])
    nbest = json.loads((tmp_path / "out" / "ngram" / "nbest_predictions.json").read_text())
    assert set(nbest) == {q.id for q in questions}
    answers = [entry["text"] for entries in nbest.values() for entry in entries]
    assert answers and all(len(answer.split()) <= model["answer_words"] for answer in answers), "the trained length"
    assert not any(answer[0] in "\"'(.,!?" or answer[-1] in "\"').,!?" for answer in answers if answer), "unquote"

    fused = json.loads((tmp_path / "out" / "fused" / "summary.json").read_text())
    assert (fused["fuser"], fused["retrievers"]) == ("weighted-sum", ["ngram", "ngram-title"])
    assert fused["components"]["weighted-sum"]["weights"] == {"ngram-title": 0.5}

    manifest = json.loads((tmp_path / "idx" / "ngram" / "manifest.json").read_text())
    assert manifest["name"] == "ngram" and manifest["config"]["n"] == 3
    rankings = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert len(rankings) == 3


def test_the_documented_contract_tests_pass(installed):
    source, site = installed
    # Run from outside the source tree, so the tests import the installed package, not the files beside them.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(source / "tests")],
        capture_output=True,
        text=True,
        cwd=site.parent,
        env=environment(site),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed[1]) >= 50 and "skipped" not in result.stdout, result.stdout[-2000:]


# --- the page covers every hook (datasette's meta-tests) ------------------------------------------------------------


def hook_implementations(source: str) -> set[str]:
    """The module-level functions of ``source`` decorated with ``odqa_core.hookimpl`` (or a bare ``hookimpl``)."""
    return {
        node.name
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(decorator).split(".")[-1] == "hookimpl" for decorator in node.decorator_list)
    }


def test_the_hookspecs_are_found():
    assert {"register_retrievers", "register_commands"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    """A heading of docs/plugins.md names the hook, or one of its code examples implements it."""
    page = DOC.read_text(encoding="utf-8")
    headings = [line for line in CODE_BLOCK.sub("", page).splitlines() if line.startswith("#") and hook in line]
    examples = [block for block in CODE_BLOCK.findall(page) if re.search(rf"^def {hook}\(", block, re.MULTILINE)]
    assert headings or examples, f"{hook} has no heading and no code example in {DOC.name}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_implemented_by_the_example_plugin_and_checked(hook):
    """The example plugin, which test_the_documented_commands_run installs and runs, implements the hook, and that
    test checks what the hook registers: its components in ``odqa plugins``, or its commands run."""
    assert hook in hook_implementations(documented_files()["odqa_ngram/plugin.py"]), (
        f"the example plugin of {DOC.name} does not implement {hook}"
    )
    checked = {f"register_{kind}" for kind in LISTED} | ({"register_commands"} if COMMANDS else set())
    assert hook in checked, f"{hook}: add what it registers to LISTED (or COMMANDS)"
