"""Progress on long work (odqa_core.progress): a bar on a terminal, a status line every interval without one,
silence with ODQA_PROGRESS=0; and the stage timings that keep model training apart (in the same module)."""

from __future__ import annotations

import time

import pytest

import odqa_core.progress as progress_module
from odqa_core.errors import UsageError
from odqa_core.progress import StageTimer, StatusLine, format_duration, progress, training


@pytest.fixture
def no_terminal(monkeypatch):
    """ODQA_PROGRESS unset (capsys's stderr is not a terminal): progress() decides by itself."""
    monkeypatch.delenv("ODQA_PROGRESS", raising=False)
    monkeypatch.delenv("ODQA_PROGRESS_INTERVAL", raising=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_each_interval_prints_a_status_line(no_terminal, monkeypatch, capsys):
    monkeypatch.setenv("ODQA_PROGRESS_INTERVAL", "1e-9")
    with progress(4, "reading", "passage") as bar:
        assert isinstance(bar, StatusLine)
        for done in range(1, 5):
            bar.set_postfix_str(f"{done}/4 questions, {10 * done:,} windows")
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("reading: 1/4 passages, 1/4 questions, 10 windows, ") and "elapsed" in lines[0]
    assert lines[-1].startswith("reading: 4/4 passages, 4/4 questions, 40 windows, done in ")
    assert "\r" not in "".join(lines)  # plain lines for a log, no bar redrawn in place


def test_a_status_line_comes_even_while_one_step_lasts(no_terminal, monkeypatch, capsys):
    monkeypatch.setenv("ODQA_PROGRESS_INTERVAL", "0.01")
    printed = ""
    with progress(3, "encode passages", "p") as bar:
        deadline = time.monotonic() + 60
        while "encode passages: 0/3 p" not in printed and time.monotonic() < deadline:
            time.sleep(0.01)  # one long step: no update() call, the line comes from the status thread
            printed += capsys.readouterr().err
        bar.update(3)
    assert "encode passages: 0/3 p, 0s elapsed" in printed


def test_short_work_prints_nothing_and_odqa_progress_0_silences_all(no_terminal, monkeypatch, capsys):
    with progress(2, "quick", "query") as bar:  # shorter than the default 30 s
        bar.update(2)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("ODQA_PROGRESS", "0")
    monkeypatch.setenv("ODQA_PROGRESS_INTERVAL", "1e-9")
    with progress(2, "silenced", "query") as bar:
        assert not isinstance(bar, StatusLine)
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_odqa_progress_1_forces_the_bar_and_disable_wins(no_terminal, monkeypatch, capsys):
    monkeypatch.setenv("ODQA_PROGRESS", "1")
    with progress(2, "forced", "query") as bar:
        assert not isinstance(bar, StatusLine)
        bar.update(2)
    assert "forced" in capsys.readouterr().err
    monkeypatch.delenv("ODQA_PROGRESS")
    monkeypatch.setenv("ODQA_PROGRESS_INTERVAL", "1e-9")
    with progress(2, "nested", "query", disable=True) as bar:  # a bar inside another says nothing
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_the_line_gives_elapsed_time_and_an_estimate_of_the_rest(capsys):
    clock = FakeClock()
    status = StatusLine(10, "epoch 1/3", "batch", interval=30, clock=clock)
    clock.now = 20.0
    status.update(2)
    assert capsys.readouterr().err == ""  # not yet 30 s
    clock.now = 60.0
    status.set_postfix(loss="1.234")
    status.update(2)
    assert capsys.readouterr().err == "epoch 1/3: 4/10 batches, loss=1.234, 1m00s elapsed, ~1m30s left\n"
    clock.now = 200.0
    status.update(6)
    status.close()
    status.close()  # closing twice says it once
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "epoch 1/3: 10/10 batches, loss=1.234, 3m20s elapsed",
        "epoch 1/3: 10/10 batches, loss=1.234, done in 3m20s",
    ]


def test_counts_without_a_total_and_fractions():
    clock = FakeClock()
    status = StatusLine(None, "", "query", interval=1e9, clock=clock)
    status.update(1234)
    assert status.line() == "working: 1,234 queries, 0s elapsed"
    fractional = StatusLine(2, "reading", "passage", interval=1e9, clock=clock)
    fractional.update(0.25)
    assert fractional.line().startswith("reading: 0.2/2 passages")
    status.close()
    fractional.close()


@pytest.mark.parametrize("value", ["abc", "0", "-5", "inf", "nan"])
def test_a_bad_interval_is_a_one_line_usage_error(no_terminal, monkeypatch, value):
    monkeypatch.setenv("ODQA_PROGRESS_INTERVAL", value)
    with pytest.raises(UsageError, match="ODQA_PROGRESS_INTERVAL must be a positive number of seconds"):
        progress(1, "x")


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 61, 3599, 3600, 7500)] == [
        "0s",
        "59s",
        "1m01s",
        "59m59s",
        "1h00m",
        "2h05m",
    ]


def test_training_inside_a_stage_is_counted_apart_once(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    timer = StageTimer()
    with timer.stage("index_s"):
        clock.now = 1.0
        with training():
            clock.now = 2.0
            with training():  # nested (a demo model training another on the way): counted once
                clock.now = 3.0
            clock.now = 4.0
        clock.now = 10.0
    with timer.stage("read_s"):
        clock.now = 12.5
    assert timer.as_dict() == {"train_s": 3.0, "index_s": 7.0, "read_s": 2.5}
