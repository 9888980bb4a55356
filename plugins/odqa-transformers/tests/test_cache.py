"""The cache directory and the bundled sample's demo models: trained once, reused, and what a killed process left
behind is removed by the next one."""

from __future__ import annotations

from pathlib import Path

import pytest
from odqa_transformers import cache


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ODQA_CACHE_DIR", str(tmp_path / "odqa"))
    assert cache.cache_dir() == tmp_path / "odqa"
    monkeypatch.delenv("ODQA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "odqa"


def test_a_demo_model_is_trained_once_and_its_recipe_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ODQA_CACHE_DIR", str(tmp_path))
    trained: list[Path] = []

    def train(directory):
        trained.append(directory)
        (directory / "best").mkdir(parents=True)
        (directory / "best" / "manifest.json").write_text("{}")

    first = cache.cached_model("demo", {"epochs": 1}, train)
    assert cache.cached_model("demo", {"epochs": 1}, train) == first and len(trained) == 1
    other = cache.cached_model("demo", {"epochs": 2}, train)  # another recipe: another model
    assert other != first and len(trained) == 2
    assert cache.sample_digest("demo", {"epochs": 1}) != cache.sample_digest("other", {"epochs": 1})


def test_a_killed_demo_training_leaves_nothing_behind_the_next_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ODQA_CACHE_DIR", str(tmp_path))
    recipe = {"epochs": 1}
    target = tmp_path / "sample-models" / f"demo-{cache.sample_digest('demo', recipe)}"
    target.parent.mkdir(parents=True)
    killed = target.with_name(f".{target.name}.tmp-999999999-0123abcd")  # no process has this pid
    (killed / "best").mkdir(parents=True)

    def train(directory):
        (directory / "best").mkdir(parents=True)
        (directory / "best" / "manifest.json").write_text("{}")

    best = cache.cached_model("demo", recipe, train)
    assert best == target / "best" and (best / "manifest.json").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_a_failed_demo_training_leaves_no_model(tmp_path, monkeypatch):
    monkeypatch.setenv("ODQA_CACHE_DIR", str(tmp_path))

    def train(directory):
        (directory / "best").mkdir(parents=True)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        cache.cached_model("demo", {}, train)
    assert list((tmp_path / "sample-models").iterdir()) == []
