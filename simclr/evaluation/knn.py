"""Weighted k-nearest-neighbour classifier on cosine similarity.

The vote of each of the k most similar labeled examples is exp(similarity / T)
(the InstDisc / SimCLR kNN monitor). There is nothing to fit: k and T come from
the config, so no choice can depend on the test split. The similarities are
computed on the GPU when there is one, in chunks of queries.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from simclr.config.schema import KnnConfig
from simclr.evaluation.health import knn_vote
from simclr.evaluation.probe import FittedProbe, probe_device


def knn_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    query_x: np.ndarray,
    k: int,
    temperature: float,
    num_classes: int,
    chunk: int = 1024,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Class with the largest summed exp(cos / T) over the k nearest train examples
    (:func:`simclr.evaluation.health.knn_vote`, the rule the online kNN monitor uses too), on
    `device` (default: :func:`probe_device`)."""
    on = torch.device(device) if device is not None else probe_device()
    as_t = partial(torch.as_tensor, dtype=torch.float32, device=on)
    labels = torch.as_tensor(train_y, device=on)
    pred = knn_vote(as_t(train_x), labels, as_t(query_x), k, temperature, num_classes, chunk)
    return pred.cpu().numpy()


def fit_knn(x: np.ndarray, y: np.ndarray, cfg: KnnConfig, seed: int) -> FittedProbe:
    """A kNN classifier over `(x, y)` with `cfg.k` and `cfg.temperature` (seed unused)."""
    del seed  # deterministic given the subset
    num_classes = int(np.max(y)) + 1
    k, t = cfg.k, cfg.temperature
    notes = [f"k={len(x)}: the subset has fewer than {k} examples"] if len(x) < k else []
    return FittedProbe(
        predict=lambda q: knn_predict(x, y, q, k, t, num_classes),
        chosen={"k": min(k, len(x)), "temperature": t},
        notes=notes,
    )
