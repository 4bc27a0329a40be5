"""Reading SimCLR checkpoints written by lightning-bolts 0.7.

Layout (recorded from real checkpoints, see tests/fixtures/README.md):

- `state_dict`: `encoder.<resnet keys>` for bolts' own ResNet copy, whose key
  names match torchvision's and which keeps an unused `encoder.fc`;
  `projection.model.{0,1,3}.*` for its head Linear(bias) - BN - ReLU - Linear(no bias),
  whose output bolts L2-normalises.
- `hyper_parameters`: the `SimCLR.__init__` arguments, among them `arch`
  (resnet18 | resnet50), `first_conv` (7x7/2 conv when true, else 3x3/1),
  `maxpool1` (max-pool when true, else a 1x1 pool = identity), `hidden_mlp`,
  `feat_dim`, `dataset`, `temperature`, `optimizer`, `learning_rate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from simclr.config.schema import default_config
from simclr.errors import CheckpointError
from simclr.hub.weights import STEM_NO_MAXPOOL, EncoderWeights
from simclr.models.encoder import RESNETS

CIFAR10_MEAN = [125.3 / 255, 123.0 / 255, 113.9 / 255]
CIFAR10_STD = [63.0 / 255, 62.1 / 255, 66.7 / 255]
STL10_MEAN, STL10_STD = [0.43, 0.42, 0.39], [0.27, 0.26, 0.27]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# bolts' evaluation transform: Resize(int(1.1 * side)), CenterCrop(side), normalise.
EVAL_RESIZE_FRACTION = 1 / 1.1
_DATASETS: dict[str, tuple[int, list[float], list[float]]] = {
    "cifar10": (32, CIFAR10_MEAN, CIFAR10_STD),
    "stl10": (96, STL10_MEAN, STL10_STD),
    "imagenet": (224, IMAGENET_MEAN, IMAGENET_STD),
}


def is_bolts_checkpoint(ckpt: dict[str, Any]) -> bool:
    """True for a checkpoint with bolts' SimCLR hyper-parameters and key layout."""
    hp = ckpt.get("hyper_parameters")
    keys = ckpt.get("state_dict", {})
    return (
        isinstance(hp, dict)
        and "arch" in hp
        and "config" not in hp
        and any(k.startswith("projection.model.") for k in keys)
    )


def _stem(path: Path, first_conv: bool, maxpool1: bool) -> str:
    if first_conv and maxpool1:
        return "imagenet"
    if not first_conv and not maxpool1:
        return "cifar"
    if first_conv:
        return STEM_NO_MAXPOOL
    raise CheckpointError(
        f"{path}: bolts first_conv=False with maxpool1=True is not supported; expected "
        "first_conv and maxpool1 both true (ImageNet stem), both false (CIFAR stem), "
        "or maxpool1=false alone (STL-10)"
    )


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _config(hp: dict[str, Any], arch: str, stem: str) -> dict[str, Any]:
    """Our RunConfig (as a dict) closest to a bolts run, so `.transform` and `.meta` work."""
    dataset = str(hp.get("dataset", "imagenet"))
    side, mean, std = _DATASETS.get(dataset, _DATASETS["imagenet"])
    cfg = default_config()
    cfg["data"].update(
        name=dataset if dataset in ("cifar10", "stl10") else "folder",
        image_size=int(hp.get("input_height") or side),
        batch_size=int(hp.get("batch_size", cfg["data"]["batch_size"])),
    )
    cfg["augment"].update(mean=mean, std=std, eval_resize_fraction=EVAL_RESIZE_FRACTION)
    if "jitter_strength" in hp:
        cfg["augment"]["jitter_strength"] = float(hp["jitter_strength"])
    if "gaussian_blur" in hp:
        cfg["augment"]["blur_p"] = 0.5 if hp["gaussian_blur"] else 0.0
    cfg["encoder"].update(arch=arch, stem=stem)
    cfg["head"].update(
        version="v1",
        hidden_dim=int(hp.get("hidden_mlp", 2048)),
        output_dim=int(hp.get("feat_dim", 128)),
    )
    cfg["loss"]["temperature"] = float(hp.get("temperature", 0.1))
    cfg["optim"].update(
        name="lars" if hp.get("optimizer") == "lars" else "adamw",
        lr=float(hp.get("learning_rate", cfg["optim"]["lr"])),
        weight_decay=float(hp.get("weight_decay", cfg["optim"]["weight_decay"])),
    )
    cfg["trainer"]["max_epochs"] = int(hp.get("max_epochs", cfg["trainer"]["max_epochs"]))
    cfg["preset"] = "lightning-bolts"
    return cfg


def from_bolts_checkpoint(path: Path, ckpt: dict[str, Any]) -> EncoderWeights:
    """EncoderWeights from a lightning-bolts 0.7 SimCLR checkpoint."""
    hp = dict(ckpt["hyper_parameters"])
    arch = str(hp["arch"])
    if arch not in RESNETS:
        raise CheckpointError(f"{path}: bolts arch={arch!r}; expected one of {', '.join(RESNETS)}")
    stem = _stem(path, bool(hp.get("first_conv", True)), bool(hp.get("maxpool1", True)))
    encoder: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    for key, value in ckpt["state_dict"].items():
        if key.startswith("encoder.fc."):
            continue  # bolts' ResNet keeps a classifier it never calls
        if key.startswith("encoder."):
            encoder[key[len("encoder.") :]] = value
        elif key.startswith("projection."):
            head[key[len("projection.") :]] = value
    return EncoderWeights(
        arch=arch,
        stem=stem,
        encoder_state=encoder,
        config=_config(hp, arch, stem),
        origin="lightning-bolts",
        head_kind="bolts" if head else "none",
        head_state=head or None,
        extra={
            "bolts_hparams": {k: v for k, v in hp.items() if _plain(v)},
            "epoch": ckpt.get("epoch"),
            "global_step": ckpt.get("global_step"),
            "pytorch-lightning_version": ckpt.get("pytorch-lightning_version"),
        },
    )
