"""The run config's defaults as plain data, and a saved config laid over them."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from simclr.config.schema import RunConfig


def default_config() -> dict[str, Any]:
    """Every RunConfig key with its default, as a plain dict."""
    plain = OmegaConf.to_container(OmegaConf.structured(RunConfig), resolve=True, enum_to_str=True)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}


def merged_config(saved: dict[str, Any]) -> DictConfig:
    """A saved config (e.g. a checkpoint's) over the defaults, as an OmegaConf node.

    Keys a newer schema added get their defaults, so old checkpoints stay readable;
    the node is untyped so that keys an older schema had are kept, not refused.
    """
    merged = OmegaConf.merge(OmegaConf.create(default_config()), OmegaConf.create(saved))
    assert isinstance(merged, DictConfig)
    return merged
