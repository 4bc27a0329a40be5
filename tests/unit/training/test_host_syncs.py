"""No training step reads a device value on the host, except at logging steps.

A real `simclr-pretrain` run (in this process, on the default path: progress bar,
CSV logger, online probe, representation monitors, kNN monitor, a time budget,
checkpoints, `auto` precision and views) is watched by tests/support/host_syncs.py:
every `.item()`, `bool()`, `float()` of a device-derived tensor and every boolean mask
index from `on_train_batch_start` until Lightning has written the step's metrics is
recorded. Steps where Lightning logs (`trainer.log_every_n_steps`) may read: that is
when it turns the logged loss into a number. Every other step must not.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as pl

from tests.support.host_syncs import CpuReadWindows, pretrain_counted, unlogged_reads

EVERY = 3  # trainer.log_every_n_steps


@pytest.mark.parametrize("views", ["auto", "gpu"])
def test_steps_read_nothing_on_the_host_between_logging_steps(
    labeled_folder, tmp_path, capfd, monkeypatch, views
):
    # views=gpu: kornia's colour steps on the CPU (its random draws stay host tensors).
    steps = pretrain_counted(
        CpuReadWindows(),
        labeled_folder,
        tmp_path / "run",
        capfd,
        monkeypatch,
        epochs=2,
        batches=4,
        every=EVERY,
        overrides=(f"augment.backend={views}",),
    )
    assert [s.global_step for s in steps] == list(range(8))
    # Lightning logs after every EVERY-th optimizer step.
    assert [s.logged for s in steps] == [(s.global_step + 1) % EVERY == 0 for s in steps]
    problems = unlogged_reads(steps)
    assert not problems, "\n".join(problems)
    # The counter sees reads: Lightning turns the logged loss into a number at logging steps.
    assert all(s.reads for s in steps if s.logged)


class ReadsTheLoss(pl.Callback):
    """The bug this test is for: a `.item()` of the loss at every step."""

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, *args: Any) -> None:
        outputs["loss"].item()


def test_a_read_at_every_step_is_caught(labeled_folder, tmp_path, capfd, monkeypatch):
    steps = pretrain_counted(
        CpuReadWindows(),
        labeled_folder,
        tmp_path / "run",
        capfd,
        monkeypatch,
        epochs=1,
        batches=2,
        every=EVERY,
        callbacks=(ReadsTheLoss(),),
    )
    problems = unlogged_reads(steps)
    assert len(problems) == 2 and all("aten._local_scalar_dense" in p for p in problems)
