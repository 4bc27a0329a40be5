"""Non-finite losses, noticed without reading the loss on the host at every step.

`bool(torch.isfinite(loss))` in the training step would make the host wait for the
device at every step, and so would any `.item()`. :class:`NonFiniteWatch` keeps, on the
loss's device, the first non-finite loss since it was last read (a few elementwise
kernels a step, no transfer); the module reads it at logging steps, where Lightning
reads the logged loss anyway, at the end of each epoch and before any checkpoint is
written, so no checkpoint holds the weights of a step after a NaN.

`loss.skip_nonfinite=true` is the exception: whether to skip the optimizer step must
be known before it runs, so the loss is read at every step there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from simclr.errors import SimclrError


class NonFiniteLossError(SimclrError):
    """The loss became NaN or infinite."""


class StepPlace(NamedTuple):
    """Where a training step ran: the optimizer steps done before it, its epoch and batch."""

    global_step: int
    epoch: int
    batch: int


class NonFiniteWatch:
    """The first non-finite loss recorded since the last :meth:`first_bad`, kept on the device."""

    def __init__(self) -> None:
        self._places: list[StepPlace] = []
        self._first: torch.Tensor | None = None  # index into _places, -1 while all finite
        self._loss: torch.Tensor | None = None  # that loss

    def record(self, loss: torch.Tensor, place: StepPlace) -> None:
        """Note `loss` of the step at `place`; device work only, nothing is read."""
        loss = loss.detach()
        index = len(self._places)
        self._places.append(place)
        if self._first is None or self._loss is None:
            self._first = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._loss = torch.zeros((), dtype=torch.float64, device=loss.device)
        new = ~torch.isfinite(loss) & (self._first < 0)
        self._first = torch.where(new, index, self._first)
        self._loss = torch.where(new, loss.to(torch.float64), self._loss)

    def first_bad(self) -> tuple[float, StepPlace] | None:
        """`(loss, place)` of the first non-finite loss since the last call, or None;
        one host read (a device sync). Forgets what it recorded."""
        if self._first is None or self._loss is None:
            return None
        index, loss = torch.stack([self._first.to(torch.float64), self._loss]).tolist()
        places = self._places
        self._places, self._first, self._loss = [], None, None
        return (loss, places[int(index)]) if index >= 0 else None


class NonFiniteCheck(Callback):
    """Reads the module's watch (`check_nonfinite`) when validation starts and first thing
    at an epoch's end, so that no epoch-end callback (the representation monitors' SVD)
    meets NaN features: put it first among the callbacks."""

    def _check(self, module: Any) -> None:
        check = getattr(module, "check_nonfinite", None)
        if check is not None:
            check()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(pl_module)


def logs_this_step(trainer: pl.Trainer) -> bool:
    """Whether Lightning writes step metrics after the current batch (every
    `trainer.log_every_n_steps` optimizer steps), read before or during its step."""
    connector = getattr(trainer, "_logger_connector", None)
    if connector is not None and hasattr(connector, "should_update_logs"):
        return bool(connector.should_update_logs)  # Lightning's own rule
    every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
    return (trainer.global_step + 1) % every == 0
