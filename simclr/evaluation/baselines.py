"""The representations an evaluation compares: the encoder and its baselines.

`random_init` (the same architecture, untrained) and `raw_pixels` (the
eval-transformed image itself) are the floors the SimCLR features must clear;
`supervised` (trained from scratch on the labels) is a fine-tuning baseline and
is built by the protocol, not here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from simclr.evaluation.features import RawPixels, checkpoint_identity, weights_identity


def random_init_encoder(cfg: DictConfig) -> nn.Module:
    """The encoder architecture of `cfg`, initialised from `eval.random_init_seed`."""
    from simclr.models import build_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.eval.random_init_seed))
        return build_encoder(cfg.encoder)


def representations(
    encoder: nn.Module, cfg: DictConfig, checkpoint_path: Path | None
) -> dict[str, tuple[nn.Module, str]]:
    """name -> (model mapping eval images to features, identity for the cache key)."""
    ev = cfg.eval
    simclr_id = (
        checkpoint_identity(checkpoint_path) if checkpoint_path else weights_identity(encoder)
    )
    reps = {"simclr": (encoder, simclr_id)}
    if "random_init" in ev.baselines:
        random = random_init_encoder(cfg)
        reps["random_init"] = (random, f"random_init:{weights_identity(random)}")
    if "raw_pixels" in ev.baselines:
        reps["raw_pixels"] = (
            RawPixels(int(ev.raw_pixels_size)),
            f"raw_pixels:{ev.raw_pixels_size}",
        )
    return reps
