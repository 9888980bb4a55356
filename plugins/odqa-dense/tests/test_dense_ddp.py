"""DPR training under torch DDP on CPU (gloo, 2 processes, the micro BERT): the all-gathered loss and gradients
equal one process's on the same global batch, ``odqa train dpr --nproc 2`` trains, checkpoints and resumes, and bad
``--nproc`` input or a failing rank is a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ddp_step import one_step
from dense_testdata import assert_same_weights
from odqa_dense import distributed
from odqa_dense.launch import free_port, rank_environment

from odqa_core.testing import assert_one_line_error, run_cli

STEP_SCRIPT = Path(__file__).with_name("ddp_step.py")


def run_ranks(args: list[str], ranks: int, timeout: float = 120) -> None:
    """``python ddp_step.py ARGS`` as ``ranks`` gloo ranks on loopback; every rank must succeed."""
    port = free_port()
    procs = []
    try:
        for r in range(ranks):
            env = rank_environment(r, ranks, port)
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(STEP_SCRIPT), *args], env=env, stderr=subprocess.PIPE, text=True
                )
            )
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
    finally:
        for p in procs:  # a failed or timed-out rank must not outlive the test (nor its pipe stay open)
            if p.poll() is None:
                p.kill()
            p.communicate()


def load_step(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "step.safetensors"))


# --- the all-gathered loss ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_rank", [3])
def test_two_ranks_give_one_process_loss_and_gradients(micro_checkpoint, tmp_path, per_rank):
    single, ranked = tmp_path / "single", tmp_path / "ranked"
    single.mkdir()
    ranked.mkdir()
    one_step(micro_checkpoint, single, per_rank)  # one process, the global batch of 2 × per_rank examples
    run_ranks([micro_checkpoint, str(ranked), str(per_rank)], ranks=2)
    a, b = load_step(single), load_step(ranked)
    assert sorted(a) == sorted(b)
    assert len(a) > 10  # the loss and the encoder's gradients
    assert abs(float(a["loss"]) - float(b["loss"])) <= 1e-5
    largest = 0.0
    for name in a:
        np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=0, atol=1e-5, err_msg=name)
        largest = max(largest, float(a[name].abs().max()))
    assert largest > 1e-3  # gradients that are not all (near) zero: the comparison means something


# --- batches ------------------------------------------------------------------------------------------------------


def test_global_batches_split_every_epoch_evenly_and_pad_the_remainder():
    order = np.random.default_rng(0).permutation(11)
    one = distributed.global_batches(order, 4, 1)
    assert [b.tolist() for b in one] == [order[:4].tolist(), order[4:8].tolist(), order[8:].tolist()]
    two = distributed.global_batches(order, 2, 2)  # 2 ranks × 2 = one process's batch of 4
    assert [len(b) for b in two] == [4, 4, 4]
    assert two[0].tolist() == order[:4].tolist() and two[1].tolist() == order[4:8].tolist()
    # 3 examples left for 2 ranks: 2 each, padded with the epoch's first example.
    assert two[2].tolist() == [*order[8:].tolist(), order[0]]
    assert sorted(np.concatenate(two).tolist()[:11]) == list(range(11))  # nothing dropped


# --- odqa train dpr --nproc ---------------------------------------------------------------------------------------

DDP_TRAINING = (
    "train dpr --bootstrap micro --vocab-size 1000 --device cpu --pooling mean --passage-max-length 64 "
    "--query-max-length 32 --batch-size 8 --eval-k 1,5 --select acc@5 --ict-epochs 0 --lr 3e-3 --seed 0"
)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """Two epochs with ``--nproc 2`` (hard negatives mined by BM25, as by default)."""
    whole = tmp_path_factory.mktemp("ddp") / "whole"
    result = run_cli(f"{DDP_TRAINING} --epochs 2 --nproc 2 --output {whole}")
    assert result.exit_code == 0, result.output
    return whole


def test_nproc_2_trains_and_rank_0_writes_checkpoints(whole_run):
    report = json.loads((whole_run / "report.json").read_text())
    assert [row["epoch"] for row in report["epochs"]] == [1, 2]
    assert report["config"]["hard_negatives"] == 1
    assert all(np.isfinite(row["loss"]) for row in report["epochs"])
    assert (whole_run / "best" / "manifest.json").is_file() and (whole_run / "last" / "manifest.json").is_file()
    assert report["epochs"][1]["loss"] < report["epochs"][0]["loss"]


def test_nproc_2_resumes_a_stopped_run_to_the_same_weights(whole_run, tmp_path):
    """A run stopped (SIGTERM) after epoch 1 resumes under --nproc 2 and ends with the weights of the
    uninterrupted run: rank 0's last/ (weights and optimizer state) restored on every rank."""
    stopped = tmp_path / "stopped"
    odqa = Path(sys.executable).with_name("odqa")
    launcher = subprocess.Popen(
        [str(odqa), *f"{DDP_TRAINING} --epochs 2 --nproc 2 --output {stopped}".split()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        report_file = stopped / "report.json"
        deadline = time.monotonic() + 60
        while not report_file.is_file() and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        launcher.terminate()  # after epoch 1's checkpoint, during epoch 2's training
        _, err = launcher.communicate(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 143, err
    assert [row["epoch"] for row in json.loads(report_file.read_text())["epochs"]] == [1]

    result = run_cli(f"{DDP_TRAINING} --epochs 2 --nproc 2 --output {stopped} --resume")
    assert result.exit_code == 0, result.output
    resumed = json.loads(report_file.read_text())
    assert [row["epoch"] for row in resumed["epochs"]] == [1, 2]
    assert_same_weights(stopped / "last", whole_run / "last")


@pytest.mark.parametrize(
    "nproc, contains",
    [("0", "nproc must be a positive number of processes"), ("999", "more than the")],
)
def test_bad_nproc_is_a_usage_error(tmp_path, nproc, contains):
    output = tmp_path / "run"
    result = run_cli(f"{DDP_TRAINING} --nproc {nproc} --output {output}")
    assert_one_line_error(result, code=2, contains=contains)
    assert not output.exists()


def test_a_failing_rank_is_one_error_naming_it(tmp_path):
    output = tmp_path / "run"
    output.mkdir()
    (output / "stranger.txt").write_text("not a training's")
    result = run_cli(f"{DDP_TRAINING} --nproc 2 --output {output}")
    assert_one_line_error(result, code=2, contains="rank 0 of 2 failed: output directory")
    assert sorted(p.name for p in output.iterdir()) == ["stranger.txt"]


def test_nproc_2_trains_folds(tmp_path):
    output = tmp_path / "folds"
    result = run_cli(f"{DDP_TRAINING} --epochs 1 --folds 2 --nproc 2 --hard-negatives 0 --output {output}")
    assert result.exit_code == 0, result.output
    report = json.loads((output / "report.json").read_text())
    assert [fold["fold"] for fold in report["folds"]] == [1, 2]
    assert (output / "best" / "manifest.json").is_file()


def test_module_entry_point_reports_bad_input_in_one_line(tmp_path):
    """``python -m odqa_dense`` (what torchrun runs): ``odqa train dpr``'s options, one ``Error:`` line naming the
    rank on bad input."""
    output = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "odqa_dense", "--nproc", "0", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: rank 0: nproc must be a positive number of processes, got 0"
    ]
    assert not output.exists()


def test_a_rank_whose_peer_never_comes_stops_at_the_timeout(tmp_path):
    """torchrun's rank 0 of 2 without rank 1: the process group's timeout (ODQA_DIST_TIMEOUT) ends the wait with
    one error line naming the rank, and nothing is written."""
    output = tmp_path / "run"
    env = {**rank_environment(0, 2, free_port()), "ODQA_DIST_TIMEOUT": "2"}
    args = DDP_TRAINING.removeprefix("train dpr ").split()
    result = subprocess.run(
        [sys.executable, "-m", "odqa_dense", *args, "--hard-negatives", "0", "--output", str(output)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: rank 0: "), result.stderr
    assert not output.exists()
