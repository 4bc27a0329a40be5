"""MLP probe: one hidden layer trained with torch, full batch, on cached features.

The number of epochs is chosen by early stopping on a stratified hold-out part of
the labeled subset (lowest hold-out cross-entropy, `patience` epochs without
improvement ends the search); the probe is then retrained on the whole subset for
that many epochs, so the hold-out labels are not wasted. A subset with a class of
one example has no hold-out: the probe trains for `epochs` epochs, and says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.preprocessing import StandardScaler
from torch import nn

from simclr.evaluation.probe import FittedProbe


def holdout_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified `(fit, holdout)` indices; every class keeps at least one fit example."""
    rng = np.random.default_rng(seed)
    fit, held = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_held = min(len(members) - 1, round(fraction * len(members)))
        held.append(members[:n_held])
        fit.append(members[n_held:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(held))


def _new_mlp(in_dim: int, hidden: int, classes: int, seed: int) -> nn.Module:
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # same initial weights for the search and the refit
    model = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))
    torch.random.set_rng_state(gen_state)
    return model


def _train(
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: Any,
    classes: int,
    seed: int,
    epochs: int,
    holdout: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[nn.Module, int]:
    """Train full batch; with `holdout`, stop early and return the best epoch count."""
    model = _new_mlp(x.shape[1], int(cfg.hidden_dim), classes, seed)
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(cfg.lr), weight_decay=float(cfg.weight_decay)
    )
    best_loss, best_epoch = float("inf"), epochs
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if holdout is None:
            continue
        model.eval()
        with torch.no_grad():
            loss = float(F.cross_entropy(model(holdout[0]), holdout[1]))
        if loss < best_loss:
            best_loss, best_epoch = loss, epoch
        elif epoch - best_epoch >= int(cfg.patience):
            break
    return model, best_epoch


def fit_mlp(x: np.ndarray, y: np.ndarray, cfg: Any, seed: int) -> FittedProbe:
    """Fit the MLP probe described by `cfg` (an `eval.mlp` node) on `(x, y)`."""
    classes = int(np.max(y)) + 1
    epochs, notes = int(cfg.epochs), []
    fit_idx, held_idx = holdout_split(y, float(cfg.holdout_fraction), seed)
    if len(held_idx) > 0:
        scaler = StandardScaler().fit(x[fit_idx])
        xf = torch.as_tensor(scaler.transform(x[fit_idx]), dtype=torch.float32)
        xh = torch.as_tensor(scaler.transform(x[held_idx]), dtype=torch.float32)
        held = (xh, torch.as_tensor(y[held_idx]))
        _, epochs = _train(xf, torch.as_tensor(y[fit_idx]), cfg, classes, seed, epochs, held)
    else:
        notes.append(f"no early stopping: too few labels for a hold-out, trained {epochs} epochs")
    scaler = StandardScaler().fit(x)
    model, _ = _train(
        torch.as_tensor(scaler.transform(x), dtype=torch.float32),
        torch.as_tensor(y),
        cfg,
        classes,
        seed,
        epochs,
    )
    model.eval()

    def predict(q: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.as_tensor(scaler.transform(q), dtype=torch.float32))
        return logits.argmax(dim=1).numpy()

    return FittedProbe(predict=predict, chosen={"epochs": epochs}, notes=notes)
