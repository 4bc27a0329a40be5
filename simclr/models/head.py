"""Projection heads: SimCLR v1 (2 layers) and v2 (3 layers), with BatchNorm.

The projection head of lightning-bolts' SimCLR, in bolts' key layout (for its checkpoints).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simclr.config.choices import HeadVersion
from simclr.config.schema import HeadConfig


class ProjectionHead(nn.Module):
    """MLP g(h) mapping encoder features to the space where NT-Xent is computed.

    v1: Linear-BN-ReLU-Linear. v2: two Linear-BN-ReLU blocks then Linear. As in the
    official code, the last layer has BatchNorm without a learned shift or scale.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int | None = None,
        output_dim: int = 128,
        num_layers: int = 3,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"num_layers={num_layers} must be >= 2")
        hidden = hidden_dim or input_dim
        layers: list[nn.Module] = []
        dim = input_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(dim, hidden, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(nn.ReLU(inplace=True))
            dim = hidden
        layers.append(nn.Linear(dim, output_dim, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(output_dim, affine=False))
        self.net = nn.Sequential(*layers)
        self.input_dim = input_dim
        self.output_dim = output_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def build_head(cfg: HeadConfig, input_dim: int) -> ProjectionHead:
    """Build the head described by a `head` config node for features of `input_dim`."""
    version = HeadVersion.parse(cfg.version, "head.version")
    return ProjectionHead(
        input_dim=input_dim,
        hidden_dim=cfg.hidden_dim,
        output_dim=cfg.output_dim,
        num_layers=2 if version is HeadVersion.v1 else 3,
        batch_norm=bool(getattr(cfg, "batch_norm", True)),
    )


class BoltsProjection(nn.Module):
    """Linear(bias) - BN - ReLU - Linear(no bias), output L2-normalised, as bolts 0.7 has it."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, output_dim, bias=False),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model(features), dim=1)


def projection_from_state(state: dict[str, torch.Tensor]) -> BoltsProjection:
    """A BoltsProjection sized from the shapes of its weights."""
    hidden, input_dim = state["model.0.weight"].shape
    output_dim = state["model.3.weight"].shape[0]
    return BoltsProjection(int(input_dim), int(hidden), int(output_dim))
