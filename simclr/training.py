"""Building Lightning's Trainer, loggers and callbacks from the run config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import Logger, TensorBoardLogger

from simclr.callbacks.monitors import build_monitors, knn_monitor_enabled
from simclr.callbacks.online_probe import OnlineLinearProbe
from simclr.checkpoint_io import AtomicCheckpointIO
from simclr.resume import EpochSeeding, ResumableCSVLogger

CHECKPOINT_DIR = "checkpoints"


def build_loggers(cfg: Any, run_dir: Path, resume_step: int = 0) -> list[Logger] | bool:
    """CSV (default) or TensorBoard logs under `run_dir/logs`.

    A resumed run keeps the CSV rows logged before `resume_step`.
    """
    if cfg.trainer.logger == "none":
        return False
    if cfg.trainer.logger == "tensorboard":
        return [TensorBoardLogger(save_dir=str(run_dir), name="logs", version="")]
    return [ResumableCSVLogger(str(run_dir), keep_before_step=resume_step, name="logs", version="")]


def build_callbacks(
    cfg: Any, run_dir: Path, feature_dim: int, num_classes: int | None
) -> list[Callback]:
    """Checkpointing (last + best), per-epoch seeding, learning-rate logging, online probe,
    representation monitors."""
    probe = bool(cfg.online_probe.enabled) and bool(num_classes)
    monitor, mode = ("online_probe/val_acc", "max") if probe else ("train/loss_epoch", "min")
    directory, every = str(run_dir / CHECKPOINT_DIR), int(cfg.trainer.checkpoint_every_n_epochs)
    callbacks: list[Callback] = [
        # last.ckpt, rewritten every `every` epochs: what resume=auto continues from.
        # (ModelCheckpoint's own save_last only follows saves of a new best since
        # Lightning 2.5, which would leave last.ckpt behind whenever the metric stalls.)
        ModelCheckpoint(
            dirpath=directory,
            filename="last",
            monitor=None,
            save_top_k=1,
            every_n_epochs=every,
            enable_version_counter=False,
        ),
        ModelCheckpoint(
            dirpath=directory,
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            every_n_epochs=every,
            enable_version_counter=False,
        ),
        EpochSeeding(int(cfg.seed)),  # epoch k is the same whether or not the run resumed
    ]
    if cfg.trainer.logger != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if probe:
        assert num_classes is not None
        callbacks.append(OnlineLinearProbe(feature_dim, num_classes, float(cfg.online_probe.lr)))
    return callbacks + build_monitors(cfg, num_classes)


def build_trainer(
    cfg: Any, run_dir: Path, callbacks: list[Callback], resume_step: int = 0
) -> pl.Trainer:
    """Lightning's Trainer with the `trainer` config group's arguments.

    Checkpoints are written atomically (:class:`AtomicCheckpointIO`).
    """
    t = cfg.trainer
    return pl.Trainer(
        default_root_dir=str(run_dir),
        max_epochs=int(t.max_epochs),
        max_steps=int(t.max_steps),
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=int(t.num_nodes),
        strategy=t.strategy,
        precision=t.precision,
        accumulate_grad_batches=int(t.accumulate_grad_batches),
        gradient_clip_val=t.gradient_clip_val,
        deterministic=bool(t.deterministic),
        # cuDNN picks the fastest convolution kernels for the (fixed) batch shape.
        benchmark=not bool(t.deterministic),
        sync_batchnorm=bool(cfg.encoder.sync_batchnorm),
        log_every_n_steps=int(t.log_every_n_steps),
        limit_train_batches=t.limit_train_batches,
        # Validation only feeds the online probe and kNN monitor: without them, a pass over
        # the test split every epoch would be wasted work (B4 in benchmarks/ measured it).
        limit_val_batches=None if cfg.online_probe.enabled or knn_monitor_enabled(cfg) else 0,
        enable_progress_bar=bool(t.enable_progress_bar),
        logger=build_loggers(cfg, run_dir, resume_step),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
    )
