"""Progressive resizing (simclr/data/resolution.py): sizes, the per-epoch keys, and the
budget's plan, each against a slow reference written here step by step."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from PIL import Image

from simclr.config.schema import AugmentConfig, DataConfig
from simclr.data.epochs import EpochSeededDataset, EpochShuffleSampler
from simclr.data.resolution import (
    ResolutionSchedule,
    batch_view_size,
    planned_steps,
    resolution_schedule,
    seconds_between,
    size_runs,
    sizes_in_run,
)
from simclr.data.views import TwoViews, build_view_transform


def test_digits_like_schedule_grows_from_start_to_full_and_ends_at_full():
    schedule = ResolutionSchedule(start=8, end=16, full_size_share=0.25)
    sizes = [schedule.size_at(e / 24) for e in range(24)]
    # Worked by hand: the ramp covers epochs 0..17 (progress < 0.75); the raw size is
    # 8 + 8 * (e / 24) / 0.75 = 8 + e * 4 / 9, floored to an even number.
    expected = [8] * 5 + [10] * 4 + [12] * 5 + [14] * 4 + [16] * 6
    assert sizes == expected
    assert sizes.count(16) == 6  # the last quarter of 24 epochs at full size


@pytest.mark.parametrize(
    "start,end,share,epochs", [(8, 32, 0.3, 10), (16, 32, 0.5, 7), (4, 6, 0.1, 3)]
)
def test_sizes_never_shrink_stay_in_range_and_the_last_share_is_full(start, end, share, epochs):
    schedule = ResolutionSchedule(start=start, end=end, full_size_share=share)
    sizes = [schedule.size_at(e / epochs) for e in range(epochs)]
    assert sizes == sorted(sizes)
    assert all(start <= s <= end and (s == end or s % 2 == 0) for s in sizes)
    # Every epoch that begins in the last `share` of the run is at full size.
    assert all(s == end for e, s in enumerate(sizes) if e / epochs >= 1 - share)
    assert sizes[0] == start - start % 2 or sizes[0] == start


def test_no_schedule_without_a_start_size_or_with_one_at_full_size():
    assert resolution_schedule(DataConfig(image_size=16)) is None
    assert resolution_schedule(DataConfig(image_size=16, start_size=16)) is None
    made = resolution_schedule(DataConfig(image_size=16, start_size=8, full_size_share=0.4))
    assert made == ResolutionSchedule(8, 16, 0.4)


def _slow_seconds(schedule, step_seconds, start, total):
    """Price each step alone: step k of a run of `total` runs at size_at(k / total)."""
    seconds = 0.0
    for k in range(start, total):
        size = schedule.size_at(k / total)
        if size in step_seconds:
            price = step_seconds[size]
        else:
            near = min(step_seconds, key=lambda s: abs(s - size))
            price = step_seconds[near] * (size / near) ** 2
        seconds += price
    return seconds


@pytest.mark.parametrize("total", [1, 2, 7, 30, 59, 101, 640])
@pytest.mark.parametrize("start,end,share", [(8, 16, 0.25), (16, 32, 0.25), (9, 16, 0.5)])
def test_the_sizes_of_a_run_are_each_steps_size(total, start, end, share):
    schedule = ResolutionSchedule(start=start, end=end, full_size_share=share)
    expanded = []
    bounds = [*sizes_in_run(schedule, total), (total, 0)]
    for (first, size), (after, _) in itertools.pairwise(bounds):
        expanded += [size] * (after - first)
    assert expanded == [schedule.size_at(k / total) for k in range(total)]


@pytest.mark.parametrize("start", [0, 7, 23])
def test_seconds_between_matches_pricing_every_step(start):
    schedule = ResolutionSchedule(start=8, end=16, full_size_share=0.25)
    timed = {8: 0.5, 12: 1.1}
    for total in (30, 45, 64):
        fast = seconds_between(schedule, timed, start, total)
        assert fast == pytest.approx(_slow_seconds(schedule, timed, start, total))


@pytest.mark.parametrize(
    "timed,step,left,ceiling",
    [({8: 0.5}, 10, 120.0, None), ({8: 0.4, 10: 0.7}, 40, 60.0, None), ({16: 2.0}, 0, 300.0, 90)],
)
def test_planned_steps_is_the_longest_plan_that_fits(timed, step, left, ceiling):
    schedule = ResolutionSchedule(start=8, end=16, full_size_share=0.25)
    planned = planned_steps(schedule, timed, step, left, ceiling)
    # Reference: scan every total upwards, keep the last whose steps fit.
    fits = [t for t in range(step, 2000) if _slow_seconds(schedule, timed, step, t) <= left]
    best = max(fits)
    if ceiling is not None:
        best = min(best, ceiling)
    assert planned == best
    # A fixed-size plan priced at full size would have planned far fewer steps.
    if ceiling is None:
        full = max(timed.values()) * (16 / max(timed)) ** 2
        assert planned > step + math.floor(left / full)


def test_a_run_of_fewer_than_two_epochs_still_ends_at_full_size():
    # A 5-minute budget at 32 px on two cores: 1.7 epochs of 35 batches. Sizes change
    # between batches, so the last quarter of the run is at 32 px all the same.
    from simclr.data.datamodule import SimCLRDataModule

    module = SimCLRDataModule(DataConfig(image_size=32, start_size=16), AugmentConfig())
    module.pretrain_set = [None] * 35 * 256  # 35 batches of the default 256
    module._planned_epochs = lambda: 1.7  # what a 5-minute budget's planner planned
    sizes = [module.view_size(e, b) for e in (0, 1) for b in range(35)][:60]
    assert sizes[0] == 16 and sizes == sorted(sizes) and sizes[-1] == 32
    assert sizes.count(32) == pytest.approx(0.25 * 1.7 * 35, abs=1)


def test_the_sampler_keys_carry_their_batchs_size():
    asked: list[int] = []

    def size_of_batch(epoch: int, batch: int) -> int:
        asked.append((epoch, batch))
        return 8 + 2 * epoch + 2 * batch  # three batches of two

    sampler = EpochShuffleSampler(6, seed=1, size_of_batch=size_of_batch, batch_size=2)
    first = list(sampler)
    sampler.set_epoch(2)
    third = list(sampler)
    assert [k[2] for k in first] == [8, 8, 10, 10, 12, 12]
    assert [k[2] for k in third] == [12, 12, 14, 14, 16, 16]
    assert asked == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (2, 2)]  # once a batch
    plain = list(EpochShuffleSampler(6, seed=1))
    assert [k[:2] for k in first] == plain  # the order does not depend on the sizes
    # Resumed after the first batch of epoch 0: the rest keeps its batches' sizes.
    resumed = EpochShuffleSampler(6, 1, skip=2, size_of_batch=size_of_batch, batch_size=2)
    assert list(resumed) == first[2:]


def test_sizes_are_read_from_a_batch_and_counted_in_runs():
    views = torch.zeros(4, 3, 12, 12)
    assert batch_view_size(((views, views), torch.zeros(4))) == 12
    assert batch_view_size([torch.zeros(4), "x"]) == 0
    assert size_runs([8, 8, 12, 16, 16, 16]) == [[8, 2], [12, 1], [16, 3]]
    assert size_runs([]) == []


def test_views_have_the_size_of_their_key_and_the_same_draws_each_time():
    images = [(Image.new("RGB", (8, 8), color=(i * 20, 0, 0)), i) for i in range(4)]
    cfg = AugmentConfig(blur_p=0.0)

    def views_at(size: int) -> TwoViews:
        return TwoViews(build_view_transform(cfg, size))

    dataset = EpochSeededDataset(images, views_at(16), seed=3, transform_at=views_at)
    (a, b), _ = dataset[(1, 2, 12)]
    assert a.shape == b.shape == (3, 12, 12)
    (full, _), _ = dataset[(1, 2)]
    assert full.shape == (3, 16, 16)
    (again, _), _ = dataset[(1, 2, 12)]
    assert torch.equal(a, again)


def test_loaders_that_cannot_grow_views_refuse_a_start_size_in_one_line():
    from simclr.config.validate import validate_data
    from simclr.data.datamodule import SimCLRDataModule
    from simclr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.start_size=8: .*data=stream") as err:
        validate_data(DataConfig(name="stream", root="/shards", image_size=16, start_size=8))
    assert "\n" not in str(err.value)
    module = SimCLRDataModule(DataConfig(image_size=16, start_size=8), AugmentConfig(blur_p=0.0))
    module._check_resolution(None)  # the single-process loader: fine
    with pytest.raises(ConfigError, match=r"data\.start_size=8: .*2 processes share the data"):
        module._check_resolution("2 processes share the data")
    fixed = SimCLRDataModule(DataConfig(image_size=16), AugmentConfig(blur_p=0.0))
    fixed._check_resolution("2 processes share the data")  # nothing asked: nothing refused
    assert fixed.view_size(3, 0) == 16 and fixed.sizes_run == {}


def test_a_plan_made_longer_never_shrinks_the_views():
    from simclr.data.datamodule import SimCLRDataModule

    module = SimCLRDataModule(DataConfig(image_size=32, start_size=16), AugmentConfig())
    module.pretrain_set = [None] * 10 * 256  # 10 batches an epoch
    module._planned_epochs = lambda: 1.0
    first = [module.view_size(0, b) for b in range(10)]
    assert first[0] == 16 and first[-1] == 32  # the last quarter of the one planned epoch
    module._planned_epochs = lambda: 3.0  # the budget's planner found room for more
    later = [module.view_size(1, b) for b in range(3)]  # 22-24 px by the new plan
    assert later == [32, 32, 32]
