"""Encoder weights written by other toolkits: torchvision, lightly, timm.

Such files record no architecture, so the caller names it (`arch=`, and `stem=`
where the key names cannot tell); the layout is recognised from the key names:

- torchvision ResNet: `torch.save(resnet.state_dict(), "x.pth")`, or the same tensors
  in a `.safetensors` file without simclr metadata. Keys `conv1.weight`, `bn1.*`,
  `layer1.0.conv1.weight`, ...; the classifier `fc.*` is dropped.
- lightly: the backbone lightly's docs build, `nn.Sequential(*list(resnet.children())[:-1])`
  of a torchvision ResNet, saved as `torch.save(backbone.state_dict(), path)`: keys
  `0.weight` (conv1), `1.*` (bn1), `4.0.conv1.weight` (children 4-7 are layer1-4);
  also wrapped as `{"resnet18_parameters": backbone.state_dict()}` (lightly's SimCLR
  tutorial), or under `backbone.` in the state dict of a module holding `backbone`
  and `projection_head` (lightly's examples). The projection head is not read.
- timm (`arch="timm:<name>"`): `model.state_dict()`, the hub's `model.safetensors`, or
  a timm train.py checkpoint (`state_dict` beside `epoch`, `arch`, `args`); the
  classifier named by the model's pretrained config is dropped.

Preprocessing for `.transform` and exports: a torchvision/lightly ResNet gets the
ImageNet statistics with torchvision's evaluation recipe (resize 256, crop 224) for
the ImageNet stem, 32 px for the CIFAR stem; a timm model gets its pretrained config's
input size, crop fraction, mean and std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from simclr.config.schema import IMAGENET_MEAN, IMAGENET_STD, default_config
from simclr.errors import CheckpointError
from simclr.hub.weights import STEMS, EncoderWeights, _strip_compiled
from simclr.models.encoder import RESNETS

TIMM_PREFIX = "timm:"
# What the unknown-layout message lists: every reader load_encoder tries, in order.
LAYOUTS_TRIED = (
    "lightning-bolts SimCLR checkpoint",
    "torchvision ResNet state dict",
    "lightly backbone (nn.Sequential of a torchvision ResNet)",
    f"timm state dict (with arch='{TIMM_PREFIX}<name>')",
)
# Containers torch.save'd around a state dict by common training scripts.
_WRAPPER_KEYS = ("state_dict", "model")
# The children of a torchvision ResNet that hold weights, by their index in
# `nn.Sequential(*list(resnet.children())[:-1])` (2 is the ReLU, 3 the max-pool, 8 the pool).
_SEQUENTIAL_CHILDREN = {
    "0": "conv1",
    "1": "bn1",
    "4": "layer1",
    "5": "layer2",
    "6": "layer3",
    "7": "layer4",
}
# torchvision's evaluation recipe for ImageNet weights: resize to 256, center-crop 224.
_IMAGENET_SIDE, _IMAGENET_RESIZE = 224, 256
_CIFAR_SIDE = 32


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): v for k, v in obj.items()}
    return None


def unwrap(obj: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict inside what `torch.load` returned, and the container around it."""
    state = _tensor_dict(obj)
    if state is not None:
        return state, {}
    if not isinstance(obj, dict):
        return {}, {}
    for key in _WRAPPER_KEYS:
        state = _tensor_dict(obj.get(key))
        if state is not None:
            return state, obj
    nested = [s for s in map(_tensor_dict, obj.values()) if s is not None]
    if len(nested) == 1:  # e.g. lightly's {"resnet18_parameters": backbone.state_dict()}
        return nested[0], obj
    return {}, obj


def _clean(key: str) -> str:
    # DataParallel/DDP wrap the model as `module`; torch.compile as `_orig_mod`.
    key = _strip_compiled(key)
    return key[len("module.") :] if key.startswith("module.") else key


def unknown_layout(path: Path, state: dict[str, torch.Tensor]) -> CheckpointError:
    """The one-line error for weights no reader recognises."""
    seen = f"{len(state)} tensors, first {next(iter(state))!r}" if state else "no tensors"
    return CheckpointError(
        f"{path}: written by neither simclr-pretrain nor simclr-export, and in no other known "
        f"layout ({seen}); tried: {', '.join(LAYOUTS_TRIED)}"
    )


def _provenance(container: dict[str, Any]) -> dict[str, Any]:
    keep = ("epoch", "global_step", "arch")
    return {k: container[k] for k in keep if isinstance(container.get(k), (int, float, str))}


def _config(
    arch: str, stem: str, side: int, fraction: float, mean: Any, std: Any, origin: str
) -> dict[str, Any]:
    """Our RunConfig (as a dict) for weights trained elsewhere, so `.transform` and the
    exports' preprocessing follow the toolkit's evaluation recipe."""
    cfg = default_config()
    cfg["encoder"].update(arch=arch, stem=stem)
    cfg["data"].update(name="folder", image_size=int(side))
    cfg["augment"].update(
        mean=[float(m) for m in mean],
        std=[float(s) for s in std],
        eval_resize_fraction=float(fraction),
    )
    cfg["preset"] = origin
    return cfg


def _resnet_key(sequential_key: str) -> str:
    """`4.0.conv1.weight` -> `layer1.0.conv1.weight` (unknown children keep their index,
    so they show up as unexpected keys)."""
    child, _, rest = sequential_key.partition(".")
    return f"{_SEQUENTIAL_CHILDREN.get(child, child)}.{rest}"


def _resnet(
    path: Path,
    state: dict[str, torch.Tensor],
    container: dict[str, Any],
    arch: str | None,
    stem: str | None,
) -> EncoderWeights:
    origin = "torchvision"
    if any(k.startswith("backbone.") for k in state):  # a module holding backbone + head
        state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
        origin = "lightly"
    if "0.weight" in state and any(k.startswith("4.0.") for k in state):
        state = {_resnet_key(k): v for k, v in state.items()}
        origin = "lightly"
    if "conv1.weight" not in state or not any(k.startswith("layer1.") for k in state):
        raise unknown_layout(path, state)
    if arch is None:
        raise CheckpointError(
            f"{path}: a {origin} ResNet state dict records no architecture; pass arch= "
            f"(one of {', '.join(RESNETS)})"
        )
    if arch not in RESNETS:
        raise CheckpointError(
            f"{path}: arch={arch!r} for a {origin} ResNet state dict; expected one of "
            f"{', '.join(RESNETS)}, or '{TIMM_PREFIX}<name>' for timm weights"
        )
    # A 3x3 first conv only fits the CIFAR stem; a 7x7 one the ImageNet stem (or bolts'
    # STL-10 variant, which only the caller can name).
    stem = stem or ("cifar" if state["conv1.weight"].shape[-1] == 3 else "imagenet")
    if stem not in STEMS:
        raise CheckpointError(f"{path}: stem={stem!r}; expected one of {', '.join(STEMS)}")
    encoder = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if stem == "cifar":
        side, fraction = _CIFAR_SIDE, 1.0
    else:
        side, fraction = _IMAGENET_SIDE, _IMAGENET_SIDE / _IMAGENET_RESIZE
    config = _config(arch, stem, side, fraction, IMAGENET_MEAN, IMAGENET_STD, origin)
    return EncoderWeights(arch, stem, encoder, config, origin=origin, extra=_provenance(container))


def _timm(
    path: Path, state: dict[str, torch.Tensor], container: dict[str, Any], name: str
) -> EncoderWeights:
    import timm

    if not name or not timm.is_model(name):
        raise CheckpointError(
            f"{path}: arch='{TIMM_PREFIX}{name}' names no timm model; expected "
            f"'{TIMM_PREFIX}<name>' with a name from timm.list_models()"
        )
    if not state:
        raise unknown_layout(path, state)
    pretrained = timm.models.get_pretrained_cfg(name)
    data = pretrained.to_dict() if pretrained is not None else {}
    classifier = data.get("classifier") or ()
    # The encoder is built without a classifier (num_classes=0), so its weights go.
    drop = tuple(f"{c}." for c in ([classifier] if isinstance(classifier, str) else classifier))
    encoder = {k: v for k, v in state.items() if not (drop and k.startswith(drop))}
    config = _config(
        "timm",
        "imagenet",
        int(data.get("input_size", (3, _IMAGENET_SIDE, _IMAGENET_SIDE))[-1]),
        float(data.get("crop_pct") or 1.0),
        data.get("mean") or IMAGENET_MEAN,
        data.get("std") or IMAGENET_STD,
        "timm",
    )
    config["encoder"]["timm_name"] = name
    return EncoderWeights(
        "timm", "imagenet", encoder, config, origin="timm", extra=_provenance(container)
    )


def from_foreign(path: Path, obj: Any, arch: str | None, stem: str | None) -> EncoderWeights:
    """EncoderWeights from a torchvision, lightly or timm file (see the module docstring).

    Args:
        obj: what `torch.load(weights_only=True)` returned, or a safetensors file's tensors.
        arch, stem: what the caller says the weights are (`arch="timm:<name>"` for timm).
    """
    state, container = unwrap(obj)
    state = {_clean(k): v for k, v in state.items()}
    if arch is not None and (arch == "timm" or arch.startswith(TIMM_PREFIX)):
        return _timm(path, state, container, arch[len(TIMM_PREFIX) :])
    return _resnet(path, state, container, arch, stem)
