"""Encoders: torchvision ResNets (optionally with the CIFAR stem) and timm backbones.

The ResNet encoder *is* a `torchvision.models.ResNet` with `fc` replaced by
`nn.Identity`, so its state dict (all keys but `fc`) loads into the matching
`torchvision.models.resnetXX()` unchanged. The CIFAR stem swaps `conv1` for a
3x3 stride-1 convolution and `maxpool` for an identity, keeping the key names.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models as tv_models

from simclr.config.choices import EncoderArch, EncoderStem
from simclr.config.schema import EncoderConfig
from simclr.errors import ConfigError
from simclr.models.inference import encode

# Every `encoder.arch` but timm is a torchvision constructor of the same name.
RESNETS: dict[EncoderArch, Callable[..., tv_models.ResNet]] = {
    arch: getattr(tv_models, arch.value) for arch in EncoderArch if arch is not EncoderArch.timm
}


def cifar_stem(model: tv_models.ResNet) -> tv_models.ResNet:
    """Replace the 7x7/2 conv + max-pool stem with a 3x3/1 conv and no pooling."""
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()  # type: ignore[assignment]
    return model


def build_resnet(arch: str, stem: str = "imagenet", zero_init_residual: bool = False) -> nn.Module:
    """A randomly initialised torchvision ResNet with `fc` removed.

    The returned module has a `feature_dim` attribute (512 or 2048).
    """
    if arch not in RESNETS:
        raise ConfigError(f"encoder.arch={arch!r} is not one of {', '.join(RESNETS)}")
    stem = EncoderStem.parse(stem, "encoder.stem")
    model = RESNETS[EncoderArch(arch)](weights=None, zero_init_residual=zero_init_residual)
    if stem is EncoderStem.cifar:
        cifar_stem(model)
    elif stem is EncoderStem.imagenet_nomaxpool:
        model.maxpool = nn.Identity()  # type: ignore[assignment]
    dim = model.fc.in_features
    model.fc = nn.Identity()  # type: ignore[assignment]
    model.feature_dim = dim  # type: ignore[assignment]
    return model


def build_timm(name: str) -> nn.Module:
    """A randomly initialised timm backbone that returns pooled features."""
    import timm

    try:
        model = timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as err:  # timm raises RuntimeError for unknown names
        raise ConfigError(f"encoder.timm_name={name!r}: {err}") from None
    model.feature_dim = int(model.num_features)  # type: ignore[assignment,arg-type]
    return model


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    """Build the encoder described by an `encoder` config node (or dataclass)."""
    if cfg.arch == EncoderArch.timm:
        if not cfg.timm_name:
            raise ConfigError("encoder.timm_name is not set: encoder.arch=timm needs a model name")
        return build_timm(cfg.timm_name)
    return build_resnet(cfg.arch, cfg.stem, bool(getattr(cfg, "zero_init_residual", False)))


def feature_dim(encoder: nn.Module) -> int:
    """The dimension of the encoder's output features."""
    dim = getattr(encoder, "feature_dim", None)
    if dim is None:
        raise ValueError("encoder has no feature_dim attribute; build it with build_encoder")
    return int(dim)


def infer_feature_dim(encoder: nn.Module, image_size: int) -> int:
    """Feature dimension measured by a forward pass (for encoders built elsewhere)."""
    return int(encode(encoder, [torch.zeros(1, 3, image_size, image_size)]).shape[-1])
