"""Wall-clock budgets: durations, the re-plannable schedule, and the planner through a
real Lightning Trainer on a faked clock (start-up, drift, the max_epochs ceiling, resume)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import pytorch_lightning.callbacks.timer as timer_module
import torch
from pytorch_lightning.callbacks import Callback, Timer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from simclr.config.checks import parse_duration
from simclr.errors import ConfigError
from simclr.training.callbacks.budget import BudgetSchedule, budget_callbacks, projected_total
from simclr.training.optim import SchedulePlan, build_planned_scheduler, warmup_cosine_factor

BATCHES = 10  # per epoch


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("00:00:20:00", 1200),
        ("01:02:03:04", 93784),
        ("20m", 1200),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("90s", 90),
        ("2d12h", 216000),
        (" 1H 5M ", 3900),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "20", "m20", "1m2h", "20 minutes", "00:20:00", "0m", "-5m"])
def test_bad_durations_are_one_line_config_errors(text):
    with pytest.raises(ConfigError) as err:
        parse_duration(text)
    assert "trainer.max_time" in str(err.value) and "\n" not in str(err.value)


def test_max_time_is_checked_with_the_config(compose_config):
    from simclr.config import validate_config

    validate_config(compose_config("trainer.max_time=1h30m"))
    colons = compose_config("trainer.max_time=00:00:20:00")  # Hydra keeps it a string
    assert colons.trainer.max_time == "00:00:20:00"
    validate_config(colons)
    with pytest.raises(ConfigError, match=r"trainer\.max_time='ninety'"):
        validate_config(compose_config("trainer.max_time=ninety"))


def plan(total=100, warmup=10, per_epoch=10, warmup_epochs=1.0, share=0.1) -> SchedulePlan:
    return SchedulePlan(total, warmup, per_epoch, warmup_epochs, share)


@pytest.mark.parametrize(
    "new_total,warmup",
    [
        (100, 10),  # the whole recipe fits: warmup_epochs as written
        (1000, 10),  # more room: warm-up stays warmup_epochs
        (40, 4),  # 40% of the recipe: warm-up keeps its 10% share
        (5, 0),  # share rounds to nothing
        (1, 0),
    ],
)
def test_replan_keeps_warmup_epochs_where_they_fit_else_the_share(new_total, warmup):
    p = plan()
    p.replan(new_total)
    assert (p.total_steps, p.warmup_steps) == (new_total, warmup)


def test_projected_total():
    assert projected_total(10, 2.0, 15.0) == 40
    assert projected_total(10, 2.0, 15.0, ceiling=30) == 30
    assert projected_total(10, 2.0, 0.0) == 10  # spent: no more steps
    assert projected_total(10, 0.35, 10.0) == 13  # whole steps only


def test_no_budget_no_callbacks():
    assert budget_callbacks(SimpleNamespace(trainer=SimpleNamespace(max_time=None))) == []


class Clock:
    """A monotonic clock that moves only when a training step says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


OPTIM = SimpleNamespace(schedule="cosine", warmup_epochs=1.0, final_lr_fraction=0.0)


class Tiny(pl.LightningModule):
    """One linear layer; each step costs `cost(global_step)` seconds of the clock."""

    def __init__(self, clock: Clock, cost: Callable[[int], float]) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.clock, self.cost = clock, cost
        self.lrs: dict[int, float] = {}
        self.schedule_plan: SchedulePlan | None = None

    def training_step(self, batch, batch_idx):
        self.lrs[self.global_step] = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.clock.now += self.cost(self.global_step)
        return self.layer(batch[0]).pow(2).mean()

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(4 * BATCHES, 4)), batch_size=4)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=1.0)
        total = int(self.trainer.estimated_stepping_batches)
        sched, self.schedule_plan = build_planned_scheduler(
            opt, OPTIM, self.trainer.num_training_batches, self.trainer.max_epochs, total
        )
        return {"optimizer": opt, "lr_scheduler": sched}


def fit(
    monkeypatch,
    clock: Clock,
    cost: Callable[[int], float],
    budget_s: int,
    max_epochs: int = 10,
    extra: list[Callback] | None = None,
    ckpt_path: str | None = None,
    module: Tiny | None = None,
    datamodule: pl.LightningDataModule | None = None,
) -> tuple[pl.Trainer, Tiny, BudgetSchedule]:
    monkeypatch.setattr(timer_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    timer = Timer(duration=dt.timedelta(seconds=budget_s), interval="step", verbose=False)
    budget = BudgetSchedule(timer, skip_steps=5, check_every=5)
    module = module or Tiny(clock, cost)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[timer, budget, *(extra or [])],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer, module, budget


def factor(step: int, total: int, warmup: int) -> float:
    return warmup_cosine_factor(step, total, warmup)


def test_the_schedule_ends_at_the_budget(monkeypatch):
    # 1 s a step, 40 s: 40 of the 100 steps max_epochs allows.
    trainer, module, budget = fit(monkeypatch, Clock(), lambda step: 1.0, budget_s=40)
    assert trainer.global_step == 40
    assert (module.schedule_plan.total_steps, module.schedule_plan.warmup_steps) == (40, 4)
    # Planned after step 10 (5 start-up steps, then 5 measured): from the next step on
    # the LR is the cosine over 40 steps, and the last step runs at its decayed end.
    for step in range(11, 40):
        assert module.lrs[step] == pytest.approx(factor(step, 40, 4)), step
    assert module.lrs[39] < 0.01
    # Before the first plan: the config's schedule (warm-up 1 epoch of 100 steps).
    assert module.lrs[0] == pytest.approx(0.1) and module.lrs[9] == pytest.approx(1.0)
    assert budget.budget_seconds == pytest.approx(40)


def test_start_up_steps_are_left_out_of_the_rate(monkeypatch):
    # 5 slow start-up steps (3 s each), then 1 s a step: 15 + 25 s -> 30 steps.
    cost = lambda step: 3.0 if step < 5 else 1.0  # noqa: E731
    trainer, module, _ = fit(monkeypatch, Clock(), cost, budget_s=40)
    assert trainer.global_step == 30
    assert module.schedule_plan.total_steps == 30  # with start-up in the rate: 20


def test_a_slower_machine_is_replanned(monkeypatch):
    # 1 s a step for 20 steps, then 2 s: the budget ends at step 30, not 40.
    cost = lambda step: 1.0 if step < 20 else 2.0  # noqa: E731
    trainer, module, budget = fit(monkeypatch, Clock(), cost, budget_s=40)
    assert trainer.global_step == 30
    assert budget.replans >= 2
    assert abs(module.schedule_plan.total_steps - 30) <= 1
    assert module.lrs[29] < 0.05


def test_max_epochs_stays_the_ceiling(monkeypatch):
    trainer, module, _ = fit(monkeypatch, Clock(), lambda s: 1.0, budget_s=1000, max_epochs=3)
    assert trainer.global_step == 30
    assert (module.schedule_plan.total_steps, module.schedule_plan.warmup_steps) == (30, 10)
    assert module.lrs[29] == pytest.approx(factor(29, 30, 10))


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def test_resume_continues_the_plan_with_what_is_left_of_the_budget(monkeypatch, tmp_path):
    clock = Clock()
    first, module, _ = fit(monkeypatch, clock, lambda s: 1.0, budget_s=40, extra=[StopAt(20)])
    assert first.global_step == 20 and module.schedule_plan.total_steps == 40
    ckpt = tmp_path / "last.ckpt"
    first.save_checkpoint(ckpt)
    clock.now += 500.0  # time between the crash and the restart is not the budget's
    second, resumed, budget = fit(monkeypatch, clock, lambda s: 1.0, 40, ckpt_path=str(ckpt))
    assert second.global_step == 40  # 20 s were spent, 20 s were left
    assert resumed.schedule_plan.total_steps == 40 and budget.replans >= 1
    # Continued where it stopped: the same LR as an uninterrupted run at every step.
    for step in range(20, 40):
        assert resumed.lrs[step] == pytest.approx(factor(step, 40, 4)), step


def test_warmup_follows_real_steps_per_epoch_with_max_steps(compose_config):
    """trainer.max_steps ends the run before max_epochs: warm-up is still
    warmup_epochs x (batches per epoch), through the real module and Trainer."""
    from simclr.training.module import SimCLRModule

    cfg = compose_config(
        "experiment=none",
        "encoder=resnet18",
        "encoder.stem=cifar",
        "head.hidden_dim=16",
        "head.output_dim=8",
        "optim=sgd",
        "optim.warmup_epochs=1",
        "optim.lr_scaling=none",
        "optim.lr=1.0",
        "trainer.max_steps=8",
        "trainer.precision=32-true",
    )
    module = SimCLRModule(cfg)
    lrs: dict[int, float] = {}

    class Record(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]

    views = torch.randn(3 * 4, 3, 8, 8)
    data = TensorDataset(views, views.flip(-1), torch.zeros(len(views), dtype=torch.long))
    loader = DataLoader(
        data,
        batch_size=4,
        collate_fn=lambda b: (
            (torch.stack([x[0] for x in b]), torch.stack([x[1] for x in b])),
            torch.stack([x[2] for x in b]),
        ),
    )
    trainer = pl.Trainer(
        max_epochs=100,
        max_steps=8,
        callbacks=[Record()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, train_dataloaders=loader)
    assert trainer.global_step == 8
    plan_ = module.schedule_plan
    assert (plan_.steps_per_epoch, plan_.warmup_steps, plan_.total_steps) == (3, 3, 8)
    expected = [factor(step, 8, 3) for step in range(8)]  # 1/3, 2/3, 1, then cosine
    assert [lrs[s] for s in range(8)] == pytest.approx(expected)
    assert math.isclose(lrs[2], 1.0)
