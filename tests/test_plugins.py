from __future__ import annotations

import pytest

import odqa_core
from odqa_core import plugins
from odqa_core.errors import PluginError, UnknownComponentError, UsageError
from odqa_core.testing import FakeRetriever, registered_plugin


def test_fakes_are_registered_under_their_names(fake_plugins):
    assert plugins.get_component_class("retriever", "fake") is FakeRetriever
    assert set(plugins.registry("fuser")) >= {"fake-sum"}
    assert set(plugins.registry("reader")) >= {"fake-reader"}
    assert plugins.registry("retriever")["fake"].plugin == "odqa-fakes"


def test_unknown_name_lists_available_and_points_to_plugins_command(fake_plugins):
    with pytest.raises(UnknownComponentError) as info:
        plugins.get_component_class("retriever", "bm26")
    message = str(info.value)
    assert "'bm26' is not available" in message
    assert "fake" in message and "odqa plugins" in message


def test_duplicate_name_names_both_plugins_when_used(fake_plugins):
    class Again:
        @odqa_core.hookimpl
        def register_retrievers(self, register):
            register(FakeRetriever)

    with registered_plugin(Again(), "second-plugin"):
        assert "fake" in plugins.registry("retriever")  # registering twice is not an error by itself
        with pytest.raises(PluginError) as info:
            plugins.get_component_class("retriever", "fake")
        assert "odqa-fakes" in str(info.value) and "second-plugin" in str(info.value)


def test_registering_a_non_component_skips_the_plugin_with_a_warning(fake_plugins):
    class Bad:
        @odqa_core.hookimpl
        def register_readers(self, register):
            register(dict)

    with (
        pytest.warns(plugins.PluginWarning, match="plugin 'bad-plugin' failed to load and is skipped"),
        registered_plugin(Bad(), "bad-plugin"),
    ):
        assert set(plugins.registry("reader")) >= {"fake-reader"}
        row = {row["name"]: row for row in plugins.list_plugins()}["bad-plugin"]
        assert "registered <class 'dict'>, which is not a Reader subclass" in row["error"]


def test_misspelled_hook_is_caught_by_check_pending(fresh_plugins):
    class Misspelled:
        @odqa_core.hookimpl
        def register_retreivers(self, register):
            pass

    pm = plugins.get_plugin_manager()
    pm.register(Misspelled(), name="typo-plugin")
    import pluggy

    with pytest.raises(pluggy.PluginValidationError, match="register_retreivers"):
        pm.check_pending()


def test_load_plugins_env_restricts_loading(fresh_plugins, monkeypatch):
    monkeypatch.setenv("ODQA_LOAD_PLUGINS", "")
    assert plugins.list_plugins() == []
    assert plugins.registry("retriever") == {}


def test_block_plugins_env_skips_a_plugin(fresh_plugins, monkeypatch):
    names = {row["name"] for row in plugins.list_plugins()}
    assert "example" in names, "the outside test plugin (tests/outside_plugin) must be installed"
    plugins.reset()
    monkeypatch.setenv("ODQA_BLOCK_PLUGINS", "example")
    assert "example" not in {row["name"] for row in plugins.list_plugins()}
    assert "example-title" not in plugins.registry("retriever")


def test_outside_plugin_found_through_entry_points(fresh_plugins):
    rows = {row["name"]: row for row in plugins.list_plugins()}
    assert rows["example"]["distribution"] == "odqa-example-plugin"
    assert rows["example"]["components"] == {"postprocessors": ["example-upper"], "retrievers": ["example-title"]}
    retriever = plugins.create("retriever", "example-title")
    retriever.index(list(odqa_core.testing.TOY_DOCUMENTS))
    results = retriever.search(["Busan"], 1)
    assert results.documents[results.indices[0, 0]].title == "Busan"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), [1.0, float("nan")]])
def test_every_component_refuses_non_finite_options(fake_plugins, value):
    """Options that never pass through -o parsing (sweep axes, tune grids, trainer settings) are checked too."""
    with pytest.raises(UsageError, match=r"retriever 'fake': option 'tokens' must be a finite number"):
        plugins.create("retriever", "fake", {"tokens": value})
