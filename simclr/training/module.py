"""The SimCLR LightningModule: encoder -> head -> NT-Xent, and the optimizer set-up.

It holds no data, augmentation or evaluation code: the DataModule brings the
two views, callbacks do the online probe, `simclr.evaluation` the final report.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from simclr.config.choices import AugmentBackend
from simclr.config.hardware import HardwareChoice, choose_for
from simclr.config.schema import RunConfig, literal
from simclr.errors import SimclrError
from simclr.losses.ntxent import NTXentLoss
from simclr.models import build_encoder, build_head, feature_dim
from simclr.training.chunked_step import chunked_training_step
from simclr.training.optim import (
    SchedulePlan,
    build_optimizer,
    build_planned_scheduler,
    global_batch_size,
)

log = logging.getLogger(__name__)


class NonFiniteLossError(SimclrError):
    """The loss became NaN or infinite."""


class SimCLRModule(pl.LightningModule):
    """Encoder f, projection head g and NT-Xent on two views of each image.

    Args:
        config: the full run config: a DictConfig composed from the schema (a RunConfig),
            or the plain dict a checkpoint holds (Lightning's ``load_from_checkpoint``
            passes that). Its resolved values, enum members as their strings, are
            stored in the checkpoint's hyper-parameters under "config".
    """

    def __init__(self, config: DictConfig | dict[str, Any]) -> None:
        super().__init__()
        # Typed when given typed; a copy, so the caller's later edits do not reach us.
        cfg = (
            copy.deepcopy(config)
            if isinstance(config, DictConfig)
            else OmegaConf.create(literal(config))  # saved values are data, not syntax
        )
        self.cfg: RunConfig = cfg  # type: ignore[assignment]  # a DictConfig of the schema
        plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        self.save_hyperparameters({"config": plain})
        self.encoder = build_encoder(self.cfg.encoder)
        self.head = build_head(self.cfg.head, feature_dim(self.encoder))
        self.criterion = NTXentLoss(self.cfg.loss.temperature, gather=self.cfg.loss.gather)
        # loss.chunk_size: gradient caching, several backward passes per optimizer step,
        # which needs Lightning's manual optimization (simclr/training/chunked_step.py).
        self.chunk_size = int(getattr(self.cfg.loss, "chunk_size", None) or 0)
        self.automatic_optimization = not self.chunk_size
        self.skipped_nonfinite = 0
        self.schedule_plan: SchedulePlan | None = None  # set by configure_optimizers
        # backend=gpu: the loader brings uint8 crops; colour and blur run here, batched.
        self.gpu_augment: torch.nn.Module | None = None
        # getattr: the config of a checkpoint older than `augment.backend` has no such key.
        if getattr(self.cfg.augment, "backend", AugmentBackend.cpu) == AugmentBackend.gpu:
            from simclr.data.views import GpuViewAugment  # kornia: imported only when used

            self.gpu_augment = GpuViewAugment(self.cfg.augment, int(self.cfg.data.image_size))
        # Precision and memory format for where the trainer runs (auto: simclr/config/hardware.py);
        # build_trainer makes the same precision choice from the same config.
        self.hardware: HardwareChoice = choose_for(self.cfg, self.encoder)
        if self.hardware.channels_last:
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder features (the representation), without the head."""
        return self.encoder(images)

    def on_fit_start(self) -> None:
        if self.trainer.is_global_zero:
            log.info("hardware: %s", self.hardware.describe())

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if self.hardware.channels_last and images.dim() == 4:  # the format exists for NCHW only
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def finish_views(self, views: Any) -> tuple[Any, Any]:
        """The loader's views (a pair) made ready for the encoder.

        With ``augment.decode=gpu`` the loader brings file bytes (an ``EncodedBatch``):
        they are decoded, cropped and flipped on this device first (simclr/data/encoded.py).
        With ``augment.backend=gpu``, uint8 crops are then turned into views, batched.
        Called in `training_step` (not `on_after_batch_transfer`, which Lightning warns
        about when a DataModule is used too); autocast is off so that the colour
        arithmetic runs in float32 whatever the training precision.
        """
        decode = getattr(views, "decode", None)  # an EncodedBatch, left on the CPU
        if decode is None and (self.gpu_augment is None or views[0].dtype != torch.uint8):
            return views[0], views[1]
        with torch.autocast(device_type=self.device.type, enabled=False):
            view1, view2 = decode(self.device) if decode is not None else views
            if self.gpu_augment is None:
                return view1, view2
            return self.gpu_augment(view1), self.gpu_augment(view2)

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor] | None:
        if self.chunk_size:
            return chunked_training_step(self, batch, batch_idx)
        views, labels = batch
        view1, view2 = self.finish_views(views)
        n = view1.shape[0]
        # Both views through the encoder in one pass, as the reference code does:
        # BatchNorm then sees statistics over all 2N images.
        features = self.encoder(self._prepare(torch.cat([view1, view2])))
        z1, z2 = self.head(features).chunk(2)
        loss = self.criterion(z1, z2)
        if not torch.isfinite(loss) and self.skip_nonfinite(loss, batch_idx):
            return None  # Lightning skips the optimizer step for this batch
        self.log_loss(loss, n)
        # Detached outputs for the callbacks (online probe, representation monitors).
        return {
            "loss": loss,
            "features": features[:n].detach(),
            "labels": labels,
            "z1": z1.detach(),
            "z2": z2.detach(),
        }

    def skip_nonfinite(self, loss: torch.Tensor, batch_idx: int) -> bool:
        """For a NaN/inf `loss`: True to skip the step (counted), else NonFiniteLossError."""
        if self.cfg.loss.skip_nonfinite and self._weights_finite():
            self.skipped_nonfinite += 1
            self.log("train/skipped_nonfinite", float(self.skipped_nonfinite))
            return True
        from simclr.training.resume import last_good_checkpoint

        # Skipping cannot help once the weights themselves are NaN/inf.
        why = "" if self._weights_finite() else " and the weights are no longer finite"
        raise NonFiniteLossError(
            f"loss is {loss.item()} at global step {self.global_step} (epoch "
            f"{self.current_epoch}, batch {batch_idx}){why}; last good checkpoint: "
            f"{last_good_checkpoint(self._trainer)} (resume=auto continues from it; "
            "loss.skip_nonfinite=true skips such steps)"
        )

    def log_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        """Log the training loss of a step on `batch_size` images."""
        self.log(
            "train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size
        )

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.parameters())

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        # Validation only produces features; the online-probe callback scores them.
        images, labels = batch
        return {"features": self.encoder(self._prepare(images)).detach(), "labels": labels}

    def configure_optimizers(self) -> Any:
        trainer = self.trainer
        batch = global_batch_size(
            int(self.cfg.data.batch_size),
            int(trainer.num_devices),
            int(trainer.num_nodes),
            int(trainer.accumulate_grad_batches),
        )
        model = torch.nn.ModuleDict({"encoder": self.encoder, "head": self.head})
        optimizer = build_optimizer(model, self.cfg.optim, batch)
        estimated = float(trainer.estimated_stepping_batches)  # inf: only a time budget ends it
        epochs = int(trainer.max_epochs if trainer.max_epochs is not None else -1)  # -1: no limit
        # Optimizer steps per epoch from the loader itself: total // max_epochs would be
        # wrong whenever max_steps (or a time budget) ends the run before max_epochs.
        if trainer.train_dataloader is None:  # max_epochs=-1: Lightning did not load it
            trainer.fit_loop.setup_data()
        batches = float(trainer.num_training_batches)
        accumulate = int(trainer.accumulate_grad_batches)
        steps_per_epoch = (
            max(1, math.ceil(batches / accumulate))
            if math.isfinite(batches)
            else max(1, int(estimated) // max(1, epochs) if math.isfinite(estimated) else 1)
        )
        # Without a step or epoch limit (trainer.max_time alone) a provisional epoch: the
        # budget's planner re-plans the schedule from the measured rate (callbacks/budget.py).
        total_steps = int(estimated) if math.isfinite(estimated) else steps_per_epoch
        scheduler, self.schedule_plan = build_planned_scheduler(
            optimizer, self.cfg.optim, steps_per_epoch, epochs, total_steps=total_steps
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
