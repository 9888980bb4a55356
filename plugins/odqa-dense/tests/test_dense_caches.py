"""The demo-model and tokenizer caches: what a killed process left behind is removed by the next one."""

from __future__ import annotations

from odqa_dense import sample


def test_a_killed_demo_training_leaves_nothing_behind_the_next_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ODQA_CACHE_DIR", str(tmp_path))
    recipe = {"epochs": 1}
    target = tmp_path / "sample-models" / f"demo-{sample.sample_digest('demo', recipe)}"
    target.parent.mkdir(parents=True)
    killed = target.with_name(f".{target.name}.tmp-999999999-0123abcd")  # no process has this pid
    (killed / "best").mkdir(parents=True)

    def train(directory):
        (directory / "best").mkdir(parents=True)
        (directory / "best" / "manifest.json").write_text("{}")

    best = sample.cached_model("demo", recipe, train)
    assert best == target / "best" and (best / "manifest.json").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
