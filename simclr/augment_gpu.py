"""The colour half of the SimCLR views, batched on the device with kornia.augmentation.

``augment.backend=gpu`` splits each view in two. Data workers decode, crop and
flip (:func:`simclr.augment.build_crop_transform`) and hand over uint8 tensors;
this module then applies, to the whole batch at once on the GPU, what
:func:`simclr.augment.build_photometric_steps` does image by image on the CPU:
colour jitter (p, strength s), grayscale, Gaussian blur, then normalisation.

Every random parameter is drawn per sample, from the same distributions as
torchvision's: kornia's ``ColorJitter`` implements torchvision's four formulas,
``RandomGaussianBlur`` draws one sigma per sample with reflect padding. One
difference: torchvision shuffles the order of the four jitter steps for every
image, kornia once per batch; each image's order is still uniformly random.
tests/test_augment_gpu.py compares the statistics of both pipelines.
"""

from __future__ import annotations

from typing import Any

import kornia.augmentation as K
import torch
from torch import Tensor, nn

from simclr.augment import blur_kernel_size


class GpuViewAugment(nn.Module):
    """uint8 crops (B x 3 x H x W, any device) -> jittered, blurred, normalised float views.

    It has no parameters or buffers, so it adds nothing to checkpoints.
    """

    def __init__(self, cfg: Any, image_size: int) -> None:
        super().__init__()
        s = float(cfg.jitter_strength)
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

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"GpuViewAugment needs a uint8 batch B x 3 x H x W, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        x = self.steps(images.float().div_(255.0))
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std
