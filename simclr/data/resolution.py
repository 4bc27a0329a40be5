"""Progressive resizing: views that start small and grow to `data.image_size`.

A convolution's cost grows with the pixels it sees: on two CPU cores a SimCLR step of
a CIFAR-stem ResNet-18 at 16 px runs about four times as many images a second as at
32 px. Most of what contrastive pretraining learns early (shapes, colours, the
coarse layout) survives at a low resolution, so the early epochs run small and the
last share of the run at the full size the evaluation uses, which also leaves the
batch-norm statistics of the full size in the encoder (FFCV and fastai do the same
for supervised training; the growth here is linear in epochs, as FFCV's).

A batch's view size is a function of its place in the run: (epoch, batch) over the
planned length of the run. Sizes change between batches, not only between epochs, so
a run of one or two long epochs (a short budget) still ends at full size. Each is
decided where the batch is handed out (the sampler, in the main process), so a
resumed run of a fixed length sees the sizes the uninterrupted one saw, and a
wall-clock budget that re-plans the run's length moves the growth of the batches
still to come.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from simclr.config.schema import DataConfig


@dataclass(frozen=True)
class ResolutionSchedule:
    """Views grow linearly from `start` px to `end` px, and stay at `end` for the last
    `full_size_share` of the run; sizes are multiples of `multiple` (and `end`)."""

    start: int
    end: int
    full_size_share: float
    multiple: int = 2

    def size_at(self, progress: float) -> int:
        """The view side at `progress` (the share of the run's epochs before this one)."""
        ramp = 1.0 - self.full_size_share
        if ramp <= 0 or progress >= ramp:
            return self.end
        raw = self.start + (self.end - self.start) * max(0.0, progress) / ramp
        # The epsilon: a size that is exactly a multiple (9 * 4/9) must not floor below it.
        even = self.multiple * math.floor(raw / self.multiple + 1e-9)
        return min(self.end, max(self.start, even))

    def first_step_at(self, size: int, total_steps: int) -> int:
        """The first of `total_steps` steps whose size (:meth:`size_at` of step / total) is
        at least `size` (`total_steps` where none is)."""
        if size <= self.start:
            return 0
        ramp = 1.0 - self.full_size_share
        share = ramp * (size - self.start) / (self.end - self.start) if size < self.end else ramp
        step = max(0, math.ceil(share * total_steps) - 1)  # then corrected by the rule itself
        while step < total_steps and self.size_at(step / total_steps) < size:
            step += 1
        while step > 0 and self.size_at((step - 1) / total_steps) >= size:
            step -= 1
        return step

    def relative_cost(self, size: int) -> float:
        """A step's cost at `size` relative to one at `end`: the pixels' share.

        Used only where no step at that size has been timed yet (see
        :func:`planned_steps`); measured rates replace it as the run goes.
        """
        return (size / self.end) ** 2


def resolution_schedule(cfg: DataConfig) -> ResolutionSchedule | None:
    """The schedule `data.start_size` asks for; None where views keep `data.image_size`."""
    start, end = cfg.start_size, int(cfg.image_size)
    if start is None or int(start) >= end:
        return None
    return ResolutionSchedule(int(start), end, float(cfg.full_size_share))


def sizes_in_run(schedule: ResolutionSchedule, total_steps: int) -> list[tuple[int, int]]:
    """`(first step, size)` of each size a run of `total_steps` steps goes through."""
    m = schedule.multiple
    above_start = range(schedule.start + m - schedule.start % m, schedule.end, m)
    firsts: dict[int, int] = {}  # first step -> the largest size that starts there
    for size in (schedule.start, *above_start, schedule.end):
        first = schedule.first_step_at(size, total_steps)
        if first < total_steps:
            firsts[first] = max(size, firsts.get(first, size))
    return sorted(firsts.items())


def seconds_between(
    schedule: ResolutionSchedule,
    step_seconds: Mapping[int, float],
    start: int,
    total_steps: int,
) -> float:
    """Seconds the steps `start`..`total_steps` take when the run is planned to `total_steps`.

    Step k runs at :meth:`~ResolutionSchedule.size_at` of k / `total_steps`.
    `step_seconds` maps the sizes timed so far to their seconds per step; a size not
    timed yet is priced from the timed size nearest to it, scaled by the pixels.
    """
    seconds = 0.0
    bounds = [*sizes_in_run(schedule, total_steps), (total_steps, 0)]
    for (first, size), (after, _) in itertools.pairwise(bounds):
        steps = after - max(first, start)
        if steps > 0:
            seconds += steps * _step_seconds(schedule, step_seconds, size)
    return seconds


def _step_seconds(schedule: ResolutionSchedule, timed: Mapping[int, float], size: int) -> float:
    if size in timed:
        return timed[size]
    near = min(timed, key=lambda s: abs(s - size))
    return timed[near] * schedule.relative_cost(size) / schedule.relative_cost(near)


def planned_steps(
    schedule: ResolutionSchedule,
    step_seconds: Mapping[int, float],
    step: int,
    seconds_left: float,
    ceiling: int | None = None,
) -> int:
    """The most steps a run at `step` can plan so that the rest fits in `seconds_left`.

    Planning more steps stretches the growth (later steps are smaller), so the
    steps' prices depend on the total: the search prices each candidate total with
    its own sizes. Their time grows with the total, so a bisection finds the largest
    that fits. At most `ceiling` (what max_epochs / max_steps allow).
    """
    if not step_seconds:
        raise ValueError("planned_steps needs the seconds per step of one size at least")
    fastest = min(step_seconds[s] / schedule.relative_cost(s) for s in step_seconds)
    upper = step + math.ceil(seconds_left / (fastest * schedule.relative_cost(schedule.start)))
    high = max(step, min(upper, ceiling) if ceiling is not None else upper)
    low = step
    while low < high:
        middle = (low + high + 1) // 2
        cost = seconds_between(schedule, step_seconds, step, middle)
        if cost <= seconds_left:
            low = middle
        else:
            high = middle - 1
    return low


def batch_view_size(batch: object) -> int:
    """The side of the first image batch (a 4-D tensor) inside a loader's batch; 0 if none."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[-1]) if batch.dim() == 4 else 0
    if isinstance(batch, list | tuple):
        for item in batch:
            if size := batch_view_size(item):
                return size
    return 0


def size_runs(sizes: list[int]) -> list[list[int]]:
    """`[8, 8, 12, 16, 16]` -> `[[8, 2], [12, 1], [16, 2]]`: each size and its steps in a row."""
    runs: list[list[int]] = []
    for size in sizes:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    return runs
