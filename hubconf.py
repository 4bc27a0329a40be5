"""torch.hub entry points: SimCLR ResNet encoders from a clone of this repository.

    encoder = torch.hub.load(repo_dir, "simclr_resnet50", source="local",
                             weights="resnet50_simclr.safetensors")

    encoder = torch.hub.load(repo_dir, "simclr_timm", source="local",
                             name="convnext_tiny", weights="checkpoint.pth.tar")

`weights` is a file written by `simclr-export` (a run directory or `.ckpt` works
too, and so do a plain torchvision ResNet state dict, a lightly backbone or a timm
checkpoint, see docs/hub.md); without it the encoder is randomly initialised. The
encoder is a torchvision ResNet with `fc` = identity (or a timm backbone without
its classifier), in eval mode and carrying `.transform` and `.meta`, as
`load_encoder` returns it (without weights: the preprocessing of that architecture's
usual weights, `meta["origin"] == "random-init"`). A file holding another depth,
stem or timm model is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

dependencies = ["torch", "torchvision", "safetensors", "omegaconf", "timm"]


def _encoder(arch: str, weights: str | Path | None, stem: str | None, with_head: bool) -> Any:
    from simclr.hub import load_encoder

    if weights is None:
        return _random(arch, stem, with_head)
    return load_encoder(weights, arch=arch, stem=stem, with_head=with_head)


def _random(arch: str, stem: str | None, with_head: bool) -> Any:
    from simclr.errors import ConfigError
    from simclr.hub.loading import random_encoder

    if with_head:
        raise ConfigError("with_head=True needs weights=: a random head would mean nothing")
    return random_encoder(arch, stem)


def simclr_resnet18(
    weights: str | Path | None = None, stem: str | None = None, with_head: bool = False
) -> Any:
    """SimCLR ResNet-18 encoder (512-d features)."""
    return _encoder("resnet18", weights, stem, with_head)


def simclr_resnet34(
    weights: str | Path | None = None, stem: str | None = None, with_head: bool = False
) -> Any:
    """SimCLR ResNet-34 encoder (512-d features)."""
    return _encoder("resnet34", weights, stem, with_head)


def simclr_resnet50(
    weights: str | Path | None = None, stem: str | None = None, with_head: bool = False
) -> Any:
    """SimCLR ResNet-50 encoder (2048-d features)."""
    return _encoder("resnet50", weights, stem, with_head)


def simclr_resnet101(
    weights: str | Path | None = None, stem: str | None = None, with_head: bool = False
) -> Any:
    """SimCLR ResNet-101 encoder (2048-d features)."""
    return _encoder("resnet101", weights, stem, with_head)


def simclr_resnet152(
    weights: str | Path | None = None, stem: str | None = None, with_head: bool = False
) -> Any:
    """SimCLR ResNet-152 encoder (2048-d features)."""
    return _encoder("resnet152", weights, stem, with_head)


def simclr_timm(name: str, weights: str | Path | None = None, with_head: bool = False) -> Any:
    """A timm backbone `name` returning pooled features (no classifier), from a
    simclr run with `encoder=timm` or a timm checkpoint of that model."""
    from simclr.hub import load_encoder
    from simclr.hub.foreign import TIMM_PREFIX

    if weights is None:
        return _random(f"{TIMM_PREFIX}{name}", None, with_head)
    return load_encoder(weights, arch=f"{TIMM_PREFIX}{name}", with_head=with_head)
