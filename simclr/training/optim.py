"""Optimizer, learning-rate scaling and warm-up + cosine schedule: one set-up for every module.

LARS comes from timm (``timm.optim.Lars``). SimCLR keeps BatchNorm parameters and
biases out of both the weight decay and the LARS trust-ratio scaling; timm's Lars
skips the trust ratio for a group only when that group's weight decay is 0 and its
``always_adapt`` is off, so :func:`build_optimizer` puts the excluded parameters in
a group with weight_decay=0, always_adapt=False, and the rest in a group with
always_adapt=True (so they are still adapted when the user sets weight_decay=0).

timm's update differs from the SimCLR TensorFlow code in two small ways, both kept:
the trust ratio is ``eta*|w| / (|g| + wd*|w|)`` (the LARS paper) rather than
``eta*|w| / |g + wd*w|``, and the learning rate multiplies the momentum buffer
rather than each step's increment (the same while the rate is constant).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from timm.optim import Lars, param_groups_weight_decay
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from simclr.config.choices import LrScaling, OptimName, Schedule
from simclr.config.schema import OptimConfig, RunConfig
from simclr.config.validate import check_value
from simclr.errors import ConfigError


def scaled_lr(base_lr: float, global_batch_size: int, scaling: str) -> float:
    """Learning rate for a global batch: ``linear`` base*B/256, ``sqrt`` base*sqrt(B), ``none`` base."""
    if global_batch_size < 1:
        raise ConfigError(f"global batch size {global_batch_size} must be >= 1")
    rule = LrScaling.parse(scaling, "optim.lr_scaling")
    if rule is LrScaling.linear:
        return base_lr * global_batch_size / 256
    if rule is LrScaling.sqrt:
        return base_lr * math.sqrt(global_batch_size)
    return base_lr


def global_batch_size(per_device: int, devices: int, num_nodes: int, accumulate: int) -> int:
    """Images per optimizer step: per-device batch x devices x nodes x accumulation."""
    for key, value in (
        ("data.batch_size", per_device),
        ("devices", devices),
        ("trainer.num_nodes", num_nodes),
        ("trainer.accumulate_grad_batches", accumulate),
    ):
        if value < 1:
            raise ConfigError(f"{key}={value} must be >= 1")
    return per_device * devices * num_nodes * accumulate


def parameter_groups(
    model: nn.Module, weight_decay: float, exclude_bn_bias: bool
) -> list[dict[str, Any]]:
    """Split trainable parameters into a decayed group and a no-decay group.

    With ``exclude_bn_bias`` the second group (weight_decay 0, key ``"exclude"``
    True) holds every parameter of at most one dimension: normalisation-layer
    weights and biases and all biases, whatever their attribute names. Without it
    there is a single group. Empty groups are left out; frozen parameters too.
    """
    check_value("optim.weight_decay", weight_decay)
    if not exclude_bn_bias:
        params = [p for p in model.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [
            {"params": params, "weight_decay": weight_decay, "exclude": False}
        ]
    else:
        # timm splits by shape (ndim <= 1, or a name ending in .bias). Ask for a
        # non-zero decay: with 0 it puts everything in one group and the split, which
        # LARS needs regardless of decay, would be lost.
        groups = []
        for group in param_groups_weight_decay(model, weight_decay=1.0):
            excluded = group["weight_decay"] == 0
            groups.append(
                {
                    "params": list(group["params"]),
                    "weight_decay": 0.0 if excluded else weight_decay,
                    "exclude": excluded,
                }
            )
        groups.sort(key=lambda g: bool(g["exclude"]))  # decayed group first
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters to optimise")
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    """Build the optimizer described by an ``optim`` config node (an OptimConfig).

    The learning rate is ``cfg.lr`` scaled for ``global_batch`` by ``cfg.lr_scaling``.
    """
    name = OptimName.parse(cfg.name, "optim.name")
    lr = scaled_lr(cfg.lr, global_batch, cfg.lr_scaling)
    groups = parameter_groups(model, cfg.weight_decay, cfg.exclude_bn_bias)
    if name is OptimName.lars:
        for group in groups:
            # timm adapts a group when weight_decay != 0 or always_adapt; we decide
            # by membership, not by the decay value.
            group["always_adapt"] = not group["exclude"]
        return Lars(
            groups,
            lr=lr,
            momentum=cfg.momentum,
            trust_coeff=cfg.trust_coefficient,
        )
    if name is OptimName.sgd:
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)
    b1, b2 = (float(b) for b in cfg.betas)
    return torch.optim.AdamW(groups, lr=lr, betas=(b1, b2))


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, final_fraction: float = 0.0
) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` (so the first step is not wasted
    at rate 0), reaching 1 on the last warm-up step, then a half cosine from 1 to
    ``final_fraction`` at ``total_steps``; steps beyond stay at ``final_fraction``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_constant_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up as in :func:`warmup_cosine_factor`, then a constant 1."""
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


# Warm-up share of a budget-planned schedule when max_epochs gives none (SimCLR: 10 of 100).
DEFAULT_WARMUP_SHARE = 0.1


@dataclass
class SchedulePlan:
    """How many optimizer steps the schedule spans, and how many of them warm up.

    Mutable: a wall-clock budget (simclr/training/callbacks/budget.py) re-plans `total_steps`
    while training runs, and the schedule follows, since it reads the plan at every
    step. The other fields are the config's, for re-planning.
    """

    total_steps: int
    warmup_steps: int
    steps_per_epoch: int  # optimizer steps per epoch (batches / accumulation)
    warmup_epochs: float
    warmup_share: float  # warm-up as a share of a planned total: warmup_epochs / max_epochs

    def replan(self, total_steps: int) -> None:
        """Span `total_steps` instead. Warm-up keeps `warmup_epochs` where that fits the
        recipe's share of the new total, else becomes that share (so a budget that
        allows 5 of 100 epochs warms up for 5% of them, not for 10 epochs)."""
        self.total_steps = max(1, int(total_steps))
        literal = round(self.warmup_epochs * self.steps_per_epoch)
        share = round(self.warmup_share * self.total_steps)
        self.warmup_steps = max(0, min(literal, share, self.total_steps - 1))


def planned_factor(step: int, plan: SchedulePlan, schedule: str, final_fraction: float) -> float:
    """The multiplier of `schedule` (cosine | constant) at `step` under the current `plan`."""
    if schedule == "cosine":
        return warmup_cosine_factor(step, plan.total_steps, plan.warmup_steps, final_fraction)
    return warmup_constant_factor(step, plan.warmup_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: OptimConfig,
    steps_per_epoch: int,
    max_epochs: int,
    total_steps: int | None = None,
) -> dict[str, Any]:
    """Per-step warm-up + cosine (or constant) schedule as a Lightning scheduler dict.

    ``steps_per_epoch`` counts optimizer steps (batches / accumulation). Warm-up
    lasts ``round(cfg.warmup_epochs * steps_per_epoch)`` steps, capped below the
    total. ``total_steps`` overrides ``steps_per_epoch * max_epochs`` (e.g. with
    ``trainer.max_steps``, or Lightning's ``estimated_stepping_batches``).
    """
    return build_planned_scheduler(optimizer, cfg, steps_per_epoch, max_epochs, total_steps)[0]


def build_planned_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: OptimConfig,
    steps_per_epoch: int,
    max_epochs: int,
    total_steps: int | None = None,
) -> tuple[dict[str, Any], SchedulePlan]:
    """:func:`build_scheduler`, and the :class:`SchedulePlan` its schedule reads."""
    Schedule.parse(cfg.schedule, "optim.schedule")
    check_value("optim.warmup_epochs", cfg.warmup_epochs)
    check_value("optim.final_lr_fraction", cfg.final_lr_fraction)
    total = steps_per_epoch * max_epochs if total_steps is None else total_steps
    if total < 1:
        raise ConfigError(
            f"the schedule needs at least one optimizer step, got {total} "
            f"({steps_per_epoch} steps per epoch x {max_epochs} epochs)"
        )
    warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total - 1)
    share = cfg.warmup_epochs / max_epochs if max_epochs >= 1 else DEFAULT_WARMUP_SHARE
    plan = SchedulePlan(total, warmup, steps_per_epoch, cfg.warmup_epochs, min(share, 1.0))
    factor = functools.partial(
        planned_factor,
        plan=plan,
        schedule=str(cfg.schedule),
        final_fraction=cfg.final_lr_fraction,
    )
    # partial, not a lambda or a callable object: LambdaLR saves (and on resume
    # restores) the __dict__ of callable objects, which would pin a resumed run to the
    # old length; a partial's arguments are not in its __dict__, so the current config
    # always wins, and a budget's re-planned length is restored by its callback instead.
    scheduler = LambdaLR(optimizer, lr_lambda=factor)
    return {"scheduler": scheduler, "interval": "step", "frequency": 1}, plan


def optimizer_steps_per_epoch(batches_per_epoch: float, accumulate: int, fallback: int) -> int:
    """Optimizer steps in one epoch: the loader's batches over gradient accumulation.

    The one rule every module's schedule and the trainer's logging interval use.
    `fallback` stands in where the loader has no length (a streaming data set).
    """
    if not math.isfinite(batches_per_epoch):
        return max(1, fallback)
    return max(1, math.ceil(batches_per_epoch / max(1, accumulate)))


def trainer_steps_per_epoch(trainer: pl.Trainer) -> int:
    """:func:`optimizer_steps_per_epoch` of a Trainer about to fit (its loader is set up).

    Taken from the loader itself: ``total // max_epochs`` would be wrong whenever
    max_steps (or a time budget) ends the run before max_epochs.
    """
    if trainer.train_dataloader is None:  # max_epochs=-1: Lightning did not load it yet
        trainer.fit_loop.setup_data()
    total = float(trainer.estimated_stepping_batches)  # inf: only a time budget ends the run
    epochs = trainer.max_epochs if trainer.max_epochs is not None else -1
    return optimizer_steps_per_epoch(
        float(trainer.num_training_batches),
        int(trainer.accumulate_grad_batches),
        fallback=int(total) // max(1, epochs) if math.isfinite(total) else 1,
    )


def configure_optimization(
    module: pl.LightningModule, trained: nn.Module, cfg: RunConfig
) -> tuple[dict[str, Any], SchedulePlan]:
    """The optimizer and per-step schedule of every module trained with the run's `optim`.

    The learning rate is scaled for the global batch (devices x nodes x accumulation),
    the schedule spans the steps the Trainer will take (``max_epochs``, ``max_steps``),
    and the returned :class:`SchedulePlan` is what a ``trainer.max_time`` budget
    re-plans (:class:`~simclr.training.callbacks.budget.BudgetSchedule` finds it as
    ``module.schedule_plan``). Returns Lightning's ``configure_optimizers`` dict.
    """
    trainer = module.trainer
    batch = global_batch_size(
        cfg.data.batch_size,
        int(trainer.num_devices),
        int(trainer.num_nodes),
        int(trainer.accumulate_grad_batches),
    )
    optimizer = build_optimizer(trained, cfg.optim, batch)
    epochs = trainer.max_epochs if trainer.max_epochs is not None else -1  # -1: no limit
    per_epoch = trainer_steps_per_epoch(trainer)
    estimated = float(trainer.estimated_stepping_batches)
    # Without a step or epoch limit (trainer.max_time alone) a provisional epoch: the
    # budget's planner re-plans the schedule from the measured rate (callbacks/budget.py).
    total = int(estimated) if math.isfinite(estimated) else per_epoch
    scheduler, plan = build_planned_scheduler(
        optimizer, cfg.optim, per_epoch, epochs, total_steps=total
    )
    return {"optimizer": optimizer, "lr_scheduler": scheduler}, plan
