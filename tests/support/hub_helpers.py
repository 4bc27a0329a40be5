"""Checkpoints shaped like simclr-pretrain's, built without training (for the hub tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from simclr.config.schema import RunConfig
from simclr.models.encoder import build_encoder
from simclr.models.head import build_head


def run_config(arch: str = "resnet18", stem: str = "cifar", image_size: int = 32) -> dict[str, Any]:
    """The default RunConfig as a plain dict, with the encoder and size asked for."""
    cfg = OmegaConf.to_container(OmegaConf.structured(RunConfig), resolve=True, enum_to_str=True)
    assert isinstance(cfg, dict)
    cfg["encoder"].update(arch=arch, stem=stem)
    cfg["data"].update(name="cifar10", image_size=image_size)
    cfg["head"].update(version="v2", output_dim=16)
    return cfg


def randomise_buffers(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, so a missed buffer shows in the features."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def make_model(cfg: dict[str, Any], seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Encoder and head exactly as the training module builds them, with random weights."""
    torch.manual_seed(seed)
    node = OmegaConf.create(cfg)
    encoder = build_encoder(node.encoder)
    head = build_head(node.head, encoder.feature_dim)
    randomise_buffers(encoder, seed)
    randomise_buffers(head, seed + 1)
    return encoder.eval(), head.eval()


def save_checkpoint(path: Path, encoder: nn.Module, head: nn.Module, cfg: dict[str, Any]) -> Path:
    """A Lightning-like checkpoint with the keys simclr-pretrain writes."""
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": {"config": cfg},
            "pytorch-lightning_version": "2.6.6",
            "epoch": 0,
            "global_step": 0,
        },
        path,
    )
    return path


def make_checkpoint(
    path: Path, arch: str = "resnet18", stem: str = "cifar", seed: int = 0
) -> tuple[Path, nn.Module, nn.Module]:
    """Build a random model, save it to `path`, and return (path, encoder, head)."""
    cfg = run_config(arch, stem)
    encoder, head = make_model(cfg, seed)
    return save_checkpoint(path, encoder, head, cfg), encoder, head
