"""Online kNN accuracy: the test split classified by its nearest training features.

The bank is the labeled training images' encoder features of the current epoch
(first view, as `SimCLRModule.training_step` returns them; the latest
`max_samples` rows), gathered from every rank when validation starts. Each rank
then votes for its own validation batches against the whole bank and the counts
are summed over ranks: the accuracy is the one a single process gets on the
same rows. The vote is :func:`simclr.monitoring.knn_vote`, the rule of the final
kNN evaluation, with its k and temperature (`eval.knn`).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from simclr.callbacks.recent import RecentRows
from simclr.distributed import gather_no_grad
from simclr.monitoring import knn_vote

METRIC = "monitor/knn_acc"


class OnlineKnn(pl.Callback):
    """Log `monitor/knn_acc` after each validation pass."""

    def __init__(
        self, num_classes: int, k: int = 20, temperature: float = 0.07, max_samples: int = 8192
    ) -> None:
        self.num_classes, self.k, self.temperature = int(num_classes), int(k), float(temperature)
        self.max_samples = int(max_samples)
        self.rows = RecentRows(self.max_samples)
        self._bank: tuple[Tensor, Tensor] | None = None
        self._counts = torch.zeros(2, dtype=torch.long)  # correct, seen (this rank)
        self.last: float | None = None

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
        if isinstance(outputs, dict) and {"features", "labels"} <= outputs.keys():
            self.add_train(outputs["features"], outputs["labels"])

    def add_train(self, features: Tensor, labels: Tensor) -> None:
        """Put one training batch into the bank (unlabeled rows, label -1, are left out later)."""
        self.rows.add(features=features, labels=labels.to(features.device))

    def start_queries(self) -> None:
        """Gather the bank from every rank (a collective) and reset the counts."""
        rows = self.rows.gathered()
        self._bank = None
        if rows is not None:
            keep = rows["labels"] >= 0
            if bool(keep.any()):
                self._bank = rows["features"][keep], rows["labels"][keep]
        self._counts = torch.zeros(2, dtype=torch.long)

    def add_queries(self, features: Tensor, labels: Tensor) -> None:
        """Vote for this rank's validation rows; count the correct ones."""
        if self._bank is None:
            return
        keep = labels >= 0
        bank, bank_labels = self._bank
        predicted = knn_vote(
            bank, bank_labels, features[keep], self.k, self.temperature, self.num_classes
        )
        correct = int((predicted.cpu() == labels[keep].cpu()).sum())
        self._counts += torch.tensor([correct, int(keep.sum())])

    def finish_queries(self, device: torch.device | None = None) -> float | None:
        """The accuracy over every rank's queries (a collective), or None without a bank."""
        counts = gather_no_grad(self._counts.to(device or torch.device("cpu")).view(1, 2))
        correct, seen = (int(v) for v in counts.sum(dim=0))
        self.last = correct / seen if seen and self._bank is not None else None
        return self.last

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start_queries()

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if isinstance(outputs, dict) and {"features", "labels"} <= outputs.keys():
            self.add_queries(outputs["features"], outputs["labels"])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        accuracy = self.finish_queries(pl_module.device)
        if accuracy is not None and not trainer.sanity_checking:
            pl_module.log(METRIC, accuracy, on_step=False, on_epoch=True)
