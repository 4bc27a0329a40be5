"""The projection head of lightning-bolts' SimCLR, in bolts' key layout (for its checkpoints)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
