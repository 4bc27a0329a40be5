"""Online linear probe: a detached classifier trained alongside pretraining.

It reads the features the module returns from `training_step` (labeled images
only) and from `validation_step`, so it never runs the encoder itself. Under
DDP the features of all ranks are gathered first, so every rank applies the
same update to its copy of the classifier and the copies stay identical.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from simclr.distributed import gather_no_grad


class OnlineLinearProbe(pl.Callback):
    """Train a linear classifier on frozen features; log `online_probe/val_acc`."""

    def __init__(self, feature_dim: int, num_classes: int, lr: float = 1e-3) -> None:
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.lr = lr
        self.classifier: nn.Linear | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._correct = 0
        self._seen = 0

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
        data = self._labeled(outputs)
        if data is None or self.classifier is None or self.optimizer is None:
            return
        features, labels = data
        self.classifier.to(features.device)
        with torch.enable_grad():
            loss = nn.functional.cross_entropy(self.classifier(features), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        pl_module.log("online_probe/train_loss", loss.detach(), on_step=False, on_epoch=True)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
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
        return {
            "classifier": self.classifier.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict and self.classifier is not None and self.optimizer is not None:
            self.classifier.load_state_dict(state_dict["classifier"])
            self.optimizer.load_state_dict(state_dict["optimizer"])
