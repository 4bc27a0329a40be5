"""A NaN loss stops the run naming the step and the last good checkpoint, or is skipped."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from simclr.console import pretrain
from simclr.losses.ntxent import NTXentLoss
from simclr.training.module import SimCLRModule
from tests.support.cli_harness import (
    assert_one_line_error,
    assert_unchanged,
    run_cli,
    snapshot,
    tiny_run,
)

EPOCHS, BATCHES = 2, 3
NAN_AT_STEP = BATCHES + 1  # the second batch of the second epoch, after one checkpoint
RUN = tiny_run(EPOCHS, BATCHES)


@pytest.fixture
def nan_at_one_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss of training batch number NAN_AT_STEP (counted from 0) is NaN."""
    calls = {"n": 0}
    original = NTXentLoss.forward

    def forward(self: NTXentLoss, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        loss = original(self, z1, z2)
        calls["n"] += 1
        return loss * float("nan") if calls["n"] == NAN_AT_STEP + 1 else loss

    monkeypatch.setattr(NTXentLoss, "forward", forward)


def _argv(data: Path, run: Path, *extra: str) -> list[str]:
    return [*RUN, f"data.root={data}", f"hydra.run.dir={run}", *extra]


def test_nan_loss_stops_naming_the_step_and_the_last_checkpoint(
    labeled_folder, tmp_path, capfd, nan_at_one_step
):
    run = tmp_path / "run"
    result = run_cli(pretrain.cli, "simclr-pretrain", _argv(labeled_folder, run), capfd)
    last = run / "checkpoints" / "last.ckpt"
    assert_one_line_error(
        result, "simclr-pretrain", f"global step {NAN_AT_STEP}", "epoch 1", f"checkpoint: {last}"
    )
    # The checkpoint it names is the one of the first epoch, whole and loadable.
    ckpt = torch.load(last, weights_only=True)
    assert (ckpt["epoch"], ckpt["global_step"]) == (0, BATCHES)
    assert all(
        torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point()
    )


@pytest.mark.parametrize(
    "every,found",
    [
        (3, 5),  # read at the next logging step (global step 5)
        (4, 6),  # no logging step after it in the epoch: read before the epoch's checkpoint
    ],
)
def test_a_nan_between_logging_steps_is_found_later_and_named_where_it_happened(
    labeled_folder, tmp_path, capfd, nan_at_one_step, every, found
):
    # The loss is read on the host at logging steps only (no device sync in other steps).
    run = tmp_path / "run"
    argv = _argv(labeled_folder, run, f"trainer.log_every_n_steps={every}")
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    last = run / "checkpoints" / "last.ckpt"
    assert_one_line_error(
        result,
        "simclr-pretrain",
        f"loss is nan at global step {NAN_AT_STEP} (epoch 1, batch 1)",
        f"found at global step {found} (the loss is read every trainer.log_every_n_steps={every}",
        f"checkpoint: {last}",
    )
    # No checkpoint was written after the NaN: last.ckpt is still the first epoch's.
    ckpt = torch.load(last, weights_only=True)
    assert (ckpt["epoch"], ckpt["global_step"]) == (0, BATCHES)


def test_skip_nonfinite_skips_and_counts_the_step(labeled_folder, tmp_path, capfd, nan_at_one_step):
    run = tmp_path / "run"
    argv = _argv(labeled_folder, run, "loss.skip_nonfinite=true")
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    with (run / "logs" / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    # The skip was counted at its step; no NaN reached the log.
    counted = [
        (r["step"], r["train/skipped_nonfinite"]) for r in rows if r["train/skipped_nonfinite"]
    ]
    # (Lightning repeats a step metric on the next row until it is logged again.)
    assert counted[0] == (str(NAN_AT_STEP), "1.0") and {c for _, c in counted} == {"1.0"}
    losses = [float(r["train/loss_step"]) for r in rows if r["train/loss_step"]]
    assert losses and all(map(math.isfinite, losses))


def test_skipping_stops_once_the_weights_are_not_finite(
    labeled_folder, tmp_path, capfd, monkeypatch
):
    original = SimCLRModule.training_step

    def poisoned(self: SimCLRModule, batch: object, batch_idx: int) -> object:
        if self.global_step == NAN_AT_STEP:
            with torch.no_grad():
                next(self.head.parameters()).fill_(float("nan"))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SimCLRModule, "training_step", poisoned)
    run = tmp_path / "run"
    result = run_cli(
        pretrain.cli,
        "simclr-pretrain",
        _argv(labeled_folder, run, "loss.skip_nonfinite=true"),
        capfd,
    )
    before = snapshot(run / "checkpoints")
    assert_one_line_error(result, "simclr-pretrain", "weights are no longer finite", "last.ckpt")
    assert_unchanged(before)
