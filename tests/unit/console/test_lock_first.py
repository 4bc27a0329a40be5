"""The lock is the first write: a refused command writes nothing anywhere.

The race tests start two `simclr-pretrain` into one new directory at the same
instant (processes forked from a fork server that imported the toolkit once, so
each starts in a fraction of a second; released together by a barrier), many
times: exactly one runs, the other exits 2 having written nothing, and the
running one's files are all its own (its seed in its config and checkpoint).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
import torch

from simclr.console import distill, pretrain
from simclr.runs.rundir import RunDir
from tests.support.cli_harness import assert_one_line_error, run_cli, tiny_run
from tests.support.snapshot import Snapshot

TINY = tiny_run()
REFUSALS = ("is in use by a run in progress", "holds a finished run")


def _child(argv: list[str], barrier, log: str) -> None:
    """One command, its output in `log`, started when its rival is ready too."""
    out = open(log, "w", buffering=1)  # noqa: SIM115 - the process ends below
    os.dup2(out.fileno(), 1), os.dup2(out.fileno(), 2)
    sys.stdout = sys.stderr = out
    sys.argv = ["simclr-pretrain", *argv]
    code = 0
    try:
        barrier.wait(60)  # a rival that never comes breaks it: this child reports 99
        pretrain.cli()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 99
    out.flush()
    os._exit(code)


# Imported once by the fork server (a fork of this process after it ran torch could
# hang in torch's thread pool; the server never runs any).
PRELOAD = ["torch", "pytorch_lightning", "simclr.console.pretrain", "simclr.jobs.pretrain"]


def _race(argvs: list[list[str]], logs: list[Path]) -> list[tuple[int, str]]:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([*PRELOAD, __name__])
    barrier = ctx.Barrier(len(argvs))
    procs = [
        ctx.Process(target=_child, args=(a, barrier, str(g)))
        for a, g in zip(argvs, logs, strict=True)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    return [(p.exitcode or 0, g.read_text()) for p, g in zip(procs, logs, strict=True)]


def _solo_layout(tmp_path: Path, folder: Path, capfd) -> set[str]:
    """What one run alone leaves in its directory."""
    run = tmp_path / "solo"
    argv = [*TINY, f"data.root={folder}", f"hydra.run.dir={run}", "seed=1"]
    assert run_cli(pretrain.cli, "simclr-pretrain", argv, capfd).code == 0
    return {str(p.relative_to(run)) for p in run.rglob("*")}


def _check_pair(run: Path, results: list[tuple[int, str]], seeds: list[int], layout: set[str]):
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], [r[1][-1500:] for r in results]
    winner = seeds[[code for code, _ in results].index(0)]
    _, loser_output = results[[code for code, _ in results].index(2)]
    lines = [line for line in loser_output.splitlines() if ": error: " in line]
    assert len(lines) == 1 and any(r in lines[0] for r in REFUSALS), loser_output[-1500:]
    assert "Traceback" not in loser_output and str(run) in lines[0]
    # Nothing of the loser's: the layout of a run alone, the winner's config and weights.
    assert {str(p.relative_to(run)) for p in run.rglob("*")} == layout
    assert f"seed={winner}" in (run / ".hydra" / "overrides.yaml").read_text()
    ckpt = torch.load(RunDir(run).last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["config"]["seed"] == winner


def _pairs(tmp_path: Path, folder: Path, n: int, capfd) -> None:
    layout = _solo_layout(tmp_path, folder, capfd)
    for i in range(n):
        run = tmp_path / f"race-{i}" / "run"
        seeds = [2 * i + 1, 2 * i + 2]
        argvs = [[*TINY, f"data.root={folder}", f"hydra.run.dir={run}", f"seed={s}"] for s in seeds]
        logs = [tmp_path / f"race-{i}-{s}.log" for s in seeds]
        _check_pair(run, _race(argvs, logs), seeds, layout)


def test_two_commands_into_one_new_directory_three_pairs(tmp_path, shared_labeled_folder, capfd):
    _pairs(tmp_path, shared_labeled_folder, 3, capfd)


@pytest.mark.slow  # about a minute on two shared CPU cores
def test_two_commands_into_one_new_directory_twenty_pairs(tmp_path, shared_labeled_folder, capfd):
    _pairs(tmp_path, shared_labeled_folder, 20, capfd)


def test_two_resumes_of_one_run_at_once(tmp_path, shared_labeled_folder, capfd):
    """One continues the run; the other writes nothing (no error.txt into the live run)."""
    first = tmp_path / "first"
    argv = [*TINY, f"data.root={shared_labeled_folder}", f"hydra.run.dir={first}"]
    assert run_cli(pretrain.cli, "simclr-pretrain", argv, capfd).code == 0
    RunDir(first).pretrain_done.unlink()  # as if killed after its checkpoint
    for i in range(2):
        run = tmp_path / f"pair-{i}"
        shutil.copytree(first, run)
        base = [*TINY, "trainer.max_epochs=2", "resume=auto"]
        argvs = [[*base, f"data.root={shared_labeled_folder}", f"hydra.run.dir={run}"]] * 2
        results = _race(argvs, [tmp_path / f"pair-{i}-{k}.log" for k in range(2)])
        assert sorted(code for code, _ in results) == [0, 2], [r[1][-1500:] for r in results]
        assert not RunDir(run).error_file.exists() and not RunDir(run).lock.exists()
        assert RunDir(run).pretrain_done.is_file()


# --- refusals under the lock write nothing --------------------------------------------


def test_resume_from_an_empty_last_checkpoint_rewrites_no_hydra_record(
    tmp_path, labeled_folder, capfd
):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    before = Snapshot(tmp_path)
    argv = [*TINY, "resume=auto", "seed=5", f"data.root={labeled_folder}", f"hydra.run.dir={run}"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", "last.ckpt")
    before.assert_untouched()


def test_distill_into_a_finished_pretraining_run_rewrites_nothing(tmp_path, capfd):
    run = tmp_path / "pretrained"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (run / "pretrain_done").write_text("12.0\n")
    teacher = tmp_path / "classifier.ckpt"
    teacher.write_bytes(b"a teacher")
    before = Snapshot(tmp_path)
    argv = [f"distill.teacher={teacher}", f"hydra.run.dir={run}"]
    result = run_cli(distill.cli, "simclr-distill", argv, capfd)
    assert_one_line_error(result, "simclr-distill", str(run), "already holds")
    before.assert_untouched()


def test_a_live_lock_refuses_before_anything_is_written(tmp_path, labeled_folder, capfd):
    run = tmp_path / "run"
    run.mkdir()
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": "now", "command": "x"}
    RunDir(run).lock.write_text(json.dumps(holder))
    before = Snapshot(tmp_path)
    for command, main, argv in (
        ("simclr-pretrain", pretrain.cli, [*TINY, f"data.root={labeled_folder}"]),
        ("simclr-distill", distill.cli, [f"distill.teacher={labeled_folder}"]),
    ):
        result = run_cli(main, command, [*argv, f"hydra.run.dir={run}"], capfd)
        assert_one_line_error(result, command, "in use by a run in progress")
        before.assert_untouched()
