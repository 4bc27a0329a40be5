"""Weighted k-nearest-neighbour classifier on cosine similarity.

The vote of each of the k most similar labeled examples is exp(similarity / T)
(the InstDisc / SimCLR kNN monitor). There is nothing to fit: k and T come from
the config, so no choice can depend on the test split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from simclr.evaluation.probe import FittedProbe


def knn_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    query_x: np.ndarray,
    k: int,
    temperature: float,
    num_classes: int,
    chunk: int = 1024,
) -> np.ndarray:
    """Class with the largest summed exp(cos / T) over the k nearest train examples."""
    bank = F.normalize(torch.as_tensor(train_x, dtype=torch.float32), dim=1)
    labels = torch.as_tensor(train_y, dtype=torch.long)
    k = min(k, len(bank))
    out = []
    for start in range(0, len(query_x), chunk):  # bounded memory for large test splits
        q = F.normalize(torch.as_tensor(query_x[start : start + chunk], dtype=torch.float32), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(q), num_classes).scatter_add_(
            1, labels[idx], (sim / temperature).exp()
        )
        out.append(votes.argmax(dim=1))
    return torch.cat(out).numpy()


def fit_knn(x: np.ndarray, y: np.ndarray, cfg: Any, seed: int) -> FittedProbe:
    """A kNN classifier over `(x, y)` with `cfg.k` and `cfg.temperature` (seed unused)."""
    del seed  # deterministic given the subset
    num_classes = int(np.max(y)) + 1
    k, t = int(cfg.k), float(cfg.temperature)
    notes = [f"k={len(x)}: the subset has fewer than {k} examples"] if len(x) < k else []
    return FittedProbe(
        predict=lambda q: knn_predict(x, y, q, k, t, num_classes),
        chosen={"k": min(k, len(x)), "temperature": t},
        notes=notes,
    )
