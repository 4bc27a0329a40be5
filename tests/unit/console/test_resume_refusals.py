"""`resume=auto` continues or refuses, never silently restarts.

Each refusal: exit 2, one line saying what is there and what to do (never advice
that would write into a directory holding anything but a run's own files), and
the directory byte-for-byte as before.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from simclr.console import pretrain
from simclr.runs.rundir import RunDir
from tests.support.cli_harness import assert_one_line_error, run_cli, tiny_run
from tests.support.snapshot import Snapshot

TINY = tiny_run()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, shared_labeled_folder) -> Path:
    """A run killed after the last checkpoint of its 2 epochs (no finished marker)."""
    run = tmp_path_factory.mktemp("interrupted") / "run"
    argv = [*tiny_run(epochs=2), f"data.root={shared_labeled_folder}", f"hydra.run.dir={run}"]
    _in_process(argv)
    RunDir(run).pretrain_done.unlink()
    return run


def _in_process(argv: list[str]) -> None:
    import sys
    from unittest import mock

    with mock.patch.object(sys, "argv", ["simclr-pretrain", *argv]):
        try:
            pretrain.cli()
        except SystemExit as stop:
            assert stop.code in (0, None), stop.code


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _resume(run: Path, folder: Path, *extra: str) -> list[str]:
    return [*tiny_run(epochs=2), f"data.root={folder}", f"hydra.run.dir={run}", *extra]


def _refused(capfd, argv: list[str], root: Path, *named: str) -> str:
    before = Snapshot(root)
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", *named)
    before.assert_untouched()
    return result.error_lines[0]


def test_progress_without_a_last_checkpoint_is_refused(
    interrupted, tmp_path, shared_labeled_folder, capfd
):
    run = _copy(interrupted, tmp_path)
    RunDir(run).last_checkpoint.unlink()  # best.ckpt and the logs remain
    argv = _resume(run, shared_labeled_folder, "resume=auto")
    line = _refused(
        capfd, argv, tmp_path, "checkpoints/best.ckpt", "logs", "no checkpoints/last.ckpt"
    )
    assert "choose a new hydra.run.dir" in line


def test_checkpoints_that_is_a_file_is_refused(interrupted, tmp_path, shared_labeled_folder, capfd):
    run = _copy(interrupted, tmp_path)
    shutil.rmtree(RunDir(run).checkpoints)
    RunDir(run).checkpoints.write_text("not a directory\n")
    argv = _resume(run, shared_labeled_folder, "resume=auto")
    _refused(capfd, argv, tmp_path, str(RunDir(run).checkpoints), "a file")


@pytest.mark.parametrize("resume", [[], ["resume=auto"]])
def test_a_users_directory_is_refused_without_advice_to_write_into_it(
    resume, tmp_path, labeled_folder, capfd
):
    mine = tmp_path / "mine"
    (mine / "logs").mkdir(parents=True)
    (mine / "logs" / "metrics.csv").write_text("step,loss\n0,1.0\n")  # the user's own logs
    (mine / "notes.md").write_text("# notes\n")
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={mine}", *resume]
    line = _refused(capfd, argv, tmp_path, str(mine))
    assert "resume=auto to" not in line, line


def test_a_run_that_died_before_its_first_checkpoint_may_be_restarted(
    tmp_path, labeled_folder, capfd
):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (run / "pretrain.log").write_text("[...] started\n")
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}"]
    _refused(capfd, argv, tmp_path, "stopped before its first checkpoint", "resume=auto")
    result = run_cli(pretrain.cli, "simclr-pretrain", [*argv, "resume=auto"], capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert RunDir(run).last_checkpoint.is_file()


def test_max_epochs_below_the_checkpoint_is_one_line(
    interrupted, tmp_path, shared_labeled_folder, capfd
):
    run = _copy(interrupted, tmp_path)
    argv = [*_resume(run, shared_labeled_folder, "resume=auto"), "trainer.max_epochs=1"]
    _refused(capfd, argv, tmp_path, "has trained 2 epochs", "trainer.max_epochs=1")


@pytest.fixture
def warnings_to_the_console():
    """Let the job route warnings to the console as it does outside pytest.

    `logging.captureWarnings(True)` does nothing once an earlier in-process command
    called it; undone here, the job's call takes effect inside this test's warning capture.
    """
    logging.captureWarnings(False)
    yield
    logging.captureWarnings(False)


def test_another_data_root_or_image_size_is_warned_like_the_batch_size(
    interrupted, tmp_path, shared_labeled_folder, capfd, warnings_to_the_console
):
    run = _copy(interrupted, tmp_path)
    moved = Path(shutil.copytree(shared_labeled_folder, tmp_path / "moved"))
    argv = [*tiny_run(epochs=3), f"data.root={moved}", f"hydra.run.dir={run}", "resume=auto"]
    result = run_cli(pretrain.cli, "simclr-pretrain", [*argv, "data.image_size=8"], capfd)
    assert result.code == 0, result.stderr[-2000:]
    (warning,) = [line for line in result.stderr.splitlines() if "changed settings" in line]
    assert f"data.root='{shared_labeled_folder}' there, '{moved}' now" in warning
    assert "data.image_size=16 there, 8 now" in warning


def test_the_api_refuses_progress_without_a_last_checkpoint(
    interrupted, tmp_path, shared_labeled_folder
):
    import simclr
    from simclr.errors import OutputError

    run = _copy(interrupted, tmp_path)
    RunDir(run).last_checkpoint.unlink()
    before = Snapshot(tmp_path)
    with pytest.raises(OutputError, match=r"no checkpoints/last\.ckpt"):
        simclr.pretrain([*TINY, f"data.root={shared_labeled_folder}", "resume=auto"], run_dir=run)
    before.assert_untouched()
