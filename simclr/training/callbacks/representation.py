"""Representation health during pretraining (RankMe, std, alignment, uniformity).

The latest rows a training epoch produced are kept on their device for epoch-end
metrics (:class:`RecentRows`, :class:`EpochRowsCallback`, which the online kNN shares).

Each training step hands over (see `SimCLRModule.training_step`) the encoder
features of the first view and both views' projections. The latest
`max_samples` rows of the epoch are kept on the device; at the epoch's end they
are gathered from every rank, so every rank computes and logs the same values,
those a single process would get on the same rows. A collapse (rank or spread
of the projections falling to nothing) is reported once, on one log line naming
the epoch, and again only if the run recovers and collapses anew.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from simclr.evaluation.health import collapse_reason, representation_health
from simclr.losses.distributed import gather_no_grad, rank


class RecentRows:
    """At most `capacity` of the most recent rows of a few named tensors.

    Rows are appended batch by batch (detached) and the oldest dropped once more
    than `capacity` are held, so memory is bounded however long the epoch.
    :meth:`gathered` concatenates every rank's rows (rank order); all ranks must
    call it together, as with any collective.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be >= 1")
        self.capacity = int(capacity)
        self._chunks: list[dict[str, Tensor]] = []
        self._rows = 0

    def __len__(self) -> int:
        return min(self._rows, self.capacity)

    def clear(self) -> None:
        self._chunks, self._rows = [], 0

    def add(self, **tensors: Tensor) -> None:
        """Append one batch: tensors with the same number of rows."""
        sizes = {int(t.shape[0]) for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"rows of one batch must agree, got sizes {sorted(sizes)}")
        self._chunks.append({k: t.detach() for k, t in tensors.items()})
        self._rows += sizes.pop()
        while self._chunks and self._rows - _rows(self._chunks[0]) >= self.capacity:
            self._rows -= _rows(self._chunks.pop(0))

    def local(self) -> dict[str, Tensor] | None:
        """This process's rows, oldest first (None when nothing was added)."""
        if not self._chunks:
            return None
        keys = self._chunks[0].keys()
        return {k: torch.cat([c[k] for c in self._chunks])[-self.capacity :] for k in keys}

    def gathered(self) -> dict[str, Tensor] | None:
        """Every rank's rows, rank 0's first (None when this rank has none)."""
        rows = self.local()
        if rows is None:
            return None
        return {k: gather_no_grad(v) for k, v in rows.items()}


def _rows(chunk: dict[str, Tensor]) -> int:
    return int(next(iter(chunk.values())).shape[0])


log = logging.getLogger(__name__)
PREFIX = "monitor/"


class EpochRowsCallback(pl.Callback):
    """Keeps the latest `max_samples` rows of this training epoch's step outputs `KEYS`.

    Each rank keeps its share, so the gathered rows number `max_samples` at most; the
    rows start anew with every epoch. A subclass says what it does with a step's rows
    (:meth:`keep`) and reads :attr:`rows` at the epoch's (or validation's) end.
    """

    KEYS: tuple[str, ...] = ()

    def __init__(self, max_samples: int) -> None:
        self.max_samples = int(max_samples)
        self.rows = RecentRows(self.max_samples)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.rows = RecentRows(max(1, self.max_samples // max(1, trainer.world_size)))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rows.clear()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if isinstance(outputs, dict) and set(self.KEYS) <= outputs.keys():
            self.keep(**{k: outputs[k] for k in self.KEYS})

    def keep(self, **rows: Tensor) -> None:
        """Take one step's rows (named as in `KEYS`)."""
        raise NotImplementedError


class RepresentationMonitor(EpochRowsCallback):
    """Log `monitor/{rankme,rankme_projection,projection_std,alignment,uniformity,collapsed}`
    once per training epoch, and warn when the representation collapses."""

    def __init__(
        self,
        max_samples: int = 8192,
        collapse_rank_fraction: float = 0.01,
        collapse_std_fraction: float = 0.1,
    ) -> None:
        super().__init__(max_samples)
        self.rank_fraction = float(collapse_rank_fraction)
        self.std_fraction = float(collapse_std_fraction)
        self.collapsed = False
        self.last: dict[str, float] = {}  # the latest epoch's values, for callers and tests

    KEYS = ("features", "z1", "z2")

    def keep(self, **rows: Tensor) -> None:
        self.add(rows["features"], rows["z1"], rows["z2"])

    def add(self, features: Any, z1: Any, z2: Any) -> None:
        """Keep one batch's features and projections (the hooks call this)."""
        self.rows.add(features=features, z1=z1, z2=z2)

    def compute(self, epoch: int) -> dict[str, float] | None:
        """Metrics of the rows kept so far, over all ranks (a collective); warn on collapse."""
        rows = self.rows.gathered()
        if rows is None:
            return None
        features, z1, z2 = rows["features"], rows["z1"], rows["z2"]
        health = representation_health(features, z1, z2)
        reason = collapse_reason(
            health,
            len(features),
            int(features.shape[1]),
            int(z1.shape[1]),
            self.rank_fraction,
            self.std_fraction,
        )
        if reason and not self.collapsed and rank() == 0:
            log.warning("representation collapse at epoch %d: %s", epoch, reason)
        self.collapsed = reason is not None
        health["collapsed"] = float(self.collapsed)
        self.last = health
        return health

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        health = self.compute(trainer.current_epoch)
        if health is None:
            return
        for name, value in health.items():
            # Every rank computed the same value from the gathered rows: no sync needed.
            pl_module.log(PREFIX + name, value, on_step=False, on_epoch=True)
