"""Optimizer, parameter groups, lr scaling and schedule against hand computations."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from simclr.errors import ConfigError
from simclr.training.optim import (
    build_optimizer,
    build_scheduler,
    global_batch_size,
    parameter_groups,
    scaled_lr,
    warmup_cosine_factor,
)

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def optim_cfg(**overrides: object) -> SimpleNamespace:
    values = {
        "name": "lars",
        "lr": 0.3,
        "lr_scaling": "none",
        "weight_decay": 1e-4,
        "momentum": 0.9,
        "trust_coefficient": 0.001,
        "betas": [0.9, 0.999],
        "exclude_bn_bias": True,
        "warmup_epochs": 10.0,
        "schedule": "cosine",
        "final_lr_fraction": 0.0,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def excluded_by_module_walk(model: nn.Module) -> set[int]:
    """Ids of parameters SimCLR keeps out of decay: normalisation layers and biases."""
    excluded: set[int] = set()
    for module in model.modules():
        if isinstance(module, NORM_TYPES):
            excluded.update(id(p) for p in module.parameters(recurse=False))
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            excluded.add(id(bias))
    return excluded


class OddNames(nn.Module):
    """A BatchNorm and a bias hidden under names no pattern would guess."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Conv2d(3, 4, 3, bias=False)
        self.w_scale_thing = nn.BatchNorm2d(4)
        self.mixer = nn.Linear(4, 2)
        self.groupy = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm(4)


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def test_groups_match_module_walk_on_resnet18_with_head() -> None:
    model = nn.Sequential(resnet18(), nn.Linear(1000, 16), nn.BatchNorm1d(16), nn.Linear(16, 8))
    groups = parameter_groups(model, 1e-6, exclude_bn_bias=True)
    decayed, excluded = groups
    assert decayed["weight_decay"] == 1e-6 and excluded["weight_decay"] == 0.0
    expected = excluded_by_module_walk(model)
    assert {id(p) for p in excluded["params"]} == expected
    all_ids = {id(p) for p in model.parameters()}
    assert {id(p) for p in decayed["params"]} == all_ids - expected


def test_groups_catch_norm_layers_under_odd_names() -> None:
    model = OddNames()
    decayed, excluded = parameter_groups(model, 0.1, exclude_bn_bias=True)
    assert {id(p) for p in excluded["params"]} == excluded_by_module_walk(model)
    assert {id(p) for p in decayed["params"]} == {id(model.trunk.weight), id(model.mixer.weight)}


def test_groups_without_exclusion_and_frozen_parameters() -> None:
    model = TwoLayer()
    model.bn.weight.requires_grad_(False)
    (group,) = parameter_groups(model, 0.1, exclude_bn_bias=False)
    assert group["weight_decay"] == 0.1
    assert {id(p) for p in group["params"]} == {
        id(model.fc.weight),
        id(model.fc.bias),
        id(model.bn.bias),
    }


def test_groups_keep_split_when_weight_decay_is_zero() -> None:
    model = TwoLayer()
    decayed, excluded = parameter_groups(model, 0.0, exclude_bn_bias=True)
    assert [id(p) for p in decayed["params"]] == [id(model.fc.weight)]
    assert len(excluded["params"]) == 3


def lars_reference(
    w: torch.Tensor, grads: list[torch.Tensor], lr: float, wd: float, adapt: bool
) -> torch.Tensor:
    """You et al. (2017) LARS with heavy-ball momentum 0.9, trust 0.001, written out."""
    eta, momentum = 0.001, 0.9
    w = w.clone().double()
    v = torch.zeros_like(w)
    for g in grads:
        g = g.double()
        if adapt:
            w_norm = math.sqrt(float((w * w).sum()))
            g_norm = math.sqrt(float((g * g).sum()))
            local_lr = eta * w_norm / (g_norm + wd * w_norm)
            step = local_lr * (g + wd * w)
        else:
            step = g  # excluded: neither decayed nor trust-scaled
        v = momentum * v + step
        w = w - lr * v
    return w


@pytest.mark.parametrize("foreach", [False, True])  # True is timm's default on CUDA
def test_lars_two_steps_match_hand_computation(foreach: bool) -> None:
    model = TwoLayer()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: [torch.randn(p.shape, generator=gen) for _ in range(2)] for n, p in start.items()}
    lr, wd = 0.5, 1e-2
    opt = build_optimizer(model, optim_cfg(lr=lr, weight_decay=wd), global_batch=256)
    assert type(opt).__name__ == "Lars"
    for group in opt.param_groups:
        group["foreach"] = foreach
    for step in range(2):
        for n, p in model.named_parameters():
            p.grad = grads[n][step].clone()
        opt.step()
    for n, p in model.named_parameters():
        adapt = n == "fc.weight"
        expected = lars_reference(start[n], grads[n], lr, wd if adapt else 0.0, adapt)
        torch.testing.assert_close(p.detach().double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("foreach", [False, True])
def test_lars_excluded_parameters_move_like_sgd_momentum(foreach: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    models = [TwoLayer(), TwoLayer()]
    models[1].load_state_dict(models[0].state_dict())
    lars = build_optimizer(models[0], optim_cfg(lr=0.2, weight_decay=0.1), global_batch=256)
    for group in lars.param_groups:
        group["foreach"] = foreach
    sgd = torch.optim.SGD([models[1].fc.bias, models[1].bn.weight, models[1].bn.bias], 0.2, 0.9)
    for _ in range(3):
        for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
            a.grad = torch.randn(a.shape, generator=gen)
            b.grad = a.grad.clone()
        lars.step()
        sgd.step()
    for name in ("fc.bias", "bn.weight", "bn.bias"):
        torch.testing.assert_close(
            models[0].get_parameter(name), models[1].get_parameter(name), rtol=1e-6, atol=1e-7
        )
    # ...whereas the decayed weight did not (trust ratio 0.001 shrinks its step).
    assert not torch.allclose(models[0].fc.weight, models[1].fc.weight)


def test_lars_adapts_decayed_group_even_with_zero_weight_decay() -> None:
    model = TwoLayer()
    opt = build_optimizer(model, optim_cfg(weight_decay=0.0), global_batch=256)
    adapt = {g["exclude"]: g["always_adapt"] for g in opt.param_groups}
    assert adapt == {False: True, True: False}


@pytest.mark.parametrize(
    ("base", "batch", "scaling", "expected"),
    [
        (0.3, 4096, "linear", 4.8),
        (0.3, 256, "linear", 0.3),
        (0.075, 4096, "sqrt", 4.8),
        (0.075, 256, "sqrt", 1.2),
        (1e-3, 512, "none", 1e-3),
    ],
)
def test_scaled_lr(base: float, batch: int, scaling: str, expected: float) -> None:
    assert scaled_lr(base, batch, scaling) == pytest.approx(expected)


def test_scaled_lr_and_batch_errors() -> None:
    with pytest.raises(ConfigError, match="lr_scaling='cube'"):
        scaled_lr(0.3, 256, "cube")
    with pytest.raises(ConfigError, match="batch"):
        scaled_lr(0.3, 0, "linear")
    assert global_batch_size(64, 4, 2, 3) == 1536
    with pytest.raises(ConfigError, match="accumulate_grad_batches=0"):
        global_batch_size(64, 1, 1, 0)


def test_build_optimizer_scales_lr_and_builds_sgd_adamw() -> None:
    model = TwoLayer()
    lars = build_optimizer(model, optim_cfg(lr_scaling="linear"), global_batch=4096)
    assert all(g["lr"] == pytest.approx(4.8) for g in lars.param_groups)
    assert lars.param_groups[0]["trust_coeff"] == 0.001
    sgd = build_optimizer(model, optim_cfg(name="sgd"), global_batch=256)
    assert isinstance(sgd, torch.optim.SGD)
    assert [g["weight_decay"] for g in sgd.param_groups] == [1e-4, 0.0]
    assert sgd.param_groups[0]["momentum"] == 0.9
    adamw = build_optimizer(model, optim_cfg(name="adamw", betas=[0.8, 0.99]), global_batch=256)
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["betas"] == (0.8, 0.99)
    with pytest.raises(ConfigError, match=r"optim\.name='adam'"):
        build_optimizer(model, optim_cfg(name="adam"), global_batch=256)


def test_warmup_cosine_factor_hand_values() -> None:
    # 10 warm-up steps, 110 total: cosine over the remaining 100.
    assert warmup_cosine_factor(0, 110, 10) == pytest.approx(0.1)
    assert warmup_cosine_factor(4, 110, 10) == pytest.approx(0.5)
    assert warmup_cosine_factor(9, 110, 10) == pytest.approx(1.0)
    assert warmup_cosine_factor(10, 110, 10) == pytest.approx(1.0)
    assert warmup_cosine_factor(60, 110, 10) == pytest.approx(0.5)
    # A quarter into the cosine: (1 + cos(pi/4)) / 2.
    assert warmup_cosine_factor(35, 110, 10) == pytest.approx((1 + 0.7071067811865476) / 2)
    assert warmup_cosine_factor(110, 110, 10) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine_factor(500, 110, 10) == pytest.approx(0.0, abs=1e-12)
    # With a floor of 0.1 the midpoint is 0.1 + 0.9 / 2.
    assert warmup_cosine_factor(60, 110, 10, final_fraction=0.1) == pytest.approx(0.55)
    assert warmup_cosine_factor(110, 110, 10, final_fraction=0.1) == pytest.approx(0.1)
    assert warmup_cosine_factor(0, 100, 0) == pytest.approx(1.0)


def test_scheduler_is_per_step_and_follows_the_factor() -> None:
    model = TwoLayer()
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    # 2 warm-up epochs of 5 steps = 10 warm-up steps, 110 total.
    config = build_scheduler(opt, optim_cfg(warmup_epochs=2.0), steps_per_epoch=5, max_epochs=22)
    assert config["interval"] == "step"
    sched = config["scheduler"]
    rates = []
    for _ in range(111):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == pytest.approx(0.2)
    assert rates[9] == pytest.approx(2.0)
    assert rates[60] == pytest.approx(1.0)
    assert rates[110] == pytest.approx(0.0, abs=1e-12)


def test_scheduler_constant_caps_warmup_and_validates() -> None:
    opt = torch.optim.SGD(TwoLayer().parameters(), lr=1.0)
    cfg = optim_cfg(schedule="constant", warmup_epochs=100.0)
    sched = build_scheduler(opt, cfg, steps_per_epoch=2, max_epochs=2)["scheduler"]
    rates = []
    for _ in range(6):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # Warm-up capped at total - 1 = 3 steps, then constant.
    assert rates == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="schedule='step'"):
        build_scheduler(opt, optim_cfg(schedule="step"), 2, 2)
    with pytest.raises(ConfigError, match="at least one optimizer step"):
        build_scheduler(opt, optim_cfg(), 0, 5)


def test_scheduler_total_steps_override() -> None:
    opt = torch.optim.SGD(TwoLayer().parameters(), lr=1.0)
    cfg = optim_cfg(warmup_epochs=0.0)
    sched = build_scheduler(opt, cfg, steps_per_epoch=10, max_epochs=100, total_steps=4)
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    assert rates == pytest.approx([1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, 0.1464466, 0.0])


@pytest.mark.parametrize("group", ["lars", "lars_sqrt", "sgd", "adamw"])
def test_builds_from_composed_config(compose_config, group: str) -> None:
    cfg = compose_config(f"optim={group}")
    model = TwoLayer()
    opt = build_optimizer(model, cfg.optim, global_batch=1024)
    expected = {"lars": 0.3 * 4, "lars_sqrt": 0.075 * 32, "sgd": 0.3 * 4, "adamw": 1e-3}[group]
    assert opt.param_groups[0]["lr"] == pytest.approx(expected)
    sched = build_scheduler(opt, cfg.optim, steps_per_epoch=3, max_epochs=cfg.trainer.max_epochs)
    assert sched["interval"] == "step"


def test_optimizer_steps_per_epoch_is_batches_over_accumulation_rounded_up():
    from simclr.training.optim import optimizer_steps_per_epoch

    # Lightning steps the optimizer on the last, partial accumulation window too.
    assert optimizer_steps_per_epoch(10.0, 1, fallback=99) == 10
    assert optimizer_steps_per_epoch(10.0, 3, fallback=99) == 4
    assert optimizer_steps_per_epoch(1.0, 4, fallback=99) == 1
    # A loader without a length (a stream): the fallback, at least one.
    assert optimizer_steps_per_epoch(float("inf"), 2, fallback=7) == 7
    assert optimizer_steps_per_epoch(float("inf"), 2, fallback=0) == 1
