"""Online evaluation during pretraining: a linear probe and a kNN monitor on detached features.

Online linear probe: a detached classifier trained alongside pretraining.

It reads the features the module returns from `training_step` (labeled images
only) and from `validation_step`, so it never runs the encoder itself. Under
DDP the features of all ranks are gathered first, so every rank applies the
same update to its copy of the classifier and the copies stay identical.

Online kNN accuracy: the test split classified by its nearest training features.

The bank is the labeled training images' encoder features of the current epoch
(first view, as `SimCLRModule.training_step` returns them; the latest
`max_samples` rows), gathered from every rank when validation starts. Each rank
then votes for its own validation batches against the whole bank and the counts
are summed over ranks: the accuracy is the one a single process gets on the
same rows. The vote is :func:`simclr.evaluation.health.knn_vote`, the rule of the final
kNN evaluation, with its k and temperature (`eval.knn`).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from simclr.evaluation.health import knn_vote
from simclr.losses.distributed import gather_no_grad
from simclr.training.callbacks.representation import EpochRowsCallback
from simclr.training.nonfinite import logs_this_step


class OnlineLinearProbe(pl.Callback):
    """Train a linear classifier on frozen features; log `online_probe/val_acc`.

    Each training step's features are kept (detached, on the device) and the classifier
    takes its steps on them batch by batch, in order, at logging steps
    (`trainer.log_every_n_steps`), before validation, at the epoch's end and before a
    checkpoint: the updates a step-by-step probe makes, but whether a batch has labeled
    rows is read on the host once per batch of batches, not at every training step.
    At most `max_pending` batches are kept (memory); beyond, the probe catches up early.
    """

    def __init__(
        self, feature_dim: int, num_classes: int, lr: float = 1e-3, max_pending: int = 64
    ) -> None:
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.lr = lr
        self.max_pending = max_pending
        self.classifier: nn.Linear | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._correct = 0
        self._seen = 0
        self._pending: list[tuple[Tensor, Tensor]] = []  # (features, labels) not trained on yet
        self._loss_sum: Tensor | None = None  # this epoch's training losses, on the device
        self._losses = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.classifier = nn.Linear(self.feature_dim, self.num_classes).to(pl_module.device)
        self.optimizer = torch.optim.Adam(self.classifier.parameters(), lr=self.lr)

    def _labeled(self, outputs: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not isinstance(outputs, dict) or "features" not in outputs:
            return None
        features = gather_no_grad(outputs["features"].float())
        labels = gather_no_grad(outputs["labels"])
        keep = labels >= 0
        if not bool(keep.any()):
            return None
        return features[keep], labels[keep]

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if isinstance(outputs, dict) and "features" in outputs:
            self._pending.append((outputs["features"].detach(), outputs["labels"]))
        if logs_this_step(trainer) or len(self._pending) >= self.max_pending:
            self.catch_up()

    def catch_up(self) -> None:
        """Train the classifier on the kept batches, in order (one host read for all of
        them; under DDP a collective, which every rank reaches at the same step)."""
        pending, self._pending = self._pending, []
        if not pending or self.classifier is None or self.optimizer is None:
            return
        gathered = [(gather_no_grad(f.float()), gather_no_grad(y)) for f, y in pending]
        counts = torch.stack([(y >= 0).sum() for _, y in gathered]).tolist()
        for (features, labels), labeled in zip(gathered, counts, strict=True):
            if labeled == 0:
                continue  # no labeled row: no step, as for an unlabeled batch before
            if labeled < len(labels):
                keep = labels >= 0
                features, labels = features[keep], labels[keep]
            self._step(features, labels)

    def _step(self, features: Tensor, labels: Tensor) -> None:
        assert self.classifier is not None and self.optimizer is not None
        self.classifier.to(features.device)
        with torch.enable_grad():
            loss = nn.functional.cross_entropy(self.classifier(features), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        total = self._loss_sum if self._loss_sum is not None else 0.0
        self._loss_sum, self._losses = loss.detach() + total, self._losses + 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.catch_up()
        if self._loss_sum is not None and self._losses:
            # The epoch's mean training loss (the batches are of one size).
            mean = self._loss_sum / self._losses
            pl_module.log("online_probe/train_loss", mean, on_step=False, on_epoch=True)
        self._loss_sum, self._losses = None, 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.catch_up()  # validate the classifier trained on every batch so far
        self._correct = 0
        self._seen = 0

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        data = self._labeled(outputs)
        if data is None or self.classifier is None:
            return
        features, labels = data
        with torch.no_grad():
            predicted = self.classifier.to(features.device)(features).argmax(dim=1)
        self._correct += int((predicted == labels).sum())
        self._seen += int(labels.numel())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._seen and not trainer.sanity_checking:
            # Counts were gathered over ranks already: no sync_dist needed.
            pl_module.log("online_probe/val_acc", self._correct / self._seen, prog_bar=True)

    def state_dict(self) -> dict[str, Any]:
        if self.classifier is None or self.optimizer is None:
            return {}
        self.catch_up()  # a checkpoint holds the classifier as of its step
        return {
            "classifier": self.classifier.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict and self.classifier is not None and self.optimizer is not None:
            self.classifier.load_state_dict(state_dict["classifier"])
            self.optimizer.load_state_dict(state_dict["optimizer"])


METRIC = "monitor/knn_acc"


class OnlineKnn(EpochRowsCallback):
    """Log `monitor/knn_acc` after each validation pass."""

    def __init__(
        self, num_classes: int, k: int = 20, temperature: float = 0.07, max_samples: int = 8192
    ) -> None:
        super().__init__(max_samples)
        self.num_classes, self.k, self.temperature = int(num_classes), int(k), float(temperature)
        self._bank: tuple[Tensor, Tensor] | None = None
        self._counts = torch.zeros(2, dtype=torch.long)  # correct, seen (this rank)
        self.last: float | None = None

    KEYS = ("features", "labels")

    def keep(self, **rows: Tensor) -> None:
        self.add_train(rows["features"], rows["labels"])

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
