"""The fine-tuning classifier: encoder, the first k projection-head layers, a new linear layer.

SimCLRv2 (Chen et al. 2020, arXiv 2006.10029, §2.2) fine-tunes from a layer of the
projection head rather than from the encoder output: with a 3-layer head and few
labels, keeping the first head layer (Linear-BN-ReLU) with its pretrained weights
and putting the new linear classifier on top of it does better. Layer 0 is the
encoder output (SimCLR v1's choice); layer k keeps the first k head layers.

A head "layer" is a Linear with what follows it up to the next Linear (BatchNorm,
ReLU), so the same split works for our ProjectionHead and lightning-bolts' head.
The last head layer (the one the loss sees) is never kept.

The pretrained head travels with an encoder to the fine-tuning code as a plain
attribute (:func:`attach_head`), outside the encoder's registered modules, so the
encoder's state dict, parameters and weights hash (the feature-cache key) stay
exactly those of the encoder alone.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from simclr.config.schema import HeadConfig
from simclr.errors import ConfigError
from simclr.models.head import ProjectionHead, build_head

_HEAD_ATTRIBUTE = "pretrained_head"
CONFIG_KEY = "eval.finetune.from_head_layer"


class Classifier(nn.Module):
    """`head(projection(encoder(x)))`: `projection` holds the kept head layers (maybe none)."""

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        feature_dim: int,
        projection: nn.Module | None = None,
        projection_dim: int | None = None,
        from_head_layer: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = projection if projection is not None else nn.Sequential()
        self.head = nn.Linear(projection_dim or feature_dim, num_classes)
        self.from_head_layer = int(from_head_layer)  # how many head layers `projection` holds

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.projection(self.encoder(images)))


def head_layers(head: nn.Module) -> list[nn.Sequential]:
    """The layers of a projection head, first to last, each starting at a Linear."""
    body = next(
        (m for m in (getattr(head, n, None) for n in ("net", "model")) if m is not None), head
    )
    if not isinstance(body, nn.Sequential):
        raise TypeError(f"{type(head).__name__} is not a sequential projection head")
    layers: list[list[nn.Module]] = []
    for module in body:
        if isinstance(module, nn.Linear) or not layers:
            layers.append([])
        layers[-1].append(module)
    return [nn.Sequential(*modules) for modules in layers]


def default_head_layer(head: nn.Module | None) -> int:
    """1 for a head of 3 layers or more (SimCLRv2), 0 (the encoder output) otherwise."""
    return 1 if head is not None and len(head_layers(head)) >= 3 else 0


def resolve_head_layer(requested: int | None, head: nn.Module | None) -> int:
    """The layer to fine-tune from: `requested`, or the default when it is None."""
    if requested is None:
        return default_head_layer(head)
    requested = int(requested)
    if requested == 0:
        return 0
    if head is None:
        raise ConfigError(
            f"{CONFIG_KEY}={requested} needs the pretrained projection head, and this "
            "encoder came without one (a training checkpoint or an export with --with-head has it)"
        )
    keepable = len(head_layers(head)) - 1
    if not 0 <= requested <= keepable:
        raise ConfigError(
            f"{CONFIG_KEY}={requested} is not in 0..{keepable} for a projection head of "
            f"{keepable + 1} layers"
        )
    return requested


def build_classifier(
    encoder: nn.Module,
    num_classes: int,
    feature_dim: int,
    head: nn.Module | None = None,
    layer: int = 0,
) -> Classifier:
    """Encoder + the first `layer` layers of `head` (pretrained weights) + a new Linear.

    The modules are used, not copied: pass copies to keep the originals untouched.
    """
    layer = resolve_head_layer(layer, head)
    if layer == 0 or head is None:
        return Classifier(encoder, num_classes, feature_dim)
    kept = head_layers(head)[:layer]
    modules = [m for block in kept for m in block]
    width = next(m.out_features for m in reversed(modules) if isinstance(m, nn.Linear))
    return Classifier(encoder, num_classes, feature_dim, nn.Sequential(*modules), width, layer)


def attach_head(encoder: nn.Module, head: nn.Module | None) -> nn.Module:
    """Let `encoder` carry its pretrained projection head to fine-tuning; returns `encoder`.

    Stored outside the registered submodules (see the module docstring); a deep copy
    of the encoder copies the head with it.
    """
    object.__setattr__(encoder, _HEAD_ATTRIBUTE, head)
    return encoder


def attached_head(encoder: nn.Module) -> nn.Module | None:
    """The head :func:`attach_head` gave `encoder`, or None."""
    head: Any = encoder.__dict__.get(_HEAD_ATTRIBUTE)
    return head if isinstance(head, nn.Module) else None


def plain_head(trained: ProjectionHead, head_cfg: HeadConfig) -> ProjectionHead:
    """A fresh copy of a trained head, as `build_head` makes it (no SyncBatchNorm)."""
    head = build_head(head_cfg, trained.input_dim)
    head.load_state_dict(trained.state_dict())
    return head
