"""Nothing a user already has is changed: run directories are checked before Hydra writes.

Each case runs the console script in this process and asserts exit 2, one error
line naming the directory, and that every file that existed before (`.hydra/`
included) is unchanged and nothing was added.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from simclr.console import evaluate as eval_cli
from simclr.console import pretrain
from simclr.runs.output import claim_new
from simclr.runs.rundir import RunDir
from tests.support.cli_harness import (
    assert_one_line_error,
    assert_unchanged,
    run_cli,
    snapshot,
    tiny_run,
)

TINY = tiny_run()


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _refused(capfd, main, program: str, argv: list[str], root: Path, *named: str) -> None:
    before, paths = snapshot(root), _files(root)
    result = run_cli(main, program, argv, capfd)
    assert_one_line_error(result, program, *named)
    assert_unchanged(before)
    assert _files(root) == paths, sorted(map(str, _files(root) - paths))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, shared_labeled_folder) -> Path:
    """A finished `eval=none` run, with its .hydra/ record."""
    run = tmp_path_factory.mktemp("finished") / "run"
    argv = [*TINY, f"data.root={shared_labeled_folder}", f"hydra.run.dir={run}"]
    result = subprocess.run(
        [str(Path(os.sys.executable).with_name("simclr-pretrain")), *argv],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert RunDir(run).pretrain_done.is_file() and (run / ".hydra" / "config.yaml").is_file()
    return run


def test_a_finished_run_keeps_its_hydra_record(finished_run, shared_labeled_folder, capfd):
    argv = [*TINY, "optim.lr=0.5", f"data.root={shared_labeled_folder}"]
    _refused(
        capfd, pretrain.cli, "simclr-pretrain", [*argv, f"hydra.run.dir={finished_run}"],
        finished_run, str(finished_run), "finished run",
    )  # fmt: skip


def test_resume_auto_on_a_finished_run_adds_no_error_file(
    finished_run, shared_labeled_folder, capfd
):
    argv = [
        *TINY,
        "resume=auto",
        f"data.root={shared_labeled_folder}",
        f"hydra.run.dir={finished_run}",
    ]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, finished_run, "finished run")
    assert not RunDir(finished_run).error_file.exists()


def test_eval_into_the_training_run_is_refused(finished_run, capfd):
    argv = [f"checkpoint={finished_run}", f"hydra.run.dir={finished_run}"]
    _refused(
        capfd, eval_cli.cli, "simclr-eval", argv, finished_run, str(finished_run), "already holds"
    )


def test_a_run_in_progress_is_refused_naming_its_process(tmp_path, labeled_folder, capfd):
    run = tmp_path / "run"
    run.mkdir()
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": "now", "command": "x"}
    RunDir(run).lock.write_text(json.dumps(holder))
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}", "resume=auto"]
    _refused(
        capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, "in progress", f"pid {os.getpid()}"
    )


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_stale_lock_is_explained_and_resume_auto_takes_it_over(tmp_path, labeled_folder, capfd):
    run = tmp_path / "run"
    run.mkdir()
    dead = _dead_pid()
    holder = {"pid": dead, "host": socket.gethostname(), "started": "then", "command": "x"}
    RunDir(run).lock.write_text(json.dumps(holder))
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}"]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, "stale lock", f"pid {dead}")

    result = run_cli(pretrain.cli, "simclr-pretrain", [*argv, "resume=auto"], capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert RunDir(run).last_checkpoint.is_file() and not RunDir(run).lock.exists()


def test_a_directory_with_other_files_is_refused(tmp_path, labeled_folder, capfd):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "notes.txt").write_text("the user's own notes\n")
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}"]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, str(run), "notes.txt")


def test_a_sweep_into_an_earlier_sweep_is_refused(tmp_path, labeled_folder, capfd):
    sweep = tmp_path / "sweep"
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "0" / "report.json").write_text("{}")
    argv = [
        "-m",
        *TINY,
        "optim.lr=0.1,0.2",
        f"data.root={labeled_folder}",
        f"hydra.sweep.dir={sweep}",
    ]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, str(sweep), "a sweep")


def test_a_sweep_with_a_failed_job_exits_2(tmp_path, labeled_folder, capfd):
    sweep = tmp_path / "sweep"
    # 36 training images: batch 8 trains, batch 64 is "fewer than one batch" at run time.
    argv = [
        "-m",
        *TINY,
        "data.batch_size=8,64",
        f"data.root={labeled_folder}",
        f"hydra.sweep.dir={sweep}",
    ]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 2, result.stderr[-2000:]
    assert RunDir(sweep / "0").last_checkpoint.is_file()
    assert "fewer than one batch" in RunDir(sweep / "1").error_file.read_text()
    assert "1 job(s) of the sweep failed: 1" in result.stderr


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    first = claim_new(tmp_path / "12-00-00", "first")
    second = claim_new(tmp_path / "12-00-00", "second")
    assert first.run.path != second.run.path
    assert first.run.lock.is_file() and second.run.lock.is_file()
    assert second.run.path.name == "12-00-00-2"
    first.discard(), second.discard()
    assert list(tmp_path.iterdir()) == []


def test_default_eval_directory_is_inside_the_run_and_leaves_its_report(
    finished_run, capfd, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    before = snapshot(finished_run)
    tiny_eval = [
        "eval.evaluators=[knn]",
        "eval.fractions=[1.0]",
        "eval.seeds_full=1",
        "eval.baselines=[]",
    ]
    result = run_cli(eval_cli.cli, "simclr-eval", [f"checkpoint={finished_run}", *tiny_eval], capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert_unchanged(before)
    (made,) = RunDir(finished_run).evaluations.iterdir()
    assert (made / "report.json").is_file()
    assert not (tmp_path / "outputs").exists()
