"""A randomly initialised encoder, ready to use like a loaded one (torch.hub without weights).

`random_encoder("resnet50")` is what `load_encoder` would return for the same
architecture with untrained weights: eval mode, `.transform` and `.meta`. The
preprocessing is that of weights trained elsewhere on the same architecture
(:mod:`simclr.hub.foreign`: torchvision's ImageNet recipe, 32 px for the CIFAR
stem, a timm model's pretrained config), so swapping in real weights later keeps
the input pipeline.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from simclr.hub.foreign import TIMM_PREFIX, from_foreign
from simclr.hub.loading import ready_encoder
from simclr.models.encoder import build_resnet, build_timm

ORIGIN = "random-init"


def random_encoder(arch: str, stem: str | None = None) -> nn.Module:
    """An untrained `arch` encoder (`resnet18` ... `resnet152`, or `timm:<name>`) in eval
    mode with `.transform` and `.meta` (`meta["origin"] == "random-init"`)."""
    if arch.startswith(TIMM_PREFIX):
        model = build_timm(arch[len(TIMM_PREFIX) :])
    else:
        stem = stem or "imagenet"
        model = build_resnet(arch, stem)
    source = Path(f"{ORIGIN} {arch}")
    weights = from_foreign(source, model.state_dict(), arch, stem)
    weights.origin = ORIGIN
    weights.config["preset"] = ORIGIN
    return ready_encoder(model, source, weights)
