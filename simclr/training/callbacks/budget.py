"""A wall-clock budget (`trainer.max_time`) that shapes the learning-rate schedule.

Lightning's :class:`~pytorch_lightning.callbacks.Timer` stops training when the
budget is spent; :class:`BudgetSchedule` makes the schedule end there too, so the
last steps run at the decayed rate instead of being cut off mid-cosine. After the
first `skip_steps` steps of a process (loader workers starting, kernels being
chosen) it measures the optimizer-step rate on the Timer's clock, plans the total
as the steps done plus rate x time remaining (never beyond what max_epochs /
max_steps allow) and writes it into the module's
:class:`~simclr.training.optim.SchedulePlan`, which the schedule reads at every step. It
checks again every `check_every` steps, the rate taken over the last epoch's worth
of steps (so epoch-end work is averaged in, and a machine that gets busier is
noticed within an epoch), and re-plans when the projection has moved by more than
`drift` of the steps left. Under DDP rank 0's projection is broadcast, so every
rank uses the same learning rate.

Under progressive resizing (simclr/data/resolution.py) a step's cost depends on its
view size, and the sizes depend on the plan: the rate is measured per size, a size
not run yet is priced by its pixels, and the plan is the longest whose steps,
priced at their planned sizes, fit in the time left
(:func:`~simclr.data.resolution.planned_steps`).

The plan is saved in the checkpoint (this callback's state) and the Timer saves
the time spent, so `resume=auto` continues the same schedule with what is left of
the budget, and re-measures the rate in the new process.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, Timer

from simclr.config.checks import parse_duration
from simclr.config.schema import RunConfig
from simclr.data.resolution import ResolutionSchedule, batch_view_size, planned_steps
from simclr.training.optim import SchedulePlan

log = logging.getLogger(__name__)


def projected_total(step: int, rate: float, seconds_left: float, ceiling: int | None = None) -> int:
    """Optimizer steps the run will have taken when the budget ends: `step` done plus
    `rate` steps/s over `seconds_left` (whole steps), at most `ceiling`."""
    total = step + math.floor(rate * max(0.0, seconds_left))
    return min(total, ceiling) if ceiling is not None else total


class BudgetSchedule(Callback):
    """Plan the learning-rate schedule to end when `timer`'s budget does.

    Args:
        timer: the Timer that enforces the budget (its clock is the one planned on).
        skip_steps: steps of each process left out of the rate (start-up).
        check_every: steps between two projections.
        drift: re-plan when the projection moves by more than this share of the
            steps left.
    """

    def __init__(
        self, timer: Timer, skip_steps: int = 5, check_every: int = 10, drift: float = 0.05
    ) -> None:
        self.timer = timer
        self.skip_steps = skip_steps
        self.check_every = check_every
        self.drift = drift
        self.plan: SchedulePlan | None = None
        self.ceiling: int | None = None  # steps max_epochs / max_steps allow
        self.replans = 0
        # What the plan in force was projected from (rank 0's measurement): saved with the
        # plan, so a run can be checked against what it measured rather than a wall clock.
        self.projection: dict[str, Any] = {}
        self._restored: dict[str, Any] = {}
        self._samples: list[tuple[int, float, int]] = []  # (step, seconds, view size)
        self.resolution: ResolutionSchedule | None = None
        self._first_step = 0
        self._last_check = -1

    @property
    def budget_seconds(self) -> float | None:
        """The budget, in seconds."""
        remaining = self.timer.time_remaining()
        return None if remaining is None else remaining + self.timer.time_elapsed()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        plan = getattr(pl_module, "schedule_plan", None)
        if not isinstance(plan, SchedulePlan):
            log.warning(
                "trainer.max_time: %s has no schedule plan; only the stop applies",
                type(pl_module).__name__,
            )
            return
        self.plan, self.ceiling = plan, plan.total_steps
        if self._restored:  # resumed: continue the schedule the budget had planned
            plan.replan(min(int(self._restored["total_steps"]), plan.total_steps))
            self.replans = int(self._restored.get("replans", 0))
        self._first_step = trainer.global_step
        self._samples, self._last_check = [], -1
        self.resolution = getattr(trainer.datamodule, "resolution", None)  # type: ignore[attr-defined]

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step, plan = trainer.global_step, self.plan
        if plan is None or step == self._last_check:  # accumulation: one check per step
            return
        self._last_check = step
        size = batch_view_size(batch) if self.resolution is not None else 0
        if not self._samples:
            if step - self._first_step >= self.skip_steps:
                self._samples.append((step, self.timer.time_elapsed(), size))
            return
        if (step - self._samples[0][0]) % self.check_every:
            return
        self._samples.append((step, self.timer.time_elapsed(), size))
        # Every rank reaches this at the same step; rank 0's clock decides for all.
        total: int | None = None
        projection: dict[str, Any] = {}
        if trainer.is_global_zero:
            total, projection = self._project(step, plan)
        total = trainer.strategy.broadcast(total, src=0)
        if total is None:
            return
        left = max(plan.total_steps - step, 1)
        if self.replans == 0 or abs(total - plan.total_steps) > self.drift * left:
            plan.replan(total)
            self.replans += 1
            self.projection = {**projection, "ceiling": self.ceiling}
            if trainer.is_global_zero:
                log.info(
                    "trainer.max_time: planned %d steps (%.2f epochs), warm-up %d, at step %d",
                    plan.total_steps,
                    plan.total_steps / plan.steps_per_epoch,
                    plan.warmup_steps,
                    step,
                )

    def _project(self, step: int, plan: SchedulePlan) -> tuple[int | None, dict[str, Any]]:
        """The total the measured rate(s) project, and what it was projected from."""
        window = max(plan.steps_per_epoch, self.check_every)
        remaining = self.timer.time_remaining() or 0.0
        if self.resolution is None:
            rate = self.rate(window)
            total = projected_total(step, rate, remaining, self.ceiling) if rate > 0 else None
            return total, {"step": step, "rate": rate, "seconds_left": remaining}
        rates = {size: r for size in self.sizes_timed() if (r := self.rate(window, size)) > 0}
        if not rates:
            return None, {}
        seconds = {size: 1.0 / r for size, r in rates.items()}
        total = planned_steps(self.resolution, seconds, step, remaining, self.ceiling)
        return total, {"step": step, "rate_by_size": rates, "seconds_left": remaining}

    def sizes_timed(self) -> list[int]:
        """The view sizes with at least one sampled interval of their own."""
        pairs = itertools.pairwise(self._samples)
        return sorted({b[2] for a, b in pairs if a[2] == b[2]})

    def rate(self, window: int, size: int | None = None) -> float:
        """Steps per second over the last `window` steps sampled (all of them if fewer);
        with `size`, over the intervals whose two ends ran at that view size only."""
        steps, seconds = 0, 0.0
        later = self._samples[-1]
        for earlier in reversed(self._samples[:-1]):
            if steps >= window:
                break
            if size is None or earlier[2] == later[2] == size:
                steps, seconds = steps + later[0] - earlier[0], seconds + later[1] - earlier[1]
            later = earlier
        return steps / seconds if seconds > 0 and steps > 0 else 0.0

    def state_dict(self) -> dict[str, Any]:
        if self.plan is None:
            return dict(self._restored)
        return {
            "total_steps": self.plan.total_steps,
            "replans": self.replans,
            "projection": self.projection,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict)


def budget_callbacks(cfg: RunConfig) -> list[Callback]:
    """The Timer and the schedule planner for `cfg.trainer.max_time`; [] without one."""
    max_time = cfg.trainer.max_time
    if max_time is None:
        return []
    # interval=step: the budget may end mid-epoch; FinalCheckpoint then saves last.ckpt.
    timer = Timer(duration=parse_duration(max_time), interval="step")
    return [timer, BudgetSchedule(timer)]


def find_budget(trainer: pl.Trainer) -> BudgetSchedule | None:
    """The trainer's BudgetSchedule callback, if it has one."""
    callbacks: list[Callback] = trainer.callbacks  # type: ignore[attr-defined]
    return next((c for c in callbacks if isinstance(c, BudgetSchedule)), None)
