"""The SimCLR LightningModule: encoder -> head -> NT-Xent, and the optimizer set-up.

It holds no data, augmentation or evaluation code: the DataModule brings the
two views, callbacks do the online probe, `simclr.evaluation` the final report.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from simclr.config.hardware import HardwareChoice, choose_for
from simclr.config.schema import RunConfig, as_run_config, node_of, typed_config
from simclr.config.step import StepChoice, choose_step_for
from simclr.losses.ntxent import NTXentLoss
from simclr.models import build_encoder, build_head, feature_dim
from simclr.training.chunked_step import chunked_training_step
from simclr.training.nonfinite import (
    NonFiniteLossError,
    NonFiniteWatch,
    StepPlace,
    logs_this_step,
)
from simclr.training.optim import SchedulePlan, configure_optimization

log = logging.getLogger(__name__)

__all__ = ["NonFiniteLossError", "SimCLRModule"]


class SimCLRModule(pl.LightningModule):
    """Encoder f, projection head g and NT-Xent on two views of each image.

    Args:
        config: the full run config: a DictConfig composed from the schema (a RunConfig),
            or the plain dict a checkpoint holds (Lightning's ``load_from_checkpoint``
            passes that). Its resolved values, enum members as their strings, are
            stored in the checkpoint's hyper-parameters under "config".
    """

    def __init__(self, config: RunConfig | Mapping[str, Any]) -> None:
        super().__init__()
        # A copy, so the caller's later edits do not reach us; a checkpoint's plain dict
        # becomes typed here (the one boundary, simclr.config.schema.typed_config).
        if isinstance(config, DictConfig):
            self.cfg = as_run_config(copy.deepcopy(config))
        else:
            self.cfg = typed_config(cast(Mapping[str, Any], config))
        plain = OmegaConf.to_container(node_of(self.cfg), resolve=True, enum_to_str=True)
        self.save_hyperparameters({"config": plain})
        self.encoder = build_encoder(self.cfg.encoder)
        self.head = build_head(self.cfg.head, feature_dim(self.encoder))
        self.criterion = NTXentLoss(self.cfg.loss.temperature, gather=self.cfg.loss.gather)
        # loss.chunk_size: gradient caching, several backward passes per optimizer step,
        # which needs Lightning's manual optimization (simclr/training/chunked_step.py).
        self.chunk_size = int(getattr(self.cfg.loss, "chunk_size", None) or 0)
        self.automatic_optimization = not self.chunk_size
        self.skipped_nonfinite = 0
        self.nonfinite = NonFiniteWatch()  # read at logging steps, not every step
        self.schedule_plan: SchedulePlan | None = None  # set by configure_optimizers
        # Compiled or not, where views are made and JPEGs decoded (auto: simclr/config/step.py).
        # Not strict: a checkpoint's config may be read where its decode=gpu cannot run (the
        # data module, which decodes, refuses that; training never gets here with it).
        self.step_choice: StepChoice = choose_step_for(self.cfg, strict=False)
        # GPU views: the loader brings uint8 crops; colour and blur run here, batched.
        self.gpu_augment: torch.nn.Module | None = None
        if self.step_choice.views == "gpu":
            from simclr.data.views import GpuViewAugment  # kornia: imported only when used

            self.gpu_augment = GpuViewAugment(self.cfg.augment, self.cfg.data.image_size)
        # Precision and memory format for where the trainer runs (auto: simclr/config/hardware.py);
        # build_trainer makes the same precision choice from the same config.
        self.hardware: HardwareChoice = choose_for(self.cfg, self.encoder)
        if self.hardware.channels_last:
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # torch.compile backend: tests and dry runs on the CPU use aot_eager (or a callable).
        self.compile_backend: Any = "inductor"
        self._compiled = False
        self._compiled_forward: Any = None  # set by compile_step
        self.compile_seconds: float | None = None  # the first compiled step, compile included
        self._compile_started: float | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder features (the representation), without the head."""
        return self.encoder(images)

    def on_fit_start(self) -> None:
        if self.trainer.is_global_zero:
            log.info("hardware: %s", self.hardware.describe())
            log.info("step: %s", self.step_choice.describe())
        if self.step_choice.compile and not self._compiled:
            self.compile_step()

    def compile_step(self) -> None:
        """`torch.compile` the step's forward: encoder, head and NT-Xent as one function
        (with `loss.chunk_size`, the encoder in place). Compiling happens in the first
        step, which :attr:`compile_seconds` times. Checkpoint keys keep their names: the
        modules themselves are not wrapped."""
        self._compiled = True
        if self.chunk_size:
            self.encoder.compile(backend=self.compile_backend)
            return
        self._compiled_forward = torch.compile(self.forward_loss, backend=self.compile_backend)

    def forward_loss(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features, both views' projections and the NT-Xent loss of `images` (view 1
        rows, then view 2): the step's forward, what `encoder.compile` compiles."""
        features = self.encoder(images)
        z1, z2 = self.head(features).chunk(2)
        return features, z1, z2, self.criterion(z1, z2)

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
        if self._compiled and self._compile_started is None:
            self._compile_started = time.perf_counter()  # compiling happens in this step
        if self.chunk_size:
            return chunked_training_step(self, batch, batch_idx)
        views, labels = batch
        view1, view2 = self.finish_views(views)
        n = view1.shape[0]
        forward = self._compiled_forward or self.forward_loss
        # Both views through the encoder in one pass, as the reference code does:
        # BatchNorm then sees statistics over all 2N images.
        features, z1, z2, loss = forward(self._prepare(torch.cat([view1, view2])))
        if self.guard_nonfinite(loss, batch_idx):
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

    def guard_nonfinite(self, loss: torch.Tensor, batch_idx: int) -> bool:
        """True to skip this step, whose loss is NaN/inf (`loss.skip_nonfinite`).

        Without skipping, the loss is only recorded on the device (simclr/training/nonfinite.py)
        and read at logging steps, epoch ends and checkpoints: NonFiniteLossError then
        names the step it happened at. Skipping must know before the optimizer step, so
        it reads the loss at every step.
        """
        place = StepPlace(self.global_step, self.current_epoch, batch_idx)
        if self.cfg.loss.skip_nonfinite:
            return not bool(torch.isfinite(loss)) and self.skip_nonfinite(loss, place)
        self.nonfinite.record(loss, place)
        if self._trainer is not None and logs_this_step(self._trainer):
            self.check_nonfinite()
        return False

    def check_nonfinite(self) -> None:
        """NonFiniteLossError if a loss recorded since the last check was NaN/inf (one host read)."""
        found = self.nonfinite.first_bad()
        if found is not None:
            raise self._nonfinite_error(*found)

    def skip_nonfinite(self, loss: torch.Tensor, place: StepPlace) -> bool:
        """For a NaN/inf `loss`: True to skip the step (counted), else NonFiniteLossError."""
        if self._weights_finite():
            self.skipped_nonfinite += 1
            self.log("train/skipped_nonfinite", float(self.skipped_nonfinite))
            return True
        raise self._nonfinite_error(float(loss.detach()), place)

    def _nonfinite_error(self, loss: float, place: StepPlace) -> NonFiniteLossError:
        from simclr.training.resume import last_good_checkpoint

        # Skipping cannot help once the weights themselves are NaN/inf.
        why = "" if self._weights_finite() else " and the weights are no longer finite"
        seen = ""
        if place.global_step != self.global_step:
            every = getattr(self._trainer, "log_every_n_steps", "?")
            seen = (
                f", found at global step {self.global_step} (the loss is read every "
                f"trainer.log_every_n_steps={every} steps)"
            )
        return NonFiniteLossError(
            f"loss is {loss} at global step {place.global_step} (epoch {place.epoch}, batch "
            f"{place.batch}){why}{seen}; last good checkpoint: "
            f"{last_good_checkpoint(self._trainer)} (resume=auto continues from it; "
            "loss.skip_nonfinite=true skips such steps)"
        )

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._compile_started is not None and self.compile_seconds is None:
            # Host time, not waiting for the device (that would be a sync in a step):
            # compiling runs on the host and takes far longer than one step's kernels.
            self.compile_seconds = time.perf_counter() - self._compile_started
            if self.trainer.is_global_zero:
                log.info(
                    "encoder.compile: the first step took %.1f s, compiling forward and "
                    "backward included (inside trainer.max_time, when one is set)",
                    self.compile_seconds,
                )

    def on_train_epoch_end(self) -> None:
        self.check_nonfinite()  # before ModelCheckpoint writes the epoch's checkpoint

    def on_train_end(self) -> None:
        self.check_nonfinite()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_nonfinite()  # no checkpoint of weights stepped after a NaN

    def log_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        """Log the training loss of a step on `batch_size` images.

        Not `prog_bar=True`: Lightning turns progress-bar values into numbers after every
        batch (a host sync per step); RunProgressBar reads the loss at logging steps.
        """
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=batch_size)

    def _weights_finite(self) -> bool:
        flags = [torch.isfinite(p).all() for p in self.parameters()]
        return bool(torch.stack(flags).all()) if flags else True  # one host read

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        # Validation only produces features; the online-probe callback scores them.
        images, labels = batch
        return {"features": self.encoder(self._prepare(images)).detach(), "labels": labels}

    def configure_optimizers(self) -> Any:
        model = torch.nn.ModuleDict({"encoder": self.encoder, "head": self.head})
        optimization, self.schedule_plan = configure_optimization(self, model, self.cfg)
        return optimization
