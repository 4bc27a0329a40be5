"""augment.backend=gpu: kornia's batched colour steps draw from the CPU pipeline's distribution.

Both pipelines get the same uint8 crops (the crop is the same code in both
backends); the CPU side applies torchvision's steps image by image, the batched
side kornia's. Per-image statistics (brightness, colourfulness, sharpness, whether
grayscale) are compared with two-sample Kolmogorov-Smirnov tests, and the pixel
means per channel within a few standard errors. The `gpu` variant runs kornia on
CUDA. Kornia runs on CPU tensors too, so the comparison is in the normal suite.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.stats import ks_2samp
from torchvision.transforms import v2

from simclr.config.schema import AugmentConfig
from simclr.data.views import (
    GpuViewAugment,
    _to_float_normalised,
    build_crop_transform,
    build_photometric_steps,
)

SIZE = 24
N = 240  # views per pipeline: enough for KS to see a wrong range or probability


def source_image() -> torch.Tensor:
    """A colourful uint8 image (gradients plus noise), 3 x 40 x 40."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40] / 39.0
    img = np.stack([yy, xx, 0.5 * (1 - yy)], axis=-1) * 200 + rng.integers(0, 55, (40, 40, 3))
    return torch.from_numpy(img.astype(np.uint8)).permute(2, 0, 1).contiguous()


def crops(cfg, n: int) -> torch.Tensor:
    torch.manual_seed(0)
    crop = build_crop_transform(cfg, SIZE)
    image = source_image()
    return torch.stack([crop(image) for _ in range(n)])


def per_image_stats(views: torch.Tensor, cfg) -> dict[str, np.ndarray]:
    mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    x = views.float().cpu() * std + mean  # back to [0, 1] pixels
    return {
        "brightness": x.mean(dim=(1, 2, 3)).numpy(),
        "colourfulness": (x.amax(1) - x.amin(1)).mean(dim=(1, 2)).numpy(),
        "sharpness": (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3)).numpy(),
        "grayscale": ((x[:, 0] - x[:, 1]).abs().amax(dim=(1, 2)) < 1e-2).float().numpy(),
        "channel_means": x.mean(dim=(2, 3)).numpy(),
    }


def cpu_views(cfg, batch: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(1)
    steps = v2.Compose(build_photometric_steps(cfg, SIZE) + _to_float_normalised(cfg))
    return torch.stack([steps(image) for image in batch])


def batched_views(cfg, batch: torch.Tensor, device: str) -> torch.Tensor:
    torch.manual_seed(2)
    augment = GpuViewAugment(cfg, SIZE).to(device)
    return torch.cat([augment(part.to(device)) for part in batch.split(60)])


def compare(cfg, device: str) -> None:
    batch = crops(cfg, N)
    ref = per_image_stats(cpu_views(cfg, batch), cfg)
    got = per_image_stats(batched_views(cfg, batch, device), cfg)
    for key in ("brightness", "colourfulness", "sharpness"):
        result = ks_2samp(ref[key], got[key])
        assert result.pvalue > 1e-3, f"{key}: KS p={result.pvalue:.2g}"
    gray_ref, gray_got = ref["grayscale"].mean(), got["grayscale"].mean()
    # Binomial standard error of a difference of two proportions near p=0.2: ~0.037.
    assert abs(gray_ref - gray_got) < 0.12, (gray_ref, gray_got)
    spread = np.sqrt(ref["channel_means"].var(0) / N + got["channel_means"].var(0) / N)
    diff = np.abs(ref["channel_means"].mean(0) - got["channel_means"].mean(0))
    assert (diff < 4 * spread).all(), (diff, spread)


def test_batched_views_match_the_cpu_pipeline_statistics():
    compare(OmegaConf.structured(AugmentConfig), "cpu")


def test_parameters_are_drawn_per_image_not_per_batch():
    cfg = OmegaConf.structured(AugmentConfig)
    same = crops(cfg, 1).repeat(64, 1, 1, 1)  # 64 copies of one crop, one batch
    torch.manual_seed(3)
    stats = per_image_stats(GpuViewAugment(cfg, SIZE)(same), cfg)
    assert np.unique(stats["brightness"].round(4)).size > 30
    assert 0 < stats["grayscale"].mean() < 0.5


def test_switched_off_steps_leave_only_normalisation():
    cfg = OmegaConf.structured(AugmentConfig(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0))
    batch = crops(cfg, 4)
    out = GpuViewAugment(cfg, SIZE)(batch)
    expected = v2.Compose(_to_float_normalised(cfg))(batch)
    assert torch.allclose(out, expected, atol=1e-6)


def test_it_refuses_float_input_and_adds_nothing_to_checkpoints():
    augment = GpuViewAugment(OmegaConf.structured(AugmentConfig), SIZE)
    assert augment.state_dict() == {}
    with pytest.raises(ValueError, match="uint8"):
        augment(torch.rand(2, 3, SIZE, SIZE))


def test_module_finishes_uint8_crops_and_leaves_float_views(compose_config):
    from simclr.training.module import SimCLRModule

    cfg = compose_config(
        "encoder=resnet18", "encoder.stem=cifar", "head.hidden_dim=16", "augment.backend=gpu"
    )
    module = SimCLRModule(cfg)
    assert not any(k.startswith("gpu_augment") for k in module.state_dict())
    views = crops(cfg.augment, 4)
    v1, v2_ = module.finish_views((views, views.clone()))
    assert v1.dtype == torch.float32 and v1.shape == (4, 3, SIZE, SIZE)
    assert not torch.equal(v1, v2_)
    ready = torch.rand(4, 3, SIZE, SIZE)
    assert module.finish_views((ready, ready))[0] is ready


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_views_on_the_gpu_match_the_cpu_pipeline_statistics():
    compare(OmegaConf.structured(AugmentConfig), "cuda")
