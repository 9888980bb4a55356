"""Writing outputs: devices and FIFOs written in place, "-" as standard output, symlinks, a run's output directory
as one unit, abandoned temporaries, interrupted swaps and commits, and one writer at a time."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from odqa_core import outputs
from odqa_core.errors import OutputInUseError, UsageError
from odqa_core.outputs import (
    atomic_write_lines,
    atomic_write_text,
    output_lock,
    output_mode,
    recover_output_dir,
    write_output_dir,
)
from odqa_core.storage import open_store, write_store
from odqa_core.testing import assert_one_line_error, output_held_elsewhere


def _toy_store(path, generation):
    with write_store(path, kind="retriever", name="toy", format_version=1, config={}) as writer:
        writer.save_array("values", np.arange(3))
        writer.params["generation"] = generation


def _names(directory):
    return sorted(p.name for p in Path(directory).iterdir())


def _killed(script: str, *args: object) -> None:
    """Run ``script`` in a fresh Python that SIGKILLs itself part-way (a crash no ``finally`` sees)."""
    code = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom odqa_core import outputs, storage\n"
        + textwrap.dedent(script)
    )
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr


# --- files: devices, FIFOs, "-", symlinks ---------------------------------------------------------------------------


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader waiting, so the writer's open does not block
    try:
        atomic_write_text(fifo, "one line\n")
        received = os.read(reader, 1000)
    finally:
        os.close(reader)
    assert received == b"one line\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _names(tmp_path) == ["pipe"]


def test_a_character_device_is_written_in_place(tmp_path, monkeypatch):
    """Decided from the file's type: a (pretend) character device gets the same inode written, never a rename."""
    device = tmp_path / "device"
    device.write_text("")
    inode = device.stat().st_ino
    real_stat = os.stat

    def stat_as_device(path, *args, **kwargs):
        result = real_stat(path, *args, **kwargs)
        if Path(path) == device:
            return os.stat_result((stat.S_IFCHR | 0o666, *tuple(result)[1:]))
        return result

    monkeypatch.setattr(outputs.os, "stat", stat_as_device)
    assert output_mode(device) == "in place"
    with atomic_write_lines(device) as handle:
        handle.write("written through\n")
    monkeypatch.undo()
    assert device.stat().st_ino == inode and device.read_text() == "written through\n"
    assert _names(tmp_path) == ["device"]


def test_dev_null_stays_a_device():
    # The decision is checked first: the write below happens only once it is known to go through, never a rename.
    assert output_mode("/dev/null") == "in place"
    atomic_write_text("/dev/null", "nothing\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_dev_full_reports_the_full_disk_and_stays_a_device():
    assert output_mode("/dev/full") == "in place"
    with pytest.raises(OSError):
        atomic_write_text("/dev/full", "x" * 100_000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_directories_block_devices_and_sockets_are_refused(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
    import socket

    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(UsageError, match="socket"):
            atomic_write_text(sock_path, "x")


def test_a_symlink_keeps_pointing_at_its_replaced_target(tmp_path):
    target = tmp_path / "runs" / "2024.jsonl"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target)
    atomic_write_text(link, "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"
    assert _names(tmp_path) == ["latest.jsonl", "runs"] and _names(target.parent) == ["2024.jsonl"]


def test_a_symlinked_store_is_replaced_at_its_target(tmp_path):
    _toy_store(tmp_path / "real", 1)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    _toy_store(tmp_path / "link", 2)
    assert (tmp_path / "link").is_symlink()
    assert open_store(tmp_path / "real").params == {"generation": 2}
    assert _names(tmp_path) == ["link", "real"]


def test_dash_writes_to_standard_output(capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with atomic_write_lines("-") as handle:
        handle.write("한국어 line\n")
    assert capfd.readouterr().out == "한국어 line\n"
    assert not (tmp_path / "-").exists()


def test_retrieve_output_dash_prints_the_run(odqa, fake_plugins, toy_files, tmp_path, monkeypatch):
    corpus, questions = toy_files
    assert odqa(f"index --retriever fake --corpus {corpus} --index-dir {tmp_path / 'i'}").exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = odqa(f"retrieve --index-dir {tmp_path / 'i'} --questions {questions} --top-k 2 --output -")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(len(row["hits"]) == 2 for row in rows)
    assert "standard output" in result.stderr
    assert not (tmp_path / "-").exists()


# --- abandoned temporaries and interrupted swaps --------------------------------------------------------------------


def test_a_killed_file_write_leaves_a_temporary_the_next_write_removes(tmp_path):
    target = tmp_path / "run.jsonl"
    _killed(
        """
        with outputs.atomic_write_lines(sys.argv[1]) as handle:
            handle.write("half")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """,
        target,
    )
    [left] = _names(tmp_path)
    assert left.startswith(".run.jsonl.tmp-")
    mine = tmp_path / f".run.jsonl.tmp-{os.getpid()}-0123abcd"  # a live writer's (this process): not touched
    mine.write_text("being written")
    atomic_write_text(target, "whole\n")
    assert _names(tmp_path) == [mine.name, "run.jsonl"] and target.read_text() == "whole\n"


def test_a_killed_store_write_leaves_a_temporary_the_next_write_removes(tmp_path):
    _toy_store(tmp_path / "s", 1)
    _killed(
        """
        import numpy as np
        with storage.write_store(sys.argv[1], kind="retriever", name="toy", format_version=1, config={}) as w:
            w.save_array("values", np.zeros(5))
            os.kill(os.getpid(), signal.SIGKILL)
        """,
        tmp_path / "s",
    )
    assert any(n.startswith(".s.tmp-") for n in _names(tmp_path))
    assert open_store(tmp_path / "s").params == {"generation": 1}
    _toy_store(tmp_path / "s", 2)
    assert _names(tmp_path) == ["s"]  # no temporaries, and the lock file is gone too


def test_a_store_swap_killed_between_its_renames_is_put_back(tmp_path):
    """Killed after the old version moved aside and before the new one moved in: no store at the path at all."""
    _toy_store(tmp_path / "s", 1)
    _killed(
        """
        import numpy as np
        real_replace, calls = os.replace, []

        def replace(source, target):
            calls.append(source)
            if len(calls) == 2:  # the new version about to move in
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(source, target)

        with storage.write_store(sys.argv[1], kind="retriever", name="toy", format_version=1, config={}) as w:
            w.save_array("values", np.zeros(5))
            os.replace = replace
        """,
        tmp_path / "s",
    )
    assert not (tmp_path / "s").exists()
    assert any(n.startswith(".s.old-") for n in _names(tmp_path))
    assert open_store(tmp_path / "s").params == {"generation": 1}  # a reader puts it back
    assert _names(tmp_path) == ["s"]


# --- the output directory of a run ----------------------------------------------------------------------------------


def _run(odqa, toy_files, out, *extra):
    corpus, questions = toy_files
    return odqa(f"run --corpus {corpus} --questions {questions} --top-k 3 --output-dir {out} " + " ".join(extra))


@pytest.fixture
def fakes(fake_plugins):
    yield


def test_a_rerun_leaves_nothing_of_the_previous_run(odqa, fakes, toy_files, tmp_path):
    out = tmp_path / "out"
    first = _run(odqa, toy_files, out, "--retriever fake --reader fake-reader")
    assert first.exit_code == 0, first.output
    assert {"predictions.json", "nbest_predictions.json"} <= set(_names(out))
    assert _names(out / "index") == ["fake"]
    second = _run(odqa, toy_files, out, "--retriever example-title")
    assert second.exit_code == 0, second.output
    assert _names(out) == ["index", "odqa-output.json", "run.jsonl", "summary.json"]
    assert _names(out / "index") == ["example-title"]
    assert json.loads((out / "summary.json").read_text())["retrievers"] == ["example-title"]
    manifest = json.loads((out / "odqa-output.json").read_text())
    assert manifest["entries"] == ["index", "run.jsonl", "summary.json"]
    assert _names(tmp_path) == ["corpus.jsonl", "out", "questions.jsonl"]


def test_a_failure_while_writing_leaves_the_previous_run_whole(odqa, fakes, toy_files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert _run(odqa, toy_files, out, "--retriever fake").exit_code == 0
    before = {name: (out / name).read_bytes() for name in ("run.jsonl", "summary.json", "odqa-output.json")}
    from odqa_core import pipeline

    real_write = pipeline.atomic_write_text

    def disk_full_at_summary(path, text):
        if Path(path).name == "summary.json":
            raise OSError(28, "No space left on device", str(path))
        real_write(path, text)

    monkeypatch.setattr(pipeline, "atomic_write_text", disk_full_at_summary)
    result = _run(odqa, toy_files, out, "--retriever fake --top-k 2")
    assert_one_line_error(result, contains="No space left on device")
    assert {name: (out / name).read_bytes() for name in before} == before
    assert _names(out) == ["index", "odqa-output.json", "run.jsonl", "summary.json"]
    assert _names(tmp_path) == ["corpus.jsonl", "out", "questions.jsonl"]


def test_an_unrelated_directory_is_refused_unless_overwrite(odqa, fakes, toy_files, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "summary.json").write_text('{"my": "numbers"}')
    result = _run(odqa, toy_files, mine, "--retriever fake")
    assert_one_line_error(result, code=2, contains="is not an odqa output")
    assert "--overwrite" in result.output
    assert _names(mine) == ["notes.txt", "summary.json"]
    assert (mine / "summary.json").read_text() == '{"my": "numbers"}'

    result = _run(odqa, toy_files, mine, "--retriever fake --overwrite")
    assert result.exit_code == 0, result.output
    assert (mine / "notes.txt").read_text() == "keep me"  # the others are kept
    assert json.loads((mine / "summary.json").read_text())["retrievers"] == ["fake"]  # same names replaced
    # From now on it is an odqa output: a rerun needs no --overwrite, and leaves the other files alone.
    result = _run(odqa, toy_files, mine, "--retriever example-title")
    assert result.exit_code == 0, result.output
    assert (mine / "notes.txt").read_text() == "keep me"
    assert _names(mine / "index") == ["example-title"]


def test_a_run_directory_from_before_manifests_is_still_ours(odqa, fakes, toy_files, tmp_path):
    out = tmp_path / "out"
    assert _run(odqa, toy_files, out, "--retriever fake --reader fake-reader").exit_code == 0
    (out / "odqa-output.json").unlink()  # as an older odqa left it, with a sweep's cell.json beside
    (out / "cell.json").write_text("{}")
    result = _run(odqa, toy_files, out, "--retriever fake")
    assert result.exit_code == 0, result.output
    assert _names(out) == ["cell.json", "index", "odqa-output.json", "run.jsonl", "summary.json"]


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(UsageError, match="exists and is not a directory"), write_output_dir(tmp_path / "out"):
        pass
    assert (tmp_path / "out").read_text() == "a file"


def _committed(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in out.iterdir() if p.is_file()}


@pytest.mark.parametrize("killed_at", [1, 3, 4, 6])
def test_a_commit_killed_part_way_is_completed_by_the_next_writer(tmp_path, killed_at):
    out = tmp_path / "out"
    with write_output_dir(out) as staging:
        for name in ("run.jsonl", "summary.json", "predictions.json"):
            (staging / name).write_text(f"A {name}")
    (out / "notes.txt").write_text("not the run's")
    # B writes two entries: 3 renames move A's out, 2 move B's in, the last one B's manifest.
    _killed(
        """
        real_replace, calls = os.replace, []

        def replace(source, target):
            calls.append(source)
            if len(calls) == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(source, target)

        with outputs.write_output_dir(sys.argv[1]) as staging:
            for name in ("run.jsonl", "summary.json"):
                (staging / name).write_text(f"B {name}")
            os.replace = replace
        """,
        out,
        killed_at,
    )
    recover_output_dir(out)
    assert _committed(out) == {
        "run.jsonl": "B run.jsonl",
        "summary.json": "B summary.json",
        "notes.txt": "not the run's",
        "odqa-output.json": (out / "odqa-output.json").read_text(),
    }
    assert json.loads((out / "odqa-output.json").read_text())["entries"] == ["run.jsonl", "summary.json"]
    assert _names(tmp_path) == ["out"]


def test_a_run_killed_before_its_commit_leaves_the_previous_one(tmp_path):
    out = tmp_path / "out"
    with write_output_dir(out) as staging:
        (staging / "run.jsonl").write_text("A")
    _killed(
        """
        with outputs.write_output_dir(sys.argv[1]) as staging:
            (staging / "run.jsonl").write_text("B")
            os.kill(os.getpid(), signal.SIGKILL)
        """,
        out,
    )
    assert any(n.startswith(".odqa-output.tmp-") for n in _names(out))
    recover_output_dir(out)
    assert _names(out) == ["odqa-output.json", "run.jsonl"] and (out / "run.jsonl").read_text() == "A"


# --- one writer at a time -------------------------------------------------------------------------------------------


def test_a_held_lock_is_a_one_line_error_naming_the_holder(tmp_path):
    import fcntl

    with open(tmp_path / ".s.lock", "w") as held:  # as another process holding it would
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        with pytest.raises(OutputInUseError, match=r"is being written by another odqa process \(pid 4242\)"):
            _toy_store(tmp_path / "s", 1)
    assert not (tmp_path / "s").exists()


def test_locks_are_reentrant_within_a_process(tmp_path):
    with output_lock(tmp_path / "s"), output_lock(tmp_path / "s"):
        _toy_store(tmp_path / "s", 1)
    assert _names(tmp_path) == ["s"]


def test_a_second_odqa_index_into_the_same_directory_is_refused(odqa, fakes, toy_files, tmp_path):
    corpus, _ = toy_files
    index_dir = tmp_path / "idx"
    with output_held_elsewhere(index_dir) as pid:
        result = odqa(f"index --retriever fake --corpus {corpus} --index-dir {index_dir}")
        assert_one_line_error(result, contains=f"is being written by another odqa process (pid {pid})")
        result = _run(odqa, toy_files, index_dir, "--retriever fake")
        assert_one_line_error(result, contains="is being written by another odqa process")
    assert odqa(f"index --retriever fake --corpus {corpus} --index-dir {index_dir}").exit_code == 0
    assert open_store(index_dir).manifest["name"] == "fake"
    assert _names(tmp_path) == ["corpus.jsonl", "idx", "questions.jsonl"]
