"""The distillation LightningModule: a student encoder + linear layer taught by a frozen teacher.

The student's weights sit where a simclr-pretrain checkpoint has its encoder
(`encoder.*`), with the run config (its `encoder` the student's) under
`hyper_parameters["config"]`, so `load_encoder` reads a distillation checkpoint
like any other. The teacher is held outside the registered modules: it is
frozen, in eval mode, not wrapped by DDP and not written into the checkpoints.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from simclr.config.schema import literal
from simclr.losses.distillation import distillation_loss
from simclr.models import build_encoder, feature_dim
from simclr.training.optim import build_optimizer, build_scheduler, global_batch_size


class DistillModule(pl.LightningModule):
    """Student `classifier.head(encoder(x))` trained on `distill.*` of `config`."""

    def __init__(
        self,
        config: dict[str, Any] | DictConfig,
        num_classes: int,
        teacher: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if isinstance(config, DictConfig):
            config = OmegaConf.to_container(config, resolve=True, enum_to_str=True)  # type: ignore[assignment]
        self.save_hyperparameters({"config": config, "num_classes": int(num_classes)})
        self.cfg = OmegaConf.create(literal(config))  # saved values are data, not syntax
        self.encoder = build_encoder(self.cfg.encoder)
        # "classifier.head.*": the key layout of a simclr-finetune classifier checkpoint.
        self.classifier = nn.ModuleDict({"head": nn.Linear(feature_dim(self.encoder), num_classes)})
        self._teacher: tuple[nn.Module, ...] = (teacher,) if teacher is not None else ()

    @property
    def teacher(self) -> nn.Module:
        if not self._teacher:
            raise RuntimeError("DistillModule has no teacher; pass one to train or validate")
        return self._teacher[0]

    def forward(self, images: Tensor) -> Tensor:
        """The student's class logits."""
        return self.classifier["head"](self.encoder(images))

    def on_fit_start(self) -> None:
        self.teacher.to(self.device).eval().requires_grad_(False)

    @torch.no_grad()
    def _teacher_logits(self, images: Tensor) -> Tensor:
        self.teacher.eval()  # Lightning puts registered modules in train mode, not this one
        return self.teacher(images)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        images, labels = batch
        d = self.cfg.distill
        teacher = self._teacher_logits(images)
        student = self(images)
        loss = distillation_loss(
            student, teacher, float(d.temperature), labels, float(d.labeled_weight)
        )
        self.log(
            "train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(images)
        )
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        student = self(images).argmax(dim=1)
        teacher = self._teacher_logits(images).argmax(dim=1)
        n = len(images)
        self.log(
            "distill/val_acc", (student == labels).float().mean(), batch_size=n, sync_dist=True
        )
        agreement = (student == teacher).float().mean()
        self.log("distill/val_agreement", agreement, prog_bar=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self) -> Any:
        # The pretraining recipe (SimCLRModule.configure_optimizers): lr scaled for the
        # global batch, warm-up and cosine over the run's steps.
        trainer = self.trainer
        batch = global_batch_size(
            int(self.cfg.data.batch_size),
            int(trainer.num_devices),
            int(trainer.num_nodes),
            int(trainer.accumulate_grad_batches),
        )
        model = nn.ModuleDict({"encoder": self.encoder, "classifier": self.classifier})
        optimizer = build_optimizer(model, self.cfg.optim, batch)
        total_steps = int(trainer.estimated_stepping_batches)
        epochs = max(1, int(trainer.max_epochs or 1))
        scheduler = build_scheduler(
            optimizer,
            self.cfg.optim,
            max(1, total_steps // epochs),
            epochs,
            total_steps=total_steps,
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
