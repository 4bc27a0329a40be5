"""Encoders and heads: dimensions, stems, and torchvision compatibility."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torchvision import models as tv_models

from simclr.config.schema import HeadConfig
from simclr.models import build_head, feature_dim
from simclr.models.encoder import build_resnet

DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048}


@pytest.mark.parametrize("arch", list(DIMS))
@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_feature_dimension_for_every_depth_and_stem(arch, stem):
    encoder = build_resnet(arch, stem).eval()
    with torch.no_grad():
        out = encoder(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, DIMS[arch]) == (2, feature_dim(encoder))


def test_cifar_stem_is_3x3_stride_1_without_max_pool():
    encoder = build_resnet("resnet18", "cifar")
    assert encoder.conv1.kernel_size == (3, 3) and encoder.conv1.stride == (1, 1)
    assert isinstance(encoder.maxpool, torch.nn.Identity)
    # No downsampling in the stem: a 32-px image reaches layer4 at 4x4.
    x = encoder.layer4(
        encoder.layer3(
            encoder.layer2(
                encoder.layer1(
                    encoder.maxpool(
                        encoder.relu(encoder.bn1(encoder.conv1(torch.zeros(1, 3, 32, 32))))
                    )
                )
            )
        )
    )
    assert x.shape[-1] == 4


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_state_dict_loads_into_torchvision_resnet(arch):
    ours = build_resnet(arch, "imagenet").eval()
    theirs = getattr(tv_models, arch)()
    theirs.fc = torch.nn.Identity()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


@pytest.mark.parametrize("version,linears", [("v1", 2), ("v2", 3)])
def test_head_layers_and_output(version, linears):
    cfg = OmegaConf.merge(OmegaConf.structured(HeadConfig), {"version": version})
    head = build_head(cfg, 512)
    assert sum(isinstance(m, torch.nn.Linear) for m in head.modules()) == linears
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules()) == linears
    assert head(torch.randn(4, 512)).shape == (4, 128)


def test_timm_backbone_gives_pooled_features_and_feature_dim():
    from simclr.models import build_encoder

    cfg = OmegaConf.create({"arch": "timm", "timm_name": "resnet10t", "stem": "imagenet"})
    encoder = build_encoder(cfg).eval()
    with torch.no_grad():
        out = encoder(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, feature_dim(encoder))


def test_unknown_timm_name_is_a_config_error():
    from simclr.errors import ConfigError
    from simclr.models import build_encoder

    cfg = OmegaConf.create({"arch": "timm", "timm_name": "no_such_net", "stem": "imagenet"})
    with pytest.raises(ConfigError, match="no_such_net"):
        build_encoder(cfg)
