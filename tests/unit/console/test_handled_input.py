"""Inputs that are handled rather than refused, and output that cannot be written."""

from __future__ import annotations

import errno
import os

import pytest

from simclr.console import pretrain
from simclr.runs import checkpoints as checkpoint_io
from tests.support.cli_harness import assert_one_line_error, run_cli
from tests.unit.console.test_bad_input import TINY


def test_skip_leaves_out_a_truncated_jpeg_and_trains_on(tmp_path, labeled_folder, capfd):
    cut = labeled_folder / "train" / "dog" / "3.jpg"
    cut.write_bytes(cut.read_bytes()[:300])
    argv = [
        *TINY,
        f"data.root={labeled_folder}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "data.on_bad_image=skip",
    ]
    with pytest.warns(UserWarning, match=r"leaving out 1 unreadable file\(s\), e\.g\. .*3\.jpg"):
        result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_full_disk_while_checkpointing_is_one_line(tmp_path, labeled_folder, capfd, monkeypatch):
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_io.os, "fsync", full)
    run = tmp_path / "run"
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(
        result, "simclr-pretrain", str(run / "checkpoints" / "last.ckpt"), "No space left"
    )
    # No half-written file left behind: the run made nothing to keep, so all it made is gone.
    assert not run.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_dir_is_one_line(tmp_path, labeled_folder, capfd):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={locked}/run"]
    try:
        result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    finally:
        locked.chmod(0o755)
    assert_one_line_error(result, "simclr-pretrain", str(locked), "not writable")
