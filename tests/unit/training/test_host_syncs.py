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

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl

import simclr.training.trainer as trainer_module
from simclr.console import pretrain
from tests.support.cli_harness import run_cli, tiny_run
from tests.support.host_syncs import HostReads, Step, StepWindows

EVERY = 3  # trainer.log_every_n_steps
PINNED = ("trainer.log_every_n_steps", "trainer.enable_progress_bar", "trainer.precision")


def _argv(data: Path, run: Path, epochs: int, batches: int, *extra: str) -> list[str]:
    # tiny_run pins float32, contiguous memory, no bar and logging every step: undone here.
    base = [a for a in tiny_run(epochs, batches) if not a.startswith((*PINNED, "encoder.ch"))]
    return [
        *base,
        f"data.root={data}",
        f"hydra.run.dir={run}",
        "data.batch_size=4",
        f"trainer.log_every_n_steps={EVERY}",
        "trainer.max_time=1h",  # the budget's Timer and schedule planner too
        *extra,
    ]


def _steps(
    data: Path,
    run: Path,
    capfd: Any,
    monkeypatch: Any,
    epochs: int,
    batches: int,
    overrides: tuple[str, ...] = (),
    callbacks: tuple[pl.Callback, ...] = (),
) -> list[Step]:
    """The counted steps of a run of `epochs` x `batches` with `overrides` and `callbacks`."""
    windows = StepWindows(HostReads())
    build = trainer_module.build_callbacks
    monkeypatch.setattr(
        trainer_module,
        "build_callbacks",
        lambda *a, **k: [windows, *build(*a, **k), *callbacks],
    )
    argv = _argv(data, run, epochs, batches, *overrides)
    with windows:
        result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    return windows.steps


def _unlogged_reads(steps: list[Step]) -> list[str]:
    return [
        f"step {s.global_step}: {op}\n{where}"
        for s in steps
        if not s.logged
        for op, where in s.reads
    ]


@pytest.mark.parametrize("views", ["auto", "gpu"])
def test_steps_read_nothing_on_the_host_between_logging_steps(
    labeled_folder, tmp_path, capfd, monkeypatch, views
):
    # views=gpu: kornia's colour steps on the CPU (its random draws stay host tensors).
    run = tmp_path / "run"
    steps = _steps(labeled_folder, run, capfd, monkeypatch, 2, 4, (f"augment.backend={views}",))
    assert [s.global_step for s in steps] == list(range(8))
    # Lightning logs after every EVERY-th optimizer step.
    assert [s.logged for s in steps] == [(s.global_step + 1) % EVERY == 0 for s in steps]
    problems = _unlogged_reads(steps)
    assert not problems, "\n".join(problems)
    # The counter sees reads: Lightning turns the logged loss into a number at logging steps.
    assert all(s.reads for s in steps if s.logged)


class ReadsTheLoss(pl.Callback):
    """The bug this test is for: a `.item()` of the loss at every step."""

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, *args: Any) -> None:
        outputs["loss"].item()


def test_a_read_at_every_step_is_caught(labeled_folder, tmp_path, capfd, monkeypatch):
    run = tmp_path / "run"
    steps = _steps(labeled_folder, run, capfd, monkeypatch, 1, 2, callbacks=(ReadsTheLoss(),))
    problems = _unlogged_reads(steps)
    assert len(problems) == 2 and all("aten._local_scalar_dense" in p for p in problems)
