"""The start of a run on one screen: data, model, schedule, precision, device, run directory."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

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
            f"{epochs} epochs = {int(steps):,} steps"
            + (f", budget {cfg.trainer.max_time}" if cfg.trainer.get("max_time") else ""),
            f"device    {trainer.strategy.root_device.type}, precision {trainer.precision}",
            f"then      evaluation: {evaluation}",
        ]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            log.info("\n".join(self.lines(trainer, pl_module)))
