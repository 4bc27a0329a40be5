"""What a run shows while it trains: the start summary and the progress bar.

The start of a run on one screen: data, model, schedule, precision, device, run directory.

One progress bar for the whole run, so its ETA is the run's, not the epoch's.

Lightning's bars restart every epoch; this one counts optimizer steps from the
first to the last (`trainer.estimated_stepping_batches`: max_epochs or max_steps),
showing the epoch and the loss beside it. Validation passes (the online probe)
get no bar of their own: they are short and would break the single line.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from simclr.config.schema import DataConfig, RunConfig
from simclr.training.nonfinite import logs_this_step

log = logging.getLogger(__name__)


class RunSummary(Callback):
    """Logs what is about to be trained, once, when training starts (rank 0)."""

    def __init__(self, cfg: RunConfig, run_dir: str, n_train: int, n_classes: int | None) -> None:
        self.cfg, self.run_dir, self.n_train, self.n_classes = cfg, run_dir, n_train, n_classes

    def lines(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[str]:
        cfg = self.cfg
        params = sum(p.numel() for p in pl_module.parameters()) / 1e6
        encoder = (
            f"timm {cfg.encoder.timm_name}"
            if cfg.encoder.arch == "timm"
            else f"{cfg.encoder.arch} ({cfg.encoder.stem} stem)"
        )
        classes = f", {self.n_classes} classes" if self.n_classes else ""
        steps = trainer.estimated_stepping_batches
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "-"
        evaluation = (
            f"{', '.join(cfg.eval.evaluators)} at "
            f"{', '.join(f'{f * 100:g}%' for f in cfg.eval.fractions)} of the labels"
            if cfg.eval.enabled
            else "none (eval=none)"
        )
        return [
            f"run       {self.run_dir}",
            f"data      {cfg.data.name}: {self.n_train:,} images{classes}, {_sizes(cfg.data)}, "
            f"batch {cfg.data.batch_size} x {trainer.world_size} process(es)",
            f"model     {encoder}, {params:.1f} M parameters with head {cfg.head.version} "
            f"({cfg.head.output_dim}-d), NT-Xent temperature {cfg.loss.temperature:g}",
            f"schedule  {cfg.optim.name} lr {cfg.optim.lr:g} ({cfg.optim.lr_scaling} scaling), "
            + (
                f"{epochs} epochs = {int(steps):,} steps"
                if math.isfinite(steps)
                else "no step limit"
            )
            + (f", budget {cfg.trainer.max_time}" if cfg.trainer.max_time else ""),
            f"device    {trainer.strategy.root_device.type}, precision {trainer.precision}",
            *step_lines(getattr(pl_module, "step_choice", None)),
            f"then      evaluation: {evaluation}",
        ]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            log.info("\n".join(self.lines(trainer, pl_module)))


def step_lines(choice: Any) -> list[str]:
    """The start summary's lines on the step (a StepChoice, simclr/config/step.py): compiled
    or not, where views are made and JPEGs decoded, each with its reason."""
    if choice is None:
        return []
    compiled = "compiled in the first step" if choice.compile else "not compiled"
    return [
        f"step      {compiled} ({choice.compile_reason})",
        f"views     on {choice.views} ({choice.views_reason}); JPEG decode on "
        f"{choice.decode} ({choice.decode_reason})",
    ]


class RunProgressBar(TQDMProgressBar):
    """A TQDMProgressBar over the run's steps."""

    def __init__(self) -> None:
        super().__init__(refresh_rate=1, leave=True)

    def on_train_start(self, trainer: pl.Trainer, *_: Any) -> None:
        total = trainer.estimated_stepping_batches
        self.train_progress_bar = Tqdm(
            desc="pretraining",
            total=int(total) if total != float("inf") else None,
            initial=trainer.global_step,  # a resumed run starts part-way
            position=0,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stderr,  # stdout keeps the results only
            smoothing=0.1,
            unit="step",
        )

    # The online probe's validation passes: no bar of their own.
    def on_validation_start(self, *_: Any) -> None:
        pass

    def on_validation_batch_start(self, *_: Any, **__: Any) -> None:
        pass

    def on_validation_batch_end(self, *_: Any, **__: Any) -> None:
        pass

    def on_validation_end(self, *_: Any) -> None:
        pass

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        pass  # the bar runs on across epochs

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any
    ) -> None:
        bar = self.train_progress_bar
        bar.n = trainer.global_step
        if not logs_this_step(trainer):
            bar.refresh()  # the loss shown is read (a device sync) at logging steps only
            return
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        bar.set_postfix(
            {
                "epoch": f"{trainer.current_epoch + 1}/{epochs}",
                **self.get_metrics(trainer, pl_module),
            },
            refresh=True,
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """The loss only (Lightning's default lists every logged value), read from the
        trainer's metrics: the module does not log it to the bar (see `log_loss`)."""
        shown = ("train/loss_step", "train/loss_epoch")
        metrics = trainer.callback_metrics
        return {k.split("/")[-1]: float(metrics[k]) for k in shown if k in metrics}


def _sizes(data: DataConfig) -> str:
    """The view size, or its growth under progressive resizing (simclr/data/resolution.py)."""
    start = data.start_size
    if start is None or start >= data.image_size:
        return f"{data.image_size} px"
    share = f"{data.full_size_share * 100:g}%"
    return (
        f"views {start} -> {data.image_size} px (the last {share} of the run at {data.image_size})"
    )
