"""A wall-clock budget under progressive resizing: the planner prices steps by their view
size, so the run reaches full size and the schedule ends with the budget.

A real Lightning Trainer on a faked clock (tests/unit/training/test_budget.py), with the
real sampler and the datamodule's own size rule; a step costs its pixels' share of a
full-size step, read from its batch as the planner reads it.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer
from torch.utils.data import DataLoader

from simclr.data.datamodule import SimCLRDataModule
from simclr.data.epochs import EpochSeededDataset, EpochShuffleSampler
from simclr.data.resolution import ResolutionSchedule, batch_view_size, planned_steps
from simclr.training.callbacks.budget import BudgetSchedule
from tests.unit.training.test_budget import BATCHES, Clock, Tiny, fit

FULL = 16
SCHEDULE = ResolutionSchedule(start=8, end=FULL, full_size_share=0.25)


def full_step_seconds(size: int) -> float:
    return (size / FULL) ** 2  # 1 s at 16 px, 0.25 s at 8 px


class SizedData(pl.LightningDataModule):
    """Blank views keyed (epoch, index, size) by the real sampler and the real size rule."""

    view_size = SimCLRDataModule.view_size  # the rule under test, not a copy
    _planned_epochs = SimCLRDataModule._planned_epochs

    def __init__(self) -> None:
        super().__init__()
        self.resolution = SCHEDULE
        self.sizes_run: dict[int, dict[int, int]] = {}
        self._largest_drawn = 0
        self.pretrain_set = [(None, 0)] * (4 * BATCHES)
        self.data_cfg = SimpleNamespace(image_size=FULL, batch_size=4, drop_last=True)

    def train_dataloader(self) -> DataLoader:
        dataset = EpochSeededDataset(
            self.pretrain_set,
            lambda x: x,
            seed=0,
            transform_at=lambda size: lambda x: torch.zeros(1, size, size),
        )
        sampler = EpochShuffleSampler(
            len(self.pretrain_set), 0, size_of_batch=self.view_size, batch_size=4
        )
        return DataLoader(dataset, batch_size=4, sampler=sampler)


class SizedTiny(Tiny):
    def training_step(self, batch, batch_idx):
        views, _ = batch
        self.lrs[self.global_step] = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.clock.now += full_step_seconds(batch_view_size(views))
        return self.layer(torch.ones(len(views), 4) + views.mean()).pow(2).mean()


def test_the_plan_prices_steps_by_size_and_ends_at_full_size(monkeypatch):
    clock, budget_s, data = Clock(), 60, SizedData()
    sized = SizedTiny(clock, lambda step: 0.0)  # a step's cost comes from its views' size
    trainer, module, budget = fit(
        monkeypatch, clock, sized.cost, budget_s, max_epochs=100, module=sized, datamodule=data
    )

    # What a planner that knew every size's price from the start would plan.
    known = {s: full_step_seconds(s) for s in range(8, FULL + 1, 2)}
    ideal = planned_steps(SCHEDULE, known, 0, budget_s)
    steps = trainer.global_step
    assert abs(steps - ideal) <= BATCHES, (steps, ideal)
    assert abs(module.schedule_plan.total_steps - steps) <= 2
    drawn = data.sizes_run
    sizes = [drawn[e][b] for e in sorted(drawn) for b in sorted(drawn[e])][:steps]
    assert sizes[0] == 8 and sizes == sorted(sizes)
    # The last quarter of the steps ran at full size: a planner pricing every step
    # at the 8-px rate would have planned ~4x the steps and stopped at 8-12 px.
    assert sizes[-1] == FULL and sizes.count(FULL) >= len(sizes) // 4 - 2
    assert budget.sizes_timed()[-1] == FULL
    assert module.lrs[steps - 1] < 0.05  # the cosine ended with the budget


def test_without_sizes_the_rate_is_over_every_interval():
    budget = BudgetSchedule(Timer(duration=dt.timedelta(seconds=10)))
    budget._samples = [(0, 0.0, 8), (10, 2.5, 8), (20, 5.0, 8), (30, 15.0, 16), (40, 25.0, 16)]
    assert budget.rate(100) == pytest.approx(40 / 25.0)
    assert budget.rate(100, size=8) == pytest.approx(20 / 5.0)
    assert budget.rate(100, size=16) == pytest.approx(10 / 10.0)  # 20->30 spans both sizes
    assert budget.rate(10, size=16) == pytest.approx(1.0)
    assert budget.sizes_timed() == [8, 16]
