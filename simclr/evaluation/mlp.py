"""MLP probe: one hidden layer trained with torch, full batch, on cached features.

The number of epochs is chosen by early stopping on a stratified hold-out part of
the labeled subset (lowest hold-out cross-entropy, `patience` epochs without
improvement ends the search); the probe is then retrained on the whole subset for
that many epochs, so the hold-out labels are not wasted. A subset with a class of
one example has no hold-out: the probe trains for `epochs` epochs, and says so.
It trains on the GPU when there is one (full batch: a 10k x 512 subset is a few
milliseconds an epoch there, seconds on one CPU thread).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.preprocessing import StandardScaler
from torch import nn

from simclr.config.schema import MlpProbeConfig
from simclr.evaluation.probe import FittedProbe, probe_device


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
    cfg: MlpProbeConfig,
    classes: int,
    seed: int,
    epochs: int,
    holdout: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[nn.Module, int]:
    """Train full batch; with `holdout`, stop early and return the best epoch count."""
    model = _new_mlp(x.shape[1], cfg.hidden_dim, classes, seed).to(x.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
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
        elif epoch - best_epoch >= cfg.patience:
            break
    return model, best_epoch


def fit_mlp(x: np.ndarray, y: np.ndarray, cfg: MlpProbeConfig, seed: int) -> FittedProbe:
    """Fit the MLP probe described by `cfg` (an `eval.mlp` node) on `(x, y)`."""
    classes = int(np.max(y)) + 1
    epochs, notes = cfg.epochs, []
    device = probe_device()

    def tensor(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    fit_idx, held_idx = holdout_split(y, cfg.holdout_fraction, seed)
    if len(held_idx) > 0:
        scaler = StandardScaler().fit(x[fit_idx])
        xf, xh = tensor(scaler.transform(x[fit_idx])), tensor(scaler.transform(x[held_idx]))
        held = (xh, tensor(y[held_idx], torch.long))
        yf = tensor(y[fit_idx], torch.long)
        _, epochs = _train(xf, yf, cfg, classes, seed, epochs, held)
    else:
        notes.append(f"no early stopping: too few labels for a hold-out, trained {epochs} epochs")
    scaler = StandardScaler().fit(x)
    model, _ = _train(
        tensor(scaler.transform(x)), tensor(y, torch.long), cfg, classes, seed, epochs
    )
    model.eval()

    def predict(q: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(tensor(scaler.transform(q)))
        return logits.argmax(dim=1).cpu().numpy()

    return FittedProbe(predict=predict, chosen={"epochs": epochs}, notes=notes)
