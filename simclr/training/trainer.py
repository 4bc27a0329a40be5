"""Lightning's Trainer for a run: its arguments, loggers, callbacks and representation monitors.

The representation monitors a run's `monitor` config asks for.

Building Lightning's Trainer, loggers and callbacks from the run config.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, LearningRateMonitor
from pytorch_lightning.loggers import Logger

from simclr.config.hardware import choose_precision, device_facts, device_kind
from simclr.config.schema import RunConfig
from simclr.config.validate import check_section, logger_names
from simclr.errors import ConfigError
from simclr.runs.checkpoints import AtomicCheckpointIO
from simclr.runs.rundir import BEST, RunDir
from simclr.training.callbacks.budget import budget_callbacks
from simclr.training.callbacks.online import OnlineKnn, OnlineLinearProbe
from simclr.training.callbacks.progress import RunProgressBar, RunSummary
from simclr.training.callbacks.representation import RepresentationMonitor
from simclr.training.checkpoints import BestCheckpoint, FinalCheckpoint, last_checkpoint
from simclr.training.chunked_step import ManualGradientClipping
from simclr.training.loggers import make_loggers
from simclr.training.nonfinite import NonFiniteCheck
from simclr.training.preemption import PreemptionCheckpoint
from simclr.training.resume import EpochSeeding


def knn_monitor_enabled(cfg: RunConfig, num_classes: int | None = None) -> bool:
    """Whether the online kNN monitor runs (it needs validation passes over labeled data)."""
    mon = cfg.monitor
    return mon.enabled and mon.knn and num_classes != 0


def build_monitors(cfg: RunConfig, num_classes: int | None) -> list[Callback]:
    """RankMe / std / alignment / uniformity, and kNN when the data has labeled splits."""
    mon = cfg.monitor
    if not mon.enabled:
        return []
    check_monitor(mon)
    callbacks: list[Callback] = [
        RepresentationMonitor(
            int(mon.max_samples),
            float(mon.collapse_rank_fraction),
            float(mon.collapse_std_fraction),
        )
    ]
    if num_classes and knn_monitor_enabled(cfg, num_classes):
        knn = cfg.eval.knn  # the final kNN evaluation's k and temperature: one definition
        callbacks.append(
            OnlineKnn(num_classes, int(knn.k), float(knn.temperature), int(mon.max_samples))
        )
    return callbacks


def check_monitor(mon: Any) -> None:
    """ConfigError naming the first out-of-range `monitor.*` value (simclr/config/validate.py)."""
    check_section(mon, "monitor")


log = logging.getLogger(__name__)


def build_loggers(cfg: RunConfig, run: RunDir, resume_step: int = 0) -> list[Logger] | bool:
    """The loggers `trainer.logger` names (see :mod:`simclr.training.loggers`); False for none.

    A resumed run keeps the CSV rows logged before `resume_step`.
    """
    return make_loggers(cfg, run, resume_step) or False


def build_callbacks(
    cfg: RunConfig, run: RunDir, feature_dim: int, num_classes: int | None, n_train: int = 0
) -> list[Callback]:
    """Checkpointing (last + best), per-epoch seeding, learning-rate logging, online probe,
    representation monitors."""
    probe = cfg.online_probe.enabled and bool(num_classes)
    monitor, mode = ("online_probe/val_acc", "max") if probe else ("train/loss_epoch", "min")
    directory, every = str(run.checkpoints), cfg.trainer.checkpoint_every_n_epochs
    last = last_checkpoint(run, every)
    callbacks: list[Callback] = [
        NonFiniteCheck(),  # first: before any epoch-end callback reads the features
        last,
        FinalCheckpoint(last, str(run.last_checkpoint)),
        # best.ckpt: a hard link to last.ckpt while they are the same step, else weights-only.
        BestCheckpoint(
            last,
            run.last_checkpoint,
            dirpath=directory,
            filename=BEST,
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            every_n_epochs=every,
            enable_version_counter=False,
        ),
        EpochSeeding(cfg.seed),  # epoch k is the same whether or not the run resumed
        # SIGTERM / Ctrl-C: last.ckpt after the current step (simclr/training/preemption.py).
        PreemptionCheckpoint(run.last_checkpoint),
    ]
    if logger_names(cfg.trainer.logger):
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if cfg.data.name == "stream":  # LitData's loader state across a resume
        from simclr.data.stream import StreamLoaderState

        callbacks.append(StreamLoaderState())
    if _chunked(cfg) and cfg.trainer.gradient_clip_val:
        callbacks.append(ManualGradientClipping(float(cfg.trainer.gradient_clip_val)))
    if probe:
        assert num_classes is not None
        callbacks.append(OnlineLinearProbe(feature_dim, num_classes, cfg.online_probe.lr))
    callbacks.append(RunSummary(cfg, str(run.path), n_train, num_classes))
    if cfg.trainer.enable_progress_bar:
        callbacks.append(RunProgressBar())
    callbacks += budget_callbacks(cfg)  # trainer.max_time: the Timer and the schedule planner
    return callbacks + build_monitors(cfg, num_classes)


def check_devices(cfg: RunConfig) -> None:
    """ConfigError when the trainer asks for an accelerator this machine does not have."""
    import torch

    accelerator = cfg.trainer.accelerator.lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={cfg.trainer.accelerator}: no CUDA device is visible here "
            "(torch.cuda.is_available() is false); use trainer=default to train on the CPU"
        )
    decode = str(getattr(cfg.augment, "decode", "auto"))
    if decode == "gpu" and (accelerator == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(
            "augment.decode=gpu: no CUDA device to decode on "
            f"(trainer.accelerator={cfg.trainer.accelerator}, torch.cuda.is_available() is "
            f"{torch.cuda.is_available()}); use augment.decode=auto"
        )
    precision = str(cfg.trainer.precision)
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if precision.startswith("16") and on_cpu:
        # Lightning would run bf16 instead while the summary and the config said 16-mixed.
        raise ConfigError(
            f"trainer.precision={precision}: float16 needs a GPU; on the CPU use "
            "trainer.precision=bf16-mixed (or 32-true, or auto)"
        )
    devices, present = cfg.trainer.devices, torch.cuda.device_count()
    if accelerator in ("gpu", "cuda") and isinstance(devices, int) and devices > present:
        raise ConfigError(f"trainer.devices={devices}: only {present} CUDA device(s) here")


def _chunked(cfg: RunConfig) -> bool:
    return bool(cfg.loss.chunk_size)


def build_trainer(
    cfg: RunConfig,
    run: RunDir,
    callbacks: list[Callback],
    resume_step: int = 0,
    steps_per_epoch: int | None = None,
) -> pl.Trainer:
    """Lightning's Trainer with the `trainer` config group's arguments.

    Checkpoints are written atomically (:class:`AtomicCheckpointIO`).
    `trainer.precision=auto` is resolved for the device (simclr/config/hardware.py).
    """
    t = cfg.trainer
    facts = device_facts(device_kind(t.accelerator))
    precision, _ = choose_precision(t.precision, facts, bool(t.deterministic))
    if t.deterministic and facts.kind == "cpu" and precision.startswith("bf16"):
        log.warning(
            "trainer.deterministic=true with trainer.precision=%s on the CPU: oneDNN's bf16 "
            "convolution gradients vary with buffer alignment, so the run is not "
            "bit-reproducible (auto or 32-true is)",
            precision,
        )
    return pl.Trainer(
        default_root_dir=str(run.path),
        max_epochs=int(t.max_epochs),
        max_steps=int(t.max_steps),
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=int(t.num_nodes),
        strategy=t.strategy,
        precision=precision,  # type: ignore[arg-type]
        accumulate_grad_batches=int(t.accumulate_grad_batches),
        # Manual optimization (loss.chunk_size) clips in ManualGradientClipping instead.
        gradient_clip_val=None if _chunked(cfg) else t.gradient_clip_val,
        deterministic=bool(t.deterministic),
        # cuDNN picks the fastest convolution kernels for the (fixed) batch shape.
        benchmark=not bool(t.deterministic),
        sync_batchnorm=cfg.encoder.sync_batchnorm,
        # Fitted to a short epoch (digits: 9 steps), else Lightning logs no step loss.
        log_every_n_steps=max(1, min(int(t.log_every_n_steps), steps_per_epoch or 10**9)),
        limit_train_batches=t.limit_train_batches,
        # Validation only feeds the online probe and kNN monitor: without them, a pass over
        # the test split every epoch would be wasted work (B4 in benchmarks/ measured it).
        limit_val_batches=None if cfg.online_probe.enabled or knn_monitor_enabled(cfg) else 0,
        enable_progress_bar=bool(t.enable_progress_bar),
        enable_model_summary=bool(t.enable_model_summary),
        logger=build_loggers(cfg, run, resume_step),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
    )


def training_summary(cfg: RunConfig, trainer: pl.Trainer, module: Any) -> dict[str, Any]:
    """How `trainer` pretrained `module`: its hardware and step choices (simclr/config/hardware.py,
    simclr/config/step.py), the budget, and the planned and the taken steps and epochs (the
    report's `training`)."""
    import dataclasses

    from simclr.training.callbacks.budget import find_budget

    plan = getattr(module, "schedule_plan", None)
    per_epoch = plan.steps_per_epoch if plan is not None else max(1, trainer.num_training_batches)
    planned = plan.total_steps if plan is not None else int(trainer.estimated_stepping_batches)
    budget = find_budget(trainer)
    steps = int(trainer.global_step)
    sizes = getattr(trainer.datamodule, "sizes_run", None)  # type: ignore[attr-defined]
    batches_run = steps * int(trainer.accumulate_grad_batches)
    step = getattr(module, "step_choice", None)
    return {
        "hardware": dataclasses.asdict(module.hardware),
        "step": None
        if step is None
        else {**dataclasses.asdict(step), "compile_seconds": module.compile_seconds},
        "max_time": cfg.trainer.max_time,
        "budget_seconds": budget.budget_seconds if budget is not None else None,
        "steps_per_epoch": int(per_epoch),
        "planned_steps": int(planned),
        "planned_epochs": round(planned / per_epoch, 3),
        "steps": steps,
        "epochs": round(steps / per_epoch, 3),
        "view_sizes": _view_size_runs(sizes, batches_run) if sizes else None,
    }


def _view_size_runs(sizes: dict[int, dict[int, int]], batches_run: int) -> list[list[int]]:
    """`[size, batches]` pairs of the batches that ran, from the sizes drawn for them
    (the loader draws a few batches ahead: those past the last step are cut)."""
    from simclr.data.resolution import size_runs

    drawn = [sizes[e][b] for e in sorted(sizes) for b in sorted(sizes[e])]
    return size_runs(drawn[:batches_run])
