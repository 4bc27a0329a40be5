"""The SimCLR view pipeline: shapes, ranges, independence of views, seeding, parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torchvision.transforms import v2

from simclr.config.schema import AugmentConfig
from simclr.data.views import TwoViews, blur_kernel_size, build_eval_transform, build_view_transform


def make_image(size: int = 40) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def test_views_have_shape_dtype_and_normalised_range():
    cfg = OmegaConf.structured(AugmentConfig)
    v1, v2_ = TwoViews(build_view_transform(cfg, 32))(make_image())
    assert v1.shape == v2_.shape == (3, 32, 32)
    assert v1.dtype == torch.float32
    low = min((0 - m) / s for m, s in zip(cfg.mean, cfg.std, strict=True))
    high = max((1 - m) / s for m, s in zip(cfg.mean, cfg.std, strict=True))
    assert v1.min() >= low - 1e-5 and v1.max() <= high + 1e-5
    assert not torch.equal(v1, v2_), "the two views must be drawn independently"


def test_views_are_deterministic_under_a_seed():
    cfg = OmegaConf.structured(AugmentConfig)
    transform = TwoViews(build_view_transform(cfg, 32))
    torch.manual_seed(7)
    a = transform(make_image())
    torch.manual_seed(7)
    b = transform(make_image())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_small_images_are_upsampled_to_the_view_size():
    cfg = OmegaConf.structured(AugmentConfig)
    assert build_view_transform(cfg, 32)(make_image(8)).shape == (3, 32, 32)
    assert build_eval_transform(cfg, 32)(make_image(8)).shape == (3, 32, 32)


def test_paper_parameters_reach_the_transforms():
    cfg = OmegaConf.structured(AugmentConfig)
    steps = build_view_transform(cfg, 224).transforms
    crop = next(t for t in steps if isinstance(t, v2.RandomResizedCrop))
    assert crop.scale == (0.08, 1.0)
    applied = [t for t in steps if isinstance(t, v2.RandomApply)]
    jitter = applied[0].transforms[0]
    assert isinstance(jitter, v2.ColorJitter) and applied[0].p == 0.8
    assert jitter.brightness == pytest.approx((0.2, 1.8)) and jitter.hue == pytest.approx(
        (-0.2, 0.2)
    )
    blur = applied[1].transforms[0]
    assert isinstance(blur, v2.GaussianBlur) and applied[1].p == 0.5
    assert list(blur.kernel_size) == [23, 23]  # ~10% of 224, odd
    gray = next(t for t in steps if isinstance(t, v2.RandomGrayscale))
    assert gray.p == 0.2


def test_blur_off_and_half_strength_for_cifar_preset():
    cfg = OmegaConf.merge(
        OmegaConf.structured(AugmentConfig), {"blur_p": 0.0, "jitter_strength": 0.5}
    )
    steps = build_view_transform(cfg, 32).transforms
    assert not any(
        isinstance(t, v2.RandomApply) and isinstance(t.transforms[0], v2.GaussianBlur)
        for t in steps
    )
    jitter = next(t for t in steps if isinstance(t, v2.RandomApply)).transforms[0]
    assert jitter.brightness == pytest.approx((0.6, 1.4))


def test_blur_kernel_is_odd_and_about_a_tenth():
    assert blur_kernel_size(224) == 23
    assert blur_kernel_size(96) == 11
    assert blur_kernel_size(32) == 3
    assert all(blur_kernel_size(s) % 2 == 1 for s in range(8, 300))


def test_eval_transform_is_deterministic():
    cfg = OmegaConf.structured(AugmentConfig)
    t = build_eval_transform(cfg, 32)
    assert torch.equal(t(make_image()), t(make_image()))
