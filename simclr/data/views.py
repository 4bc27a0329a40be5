"""The SimCLR view pipeline and the evaluation transform (torchvision.transforms.v2).

Defaults follow Chen et al. 2020 (appendix A): random resized crop (area
0.08–1, aspect 3/4–4/3), horizontal flip, colour jitter (0.8s, 0.8s, 0.8s, 0.2s)
with p=0.8, grayscale with p=0.2, Gaussian blur (kernel ~10% of the side,
sigma 0.1–2.0) with p=0.5, then normalisation. The presets in conf/augment/
set s and switch blur off for 32-px data.

Images smaller than the crop are upsampled by the resize step of the crop.

The colour half of the SimCLR views, batched on the device with kornia.augmentation.

``augment.backend=gpu`` splits each view in two. Data workers decode, crop and
flip (:func:`simclr.data.views.build_crop_transform`) and hand over uint8 tensors;
this module then applies, to the whole batch at once on the GPU, what
:func:`simclr.data.views.build_photometric_steps` does image by image on the CPU:
colour jitter (p, strength s), grayscale, Gaussian blur, then normalisation.

Every random parameter is drawn per sample, from the same distributions as
torchvision's: kornia's ``ColorJitter`` implements torchvision's four formulas,
``RandomGaussianBlur`` draws one sigma per sample with reflect padding. One
difference: torchvision shuffles the order of the four jitter steps for every
image, kornia once per batch; each image's order is still uniformly random.
tests/unit/data/test_gpu_views.py compares the statistics of both pipelines.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from PIL import Image
from torch import Tensor, nn
from torchvision.transforms import v2

from simclr.config.schema import AugmentConfig


def blur_kernel_size(image_size: int, fraction: float = 0.1) -> int:
    """Odd kernel side closest to `fraction` of the image (at least 3)."""
    k = max(3, round(image_size * fraction))
    return k if k % 2 == 1 else k + 1


def _to_float_normalised(cfg: AugmentConfig) -> list[v2.Transform]:
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
    ]


def build_crop_transform(cfg: AugmentConfig, image_size: int) -> v2.Compose:
    """The geometric half of a view: random resized crop and flip, kept in uint8.

    With ``augment.backend=gpu`` this is all the data workers do: the crop has to
    see the image at its own size (so it runs before batching), while the colour
    and blur steps run batched on the device (:mod:`simclr.data.views`). uint8
    also moves four times fewer bytes to the device than float32.
    """
    steps: list[v2.Transform] = [
        v2.ToImage(),
        v2.RandomResizedCrop(
            image_size,
            scale=tuple(cfg.crop_scale),
            ratio=tuple(cfg.crop_ratio),
            antialias=True,
        ),
    ]
    if cfg.hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=cfg.hflip_p))
    return v2.Compose([*steps, v2.ToPureTensor()])


def build_photometric_steps(cfg: AugmentConfig, image_size: int) -> list[v2.Transform]:
    """Colour jitter, grayscale and blur (on CHW images, before normalisation)."""
    s = cfg.jitter_strength
    steps: list[v2.Transform] = []
    if cfg.jitter_p > 0 and s > 0:
        jitter = v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
        steps.append(v2.RandomApply([jitter], p=cfg.jitter_p))
    if cfg.grayscale_p > 0:
        steps.append(v2.RandomGrayscale(p=cfg.grayscale_p))
    if cfg.blur_p > 0:
        kernel = blur_kernel_size(image_size, cfg.blur_kernel_fraction)
        blur = v2.GaussianBlur(kernel, sigma=tuple(cfg.blur_sigma))
        steps.append(v2.RandomApply([blur], p=cfg.blur_p))
    return steps


def build_view_transform(cfg: AugmentConfig, image_size: int) -> v2.Compose:
    """One random SimCLR view: PIL image (or uint8 tensor) -> normalised float tensor."""
    crop = build_crop_transform(cfg, image_size).transforms[:-1]  # stays a tv_tensors.Image
    steps = [*crop, *build_photometric_steps(cfg, image_size)]
    return v2.Compose(steps + _to_float_normalised(cfg))


def build_eval_transform(cfg: AugmentConfig, image_size: int) -> v2.Compose:
    """Deterministic evaluation transform: resize, center crop, normalise."""
    resize_to = round(image_size / float(getattr(cfg, "eval_resize_fraction", 1.0)))
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(resize_to, antialias=True),
            v2.CenterCrop(image_size),
            *_to_float_normalised(cfg),
        ]
    )


class TwoViews:
    """Apply the same random transform twice, independently, to one image."""

    def __init__(self, transform: v2.Transform) -> None:
        self.transform = transform

    def __call__(self, image: Image.Image | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(image), self.transform(image)

    def __repr__(self) -> str:
        return f"TwoViews({self.transform!r})"


class GpuViewAugment(nn.Module):
    """uint8 crops (B x 3 x H x W, any device) -> jittered, blurred, normalised float views.

    It has no parameters or buffers, so it adds nothing to checkpoints.
    """

    def __init__(self, cfg: AugmentConfig, image_size: int) -> None:
        super().__init__()
        s = cfg.jitter_strength
        steps: list[nn.Module] = []
        if cfg.jitter_p > 0 and s > 0:
            steps.append(K.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=cfg.jitter_p))
        if cfg.grayscale_p > 0:
            steps.append(K.RandomGrayscale(p=cfg.grayscale_p))
        if cfg.blur_p > 0:
            kernel = blur_kernel_size(image_size, cfg.blur_kernel_fraction)
            sigma = (float(cfg.blur_sigma[0]), float(cfg.blur_sigma[1]))
            steps.append(K.RandomGaussianBlur((kernel, kernel), sigma, p=cfg.blur_p))
        self.steps = nn.Sequential(*steps)
        # Plain attributes, not buffers: checkpoints hold only encoder and head weights.
        self.mean = tuple(float(m) for m in cfg.mean)
        self.std = tuple(float(v) for v in cfg.std)
        # Made once per device and dtype: a tensor built from a list on CUDA is a
        # blocking host-to-device copy, which would make every step wait.
        self._normalise: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"GpuViewAugment needs a uint8 batch B x 3 x H x W, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        x = self.steps(images.float().div_(255.0))
        key = (x.device, x.dtype)
        if key not in self._normalise:
            self._normalise[key] = tuple(  # type: ignore[assignment]
                torch.tensor(v, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
                for v in (self.mean, self.std)
            )
        mean, std = self._normalise[key]
        return (x - mean) / std
