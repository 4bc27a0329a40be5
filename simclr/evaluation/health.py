"""Health metrics of a representation, as pure functions of embedding matrices.

Each takes tensors of N rows (samples) by D columns and returns a Python float,
computed in float32 or wider outside autocast. The callbacks in
:mod:`simclr.training.callbacks.representation` and :mod:`simclr.training.callbacks.online`
apply them to what the pretraining steps produce; the same functions serve any
other caller (a notebook, a test).

- RankMe (Garrido et al. 2023, arXiv 2210.02885): the effective rank of an
  embedding matrix, ``exp(-sum_k p_k log p_k)`` with ``p_k = s_k / ||s||_1 + eps``
  over its singular values ``s``. Between 1 (every row on one line) and min(N, D).
- Per-dimension std of the L2-normalised rows (SimSiam, Chen & He 2021): about
  ``1/sqrt(D)`` for rows spread over the sphere, 0 when every row is the same.
- Alignment and uniformity (Wang & Isola 2020) of L2-normalised rows: alignment
  ``E ||f(x) - f(y)||^2`` over positive pairs, uniformity
  ``log E exp(-2 ||f(x) - f(y)||^2)`` over all pairs of distinct rows.
- The weighted kNN vote of InstDisc / SimCLR: each of the k most cosine-similar
  labeled rows votes ``exp(similarity / T)`` for its class.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

RANKME_EPS = 1e-7  # Garrido et al.'s epsilon (their released code)
UNIFORMITY_T = 2.0  # Wang & Isola's t
MIN_HEALTHY_RANK = 2.0  # RankMe below this: the rows lie along one direction
_CHUNK = 1024  # rows per block of a pairwise computation: bounded memory for any N


def _float(z: Tensor) -> Tensor:
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"expected an N x D matrix with N >= 1, got shape {tuple(z.shape)}")
    return z.detach().to(torch.promote_types(z.dtype, torch.float32))


def rankme(z: Tensor, eps: float = RANKME_EPS) -> float:
    """Effective rank of the N x D matrix `z` (not centred, as in the paper)."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        s = torch.linalg.svdvals(_float(z))
        # A zero matrix has no direction at all; the clamp keeps it at p = eps, not NaN.
        p = s / s.sum().clamp_min(torch.finfo(s.dtype).tiny) + eps
        return float(torch.exp(-(p * p.log()).sum()))


def normalized_std(z: Tensor) -> float:
    """Mean over dimensions of the (sample) std of the L2-normalised rows of `z`."""
    u = F.normalize(_float(z), dim=1)
    if u.shape[0] < 2:
        return 0.0
    return float(u.std(dim=0).mean())


def alignment(z1: Tensor, z2: Tensor) -> float:
    """Mean squared distance between the L2-normalised rows i of `z1` and of `z2`."""
    if z1.shape != z2.shape:
        raise ValueError(
            f"alignment needs two N x D matrices, got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    u1, u2 = F.normalize(_float(z1), dim=1), F.normalize(_float(z2), dim=1)
    return float((u1 - u2).pow(2).sum(dim=1).mean())


def uniformity(z: Tensor, t: float = UNIFORMITY_T) -> float:
    """log of the mean of exp(-t ||u_i - u_j||^2) over the pairs i < j of normalised rows."""
    u = F.normalize(_float(z), dim=1)
    n = u.shape[0]
    if n < 2:
        raise ValueError("uniformity needs at least 2 rows")
    # Blocks of rows against all rows: the full N x N matrix never exists at once. The
    # sum is taken over ordered pairs i != j, twice the sum over i < j: the mean is the same.
    # Terms are shifted by their maximum, exp(0) = 1 at distance 0, so nothing overflows.
    total = u.new_zeros((), dtype=torch.float64)
    for start in range(0, n, _CHUNK):
        block = u[start : start + _CHUNK]
        sq = (2 - 2 * block @ u.T).clamp_min(0)  # ||a - b||^2 of unit vectors
        rows = torch.arange(start, start + len(block), device=u.device)
        sq[torch.arange(len(block), device=u.device), rows] = math.inf  # i == j: left out
        total += torch.exp(-t * sq).sum(dtype=torch.float64)
    return float(torch.log(total / (n * (n - 1))))


@torch.no_grad()
def knn_vote(
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    k: int,
    temperature: float,
    num_classes: int,
    chunk: int = _CHUNK,
) -> Tensor:
    """Class of each query with the largest summed exp(cos / T) over its k nearest bank rows."""
    if len(bank) == 0:
        raise ValueError("knn_vote needs a non-empty bank")
    with torch.autocast(device_type=bank.device.type, enabled=False):
        b = F.normalize(_float(bank), dim=1)
        labels = bank_labels.to(device=b.device, dtype=torch.long)
        k = min(int(k), len(b))
        out = []
        for start in range(0, len(queries), chunk):
            q = F.normalize(_float(queries[start : start + chunk]).to(b.device), dim=1)
            sim, idx = (q @ b.T).topk(k, dim=1)
            votes = torch.zeros(len(q), num_classes, device=b.device, dtype=sim.dtype)
            votes.scatter_add_(1, labels[idx], (sim / temperature).exp())
            out.append(votes.argmax(dim=1))
        if not out:
            return torch.zeros(0, dtype=torch.long, device=b.device)
        return torch.cat(out)


def representation_health(features: Tensor, z1: Tensor, z2: Tensor) -> dict[str, float]:
    """Every metric above for encoder `features` and the two views' projections `z1`, `z2`.

    Keys: rankme (of the features), rankme_projection, projection_std (of z1),
    alignment (z1 against z2), uniformity (of z1).
    """
    return {
        "rankme": rankme(features),
        "rankme_projection": rankme(z1),
        "projection_std": normalized_std(z1),
        "alignment": alignment(z1, z2),
        "uniformity": uniformity(z1) if len(z1) > 1 else float("nan"),
    }


def collapse_reason(
    health: dict[str, float],
    n_rows: int,
    feature_dim: int,
    projection_dim: int,
    rank_fraction: float,
    std_fraction: float,
) -> str | None:
    """Why `health` (from :func:`representation_health`) signals a collapse, or None.

    The rank has collapsed when RankMe is below `rank_fraction` of its largest
    possible value min(N, D), and never counts as healthy below 2 (one direction,
    whatever N and D); the projections have collapsed when their normalised std is
    below `std_fraction` of the healthy 1/sqrt(D).
    """
    reasons = []
    rank_floor = max(rank_fraction * min(n_rows, feature_dim), MIN_HEALTHY_RANK)
    if health["rankme"] < rank_floor:
        reasons.append(
            f"RankMe {health['rankme']:.2f} < {rank_floor:.2f} "
            f"(floor: {rank_fraction:g} x min(N={n_rows}, D={feature_dim}), at least 2)"
        )
    std_floor = std_fraction / math.sqrt(projection_dim)
    if health["projection_std"] < std_floor:
        reasons.append(
            f"std of the normalised projections {health['projection_std']:.4f} < {std_floor:.4f} "
            f"({std_fraction:g}/sqrt({projection_dim}))"
        )
    return "; ".join(reasons) or None
