"""Weights from other toolkits: features equal to the source model's, or one clear line.

The sources are built here from the toolkits' own classes: torchvision's ResNets,
timm's models (its tiny `test_resnet`), and for lightly (not installed, and not to be)
the backbone exactly as lightly's docs build it from torchvision,
`nn.Sequential(*list(resnet.children())[:-1])`, saved as its examples and its SimCLR
tutorial save it (`backbone.state_dict()`, `{"resnet18_parameters": ...}`, or the
state dict of a module holding `backbone` and `projection_head`).
"""

from __future__ import annotations

import argparse
import importlib.util

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from simclr.errors import CheckpointError
from simclr.hub import export_encoder, load_encoder
from simclr.hub.foreign import LAYOUTS_TRIED
from tests.conftest import REPO
from tests.support.hub_helpers import randomise_buffers


def _images(side: int, n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(side))


def _torchvision(arch: str = "resnet18", cifar: bool = False) -> nn.Module:
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=10)
    if cifar:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    randomise_buffers(model)
    return model.eval()


def _features_of_torchvision(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pooled features before `fc`, by torchvision's own forward with fc removed."""
    fc, model.fc = model.fc, nn.Identity()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.fc = fc


def _same(encoder: nn.Module, expected: torch.Tensor, x: torch.Tensor) -> None:
    with torch.no_grad():
        got = encoder(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cifar", [False, True], ids=["imagenet-stem", "cifar-stem"])
@pytest.mark.parametrize("container", ["pth", "pt-wrapped", "safetensors", "ddp-prefix"])
def test_torchvision_state_dict(tmp_path, cifar, container):
    model = _torchvision(cifar=cifar)
    state = model.state_dict()
    if container == "pth":
        path = tmp_path / "resnet18.pth"
        torch.save(state, path)
    elif container == "pt-wrapped":
        path = tmp_path / "resnet18.pt"
        torch.save({"state_dict": state, "epoch": 7}, path)
    elif container == "safetensors":
        path = tmp_path / "resnet18.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        path = tmp_path / "resnet18.pth"
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    encoder = load_encoder(path, arch="resnet18")  # the stem follows conv1's kernel
    x = _images(32 if cifar else 64)
    _same(encoder, _features_of_torchvision(model, x), x)
    assert encoder.meta["origin"] == "torchvision"
    assert encoder.meta["stem"] == ("cifar" if cifar else "imagenet")
    if container == "pt-wrapped":
        assert encoder.meta["epoch"] == 7
    crop = encoder.transform.transforms[2].size  # torchvision's recipe: 256 -> 224
    assert list(crop) == ([32, 32] if cifar else [224, 224])


def test_torchvision_resnet50_and_a_given_stem(tmp_path):
    model = _torchvision("resnet50")
    torch.save(model.state_dict(), tmp_path / "r50.pth")
    encoder = load_encoder(tmp_path / "r50.pth", arch="resnet50", stem="imagenet")
    x = _images(64, n=2)
    _same(encoder, _features_of_torchvision(model, x), x)
    assert encoder.meta["feature_dim"] == 2048


def _lightly_backbone(cifar: bool = False) -> nn.Sequential:
    resnet = _torchvision(cifar=cifar)
    return nn.Sequential(*list(resnet.children())[:-1]).eval()


class LightlySimCLR(nn.Module):
    """The module of lightly's SimCLR example; the head has lightly's key layout
    (`layers.0` Linear without bias before BatchNorm `layers.1`, ReLU, `layers.3`, `layers.4`)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection_head = nn.Module()
        self.projection_head.layers = nn.Sequential(
            nn.Linear(512, 512, bias=False),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, 128, bias=False),
            nn.BatchNorm1d(128),
        )


@pytest.mark.parametrize("saved", ["backbone", "tutorial", "module", "lightning"])
def test_lightly_backbone(tmp_path, saved):
    backbone = _lightly_backbone(cifar=saved == "module")
    path = tmp_path / "lightly.pth"
    if saved == "backbone":  # lightly's examples
        torch.save(backbone.state_dict(), path)
        assert {"0.weight", "1.running_mean", "4.0.conv1.weight"} <= set(backbone.state_dict())
    elif saved == "tutorial":  # lightly's SimCLR tutorial
        torch.save({"resnet18_parameters": backbone.state_dict()}, path)
    elif saved == "module":
        torch.save(LightlySimCLR(backbone).state_dict(), path)
    else:  # the Lightning checkpoint of a lightly LightningModule
        state = LightlySimCLR(backbone).state_dict()
        torch.save({"state_dict": state, "epoch": 2, "global_step": 20}, path)
    encoder = load_encoder(path, arch="resnet18")
    x = _images(32)
    with torch.no_grad():
        expected = backbone(x).flatten(start_dim=1)
    _same(encoder, expected, x)
    assert encoder.meta["origin"] == "lightly"
    if saved == "lightning":
        assert (encoder.meta["epoch"], encoder.meta["global_step"]) == (2, 20)


def _timm_model() -> nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=7)
    randomise_buffers(model)
    return model.eval()


@pytest.mark.parametrize("saved", ["state-dict", "hub-safetensors", "train-checkpoint"])
def test_timm_checkpoint(tmp_path, saved):
    model = _timm_model()
    state = model.state_dict()
    if saved == "state-dict":
        path = tmp_path / "pytorch_model.bin"
        torch.save(state, path)
    elif saved == "hub-safetensors":
        path = tmp_path / "model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path), {"format": "pt"})
    else:  # timm's train.py: CheckpointSaver stores `args` as an argparse.Namespace
        path = tmp_path / "checkpoint-3.pth.tar"
        args = argparse.Namespace(model="test_resnet", lr=0.1, epochs=5)
        ckpt = {"epoch": 3, "arch": "test_resnet", "state_dict": state, "args": args}
        torch.save({**ckpt, "version": 2}, path)
    encoder = load_encoder(path, arch="timm:test_resnet")
    x = _images(32)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
    _same(encoder, expected, x)
    assert (encoder.meta["origin"], encoder.meta["timm_name"]) == ("timm", "test_resnet")
    # The pretrained config's evaluation recipe: 160 px, crop_pct 0.95, mean/std 0.5.
    resize, crop = encoder.transform.transforms[1:3]
    assert list(crop.size) == [160, 160] and resize.size == [round(160 / 0.95)]
    if saved == "train-checkpoint":
        assert encoder.meta["epoch"] == 3


def test_hubconf_timm_entry(tmp_path):
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    model = _timm_model()
    torch.save(model.state_dict(), tmp_path / "m.pth")
    encoder = hubconf.simclr_timm("test_resnet", weights=tmp_path / "m.pth")
    x = _images(32)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
    _same(encoder, expected, x)
    assert hubconf.simclr_timm("test_resnet").feature_dim == encoder.meta["feature_dim"]
    with pytest.raises(CheckpointError, match="holds a timm test_resnet; expected timm:resnet18"):
        hubconf.simclr_timm(
            "resnet18",
            weights=export_encoder(
                tmp_path / "m.pth", tmp_path / "m.safetensors", arch="timm:test_resnet"
            ),
        )


def test_export_records_what_the_caller_said(tmp_path):
    model = _torchvision(cifar=True)
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    out = export_encoder(tmp_path / "r18.pth", tmp_path / "r18.safetensors", arch="resnet18")
    encoder = load_encoder(out)  # no arch needed any more: the export records it
    x = _images(32)
    _same(encoder, _features_of_torchvision(model, x), x)
    assert (encoder.meta["arch"], encoder.meta["stem"]) == ("resnet18", "cifar")


def _one_line(err: pytest.ExceptionInfo[CheckpointError], *named: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for text in named:
        assert text in message, (text, message)


def test_unknown_layout_says_which_layouts_were_tried(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder_q.conv.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path, arch="resnet18")
    _one_line(err, str(path), "simclr-pretrain", "simclr-export", "'encoder_q.conv.weight'")
    _one_line(err, *LAYOUTS_TRIED)


def test_foreign_weights_need_an_architecture(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(_torchvision().state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, str(path), "records no architecture; pass arch=", "resnet50")
    with pytest.raises(CheckpointError) as err:
        load_encoder(path, arch="resnet34")
    _one_line(err, str(path), "do not fit a resnet34")
    with pytest.raises(CheckpointError) as err:
        load_encoder(path, arch="timm:no_such_model_xyz")
    _one_line(err, str(path), "names no timm model")


def test_a_plain_state_dict_is_read_weights_only(tmp_path):
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(tmp_path / "pwned"), "w"))

    path = tmp_path / "r18.pth"
    torch.save({**_torchvision().state_dict(), "evil": Payload()}, path)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path, arch="resnet18")
    _one_line(err, str(path), "refused")
    assert not (tmp_path / "pwned").exists()
