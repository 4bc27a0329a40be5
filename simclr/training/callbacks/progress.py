"""The start of a run on one screen: data, model, schedule, precision, device, run directory.

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

log = logging.getLogger(__name__)


class RunSummary(Callback):
    """Logs what is about to be trained, once, when training starts (rank 0)."""

    def __init__(self, cfg: Any, run_dir: str, n_train: int, n_classes: int | None) -> None:
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
            f"data      {cfg.data.name}: {self.n_train:,} images{classes}, {cfg.data.image_size} px, "
            f"batch {cfg.data.batch_size} x {trainer.world_size} process(es)",
            f"model     {encoder}, {params:.1f} M parameters with head {cfg.head.version} "
            f"({cfg.head.output_dim}-d), NT-Xent temperature {cfg.loss.temperature:g}",
            f"schedule  {cfg.optim.name} lr {cfg.optim.lr:g} ({cfg.optim.lr_scaling} scaling), "
            + (
                f"{epochs} epochs = {int(steps):,} steps"
                if math.isfinite(steps)
                else "no step limit"
            )
            + (f", budget {cfg.trainer.max_time}" if cfg.trainer.get("max_time") else ""),
            f"device    {trainer.strategy.root_device.type}, precision {trainer.precision}",
            f"then      evaluation: {evaluation}",
        ]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            log.info("\n".join(self.lines(trainer, pl_module)))


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
        """The loss only (Lightning's default lists every logged value)."""
        items = super().get_metrics(trainer, pl_module)
        return {k.split("/")[-1]: v for k, v in items.items() if k.startswith("train/loss")}
