"""NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR.

For a batch of N images seen through two views there are 2N anchors. Each
anchor's positive is the other view of the same image; every other projection
in the (possibly cross-rank) batch is a negative. With cosine similarities
``s`` and temperature ``t`` the loss of anchor ``i`` with positive ``j`` is

    -log( exp(s_ij / t) / sum_{k != i} exp(s_ik / t) )

and the batch loss is the mean over the 2N local anchors.

Gradients under DDP. Rank r's loss L_r is the mean over its own 2N anchors, and
the single-process loss on the concatenated batch of W ranks is
L = (1/W) * sum_r L_r. The candidates are gathered with an autograd-aware
all-gather whose backward sums, into each rank's slice, the gradients that every
rank's loss sends to it; so rank r's parameter gradient is
sum_s dL_s/dtheta restricted to the path through rank r's projections. DDP then
averages those over ranks: (1/W) * sum_r sum_s dL_s/dtheta|_r = dL/dtheta, exactly
the gradient of the single-process loss. (tests/integration/test_ntxent_distributed.py checks
this with two gloo processes.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simclr.losses.distributed import gather_with_grad, is_distributed, rank


def check_temperature(temperature: float) -> float:
    """`temperature` as a float; ValueError unless it is a finite number > 0."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature={temperature} must be a finite number > 0")
    return float(temperature)


def _check_views(z1: Tensor, z2: Tensor) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"nt_xent needs two N x D tensors of the same shape, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 1:
        raise ValueError("nt_xent needs a batch of at least 1 image per view, got 0")


def _unit_rows(z: Tensor) -> Tensor:
    """L2-normalise rows in at least float32, safe for any finite input."""
    z = z.to(torch.promote_types(z.dtype, torch.float32))
    # Rows of huge norm (e.g. 1e30, representable in bf16) would overflow the sum
    # of squares even in float32; dividing by the row's largest entry first keeps
    # it finite. The scale is detached: normalising is scale-invariant, so the
    # gradient is unchanged.
    scale = z.detach().abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)
    return F.normalize(z / scale, dim=1)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float, gather: bool = True) -> Tensor:
    """NT-Xent loss of two views' projections ``z1`` and ``z2`` (N x D each).

    Args:
        z1: projections of the first view; row i and row i of ``z2`` are one image.
        z2: projections of the second view.
        temperature: softmax temperature, > 0.
        gather: when torch.distributed runs more than one process, use every rank's
            projections as negatives (gradients flow back to every rank). Ignored
            otherwise.

    Returns:
        A float32 (or float64 for float64 inputs) scalar: the mean over the 2N local
        anchors. Computed outside autocast, so bf16/fp16 training gives no inf/NaN.
    """
    return _nt_xent(z1, z2, check_temperature(temperature), gather)


def _nt_xent(z1: Tensor, z2: Tensor, temperature: float, gather: bool) -> Tensor:
    """:func:`nt_xent` for a temperature already checked (the module checks it once)."""
    _check_views(z1, z2)
    n = z1.shape[0]
    with torch.autocast(device_type=z1.device.type, enabled=False):
        anchors = _unit_rows(torch.cat([z1, z2]))  # rows: view 1 of images, then view 2
        offset = 0
        candidates = anchors
        if gather and is_distributed():
            # Rank order: our own 2N rows start at rank * 2N (see simclr.losses.distributed).
            candidates = gather_with_grad(anchors)
            offset = rank() * 2 * n
        logits = anchors @ candidates.T / temperature
        local = torch.arange(2 * n, device=logits.device)
        # A finite large negative rather than exp-then-subtract: exp(1/t) overflows
        # for small t, and subtracting it back loses the other terms entirely.
        self_mask = torch.zeros_like(logits, dtype=torch.bool)
        self_mask[local, local + offset] = True
        logits = logits.masked_fill(self_mask, torch.finfo(logits.dtype).min)
        positives = (local + n) % (2 * n) + offset
        return F.cross_entropy(logits, positives)


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent`, holding the temperature and the gather switch."""

    def __init__(self, temperature: float = 0.5, gather: bool = True) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)  # once, not on every step
        self.gather = bool(gather)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return _nt_xent(z1, z2, self.temperature, self.gather)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather={self.gather}"
