"""Deployment exports (ONNX, TorchScript): the traced encoder plus what it needs to be used.

Both formats hold the encoder alone, float32 on the CPU, in eval mode (BatchNorm
uses its running statistics), with a dynamic batch axis: input `images`
(batch, 3, S, S), normalised as below; output `features` (batch, D). Their metadata
(ONNX `metadata_props`, TorchScript `_extra_files["simclr_metadata.json"]`) holds:

- `preprocessing`: the evaluation transform the encoder was trained for, read off
  :func:`simclr.augment.build_eval_transform` (resize the shorter side, center-crop,
  scale to [0, 1], normalise with mean/std);
- `provenance`: arch, stem, timm name, origin, source file, epoch and step, data set;
- `metrics`: the run's headline metric from report.json, when there is one;
- `input`/`output`: names and shapes; `config`: the full training config; the versions.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.transforms import v2

from simclr.config.defaults import merged_config
from simclr.errors import OutputError
from simclr.hub.export_onnx import EXTRA, REQUIRED, write_onnx
from simclr.hub.export_torchscript import write_torchscript
from simclr.hub.weights import FORMAT, EncoderWeights

DEPLOY_FORMAT_VERSION = "1"
INPUT_NAME, OUTPUT_NAME = "images", "features"
# Traced with two images: one would let torch.export treat the batch axis as constant.
EXAMPLE_BATCH = 2


def preprocessing(config: dict[str, Any]) -> dict[str, Any]:
    """The evaluation transform of a training config, as plain numbers."""
    from simclr.augment import build_eval_transform

    cfg = merged_config(config)
    size = int(cfg.data.image_size)
    out: dict[str, Any] = {"image_size": size, "color": "RGB", "layout": "NCHW"}
    for step in build_eval_transform(cfg.augment, size).transforms:
        if isinstance(step, v2.Resize):
            out["resize_shorter_side"] = int(step.size[0]) if step.size else size
            out["interpolation"] = getattr(step.interpolation, "value", str(step.interpolation))
            out["antialias"] = bool(step.antialias)
        elif isinstance(step, v2.CenterCrop):
            out["center_crop"] = [int(s) for s in step.size]
        elif isinstance(step, v2.ToDtype):
            out["scale"] = 1 / 255 if step.scale else 1.0
        elif isinstance(step, v2.Normalize):
            out["mean"] = [float(m) for m in step.mean]
            out["std"] = [float(s) for s in step.std]
    out["description"] = (
        f"resize the shorter side to {out.get('resize_shorter_side')} px "
        f"({out.get('interpolation')}), center-crop {size}x{size}, RGB float32 in [0, 1] "
        "(divide uint8 by 255), subtract mean and divide by std per channel, NCHW"
    )
    return out


def provenance(source: Path, weights: EncoderWeights) -> dict[str, Any]:
    """Where the weights come from: architecture, toolkit, file, training progress."""
    config = weights.config
    out: dict[str, Any] = {
        "arch": weights.arch,
        "stem": weights.stem,
        "origin": weights.origin,
        "source": str(source),
        "dataset": config.get("data", {}).get("name"),
        "preset": config.get("preset"),
    }
    if weights.arch == "timm":
        out["timm_name"] = config.get("encoder", {}).get("timm_name")
    plain = (bool, int, float, str)
    out.update({k: v for k, v in weights.extra.items() if isinstance(v, plain)})
    return out


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def deployment_metadata(
    source: Path, weights: EncoderWeights, feature_dim: int, kind: str
) -> dict[str, Any]:
    """Everything a deployment file carries besides the graph (see the module docstring)."""
    size = int(merged_config(weights.config).data.image_size)
    headline = weights.metrics.get("headline") if isinstance(weights.metrics, dict) else None
    return {
        "format": FORMAT,
        "format_version": DEPLOY_FORMAT_VERSION,
        "kind": kind,
        "input": {"name": INPUT_NAME, "shape": ["batch", 3, size, size], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", feature_dim], "dtype": "float32"},
        "preprocessing": preprocessing(weights.config),
        "provenance": provenance(source, weights),
        "metrics": {"headline": headline} if isinstance(headline, dict) else {},
        "config": weights.config,
        "versions": {"simclr": _version("simclr"), "torch": torch.__version__},
    }


Writer = Callable[[Path, nn.Module, torch.Tensor, dict[str, Any]], None]


def _writer(kind: str, out: Path) -> Writer:
    """The writer for `kind`, or a one-line error naming the extra to install."""
    if kind == "onnx":
        missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
        if missing:
            raise OutputError(
                f"{out}: writing ONNX needs the {' and '.join(missing)} package(s); "
                f"install the export extra: {EXTRA}"
            )
        return write_onnx
    return write_torchscript


def write_deployable(
    tmp: Path, out: Path, source: Path, weights: EncoderWeights, kind: str
) -> None:
    """Trace the encoder in `weights` and write it to `tmp` as `kind` (onnx | torchscript);
    `out` is the final name, for messages."""
    write = _writer(kind, out)
    encoder = weights.build_encoder(source).float().eval()
    size = int(merged_config(weights.config).data.image_size)
    example = torch.randn(EXAMPLE_BATCH, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feature_dim = int(encoder(example).shape[-1])
    meta = deployment_metadata(source, weights, feature_dim, kind)
    try:
        write(tmp, encoder, example, meta)
    except (OutputError, OSError):
        raise
    except Exception as err:  # the exporters raise many kinds; the user needs one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OutputError(
            f"{out}: exporting the {weights.arch} encoder to {kind} failed ({first})"
        ) from err
