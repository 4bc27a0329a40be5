"""Atomic checkpoint saves: an interrupted save leaves the previous checkpoint loadable."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from simclr.errors import CheckpointError, OutputError
from simclr.runs import checkpoints as checkpoint_io
from simclr.runs.checkpoints import AtomicCheckpointIO, atomic_torch_save, temp_prefix
from simclr.runs.rundir import RunDir
from tests.conftest import REPO

# Saves version 1, then starts saving version 2 but stops half-way through writing
# it (saying so in a file) until it is killed.
KILLED_SAVE = """
import io, sys, time
from pathlib import Path
import torch
from simclr.runs.checkpoints import atomic_torch_save

target, marker = Path(sys.argv[1]), Path(sys.argv[2])
atomic_torch_save({"version": 1, "w": torch.ones(50_000)}, target)
real_save = torch.save


def half_then_hang(obj, f):
    buffer = io.BytesIO()
    real_save(obj, buffer)
    f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    f.flush()
    marker.write_text("writing")
    time.sleep(600)


torch.save = half_then_hang
atomic_torch_save({"version": 2, "w": torch.zeros(50_000)}, target)
"""


def _temps(target: Path) -> list[Path]:
    return sorted(target.parent.glob(temp_prefix(target) + "*"))


def test_kill_9_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    target, marker = tmp_path / "last.ckpt", tmp_path / "writing"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(target), str(marker)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), process.communicate()[1][-2000:]
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    # The half-written version 2 is a hidden temporary file; last.ckpt is version 1.
    assert len(_temps(target)) == 1
    kept = torch.load(target, weights_only=True)
    assert kept["version"] == 1 and torch.equal(kept["w"], torch.ones(50_000))
    # The next save replaces it and clears the leftover.
    atomic_torch_save({"version": 3}, target)
    assert torch.load(target, weights_only=True)["version"] == 3 and not _temps(target)


def test_an_exception_during_a_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"version": 1}, target)
    before = target.read_bytes()

    def interrupted(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM turned into an exception

    monkeypatch.setattr(checkpoint_io.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"version": 2}, target)
    assert target.read_bytes() == before and not _temps(target)


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"version": 1}, target)
    before = target.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_io.os, "fsync", full)
    with pytest.raises(OutputError) as err:
        atomic_torch_save({"version": 2}, target)
    message = str(err.value)
    assert "\n" not in message and str(target) in message
    assert "No space left on device" in message and "intact" in message
    assert target.read_bytes() == before and not _temps(target)


def test_lightning_plugin_round_trip_is_weights_only(tmp_path):
    io_plugin = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io_plugin.save_checkpoint({"state_dict": {"w": torch.arange(3)}, "epoch": 2}, path)
    assert path.stat().st_mode & 0o777 == 0o644
    loaded = io_plugin.load_checkpoint(path)
    assert loaded["epoch"] == 2 and torch.equal(loaded["state_dict"]["w"], torch.arange(3))
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "hook": print}, buffer)  # needs code (a global) to load
    (tmp_path / "code.ckpt").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="refused"):
        io_plugin.load_checkpoint(tmp_path / "code.ckpt")


def test_the_trainer_writes_through_the_atomic_plugin(compose_config, tmp_path):
    from simclr.training.trainer import build_trainer

    cfg = compose_config("trainer.logger=none", "trainer.enable_progress_bar=false")
    trainer = build_trainer(cfg, RunDir(tmp_path), callbacks=[])
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
