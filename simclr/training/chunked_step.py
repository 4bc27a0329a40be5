"""The training step of `loss.chunk_size`: gradient caching under Lightning's manual optimization.

:mod:`simclr.losses.gradcache` computes the gradient of the full-batch NT-Xent chunk by
chunk; the optimizer step then has to follow several backward passes, which
Lightning's automatic optimization (one loss, one backward) cannot express. With
``loss.chunk_size`` set, :class:`~simclr.training.module.SimCLRModule` switches to manual
optimization and its training step is :func:`chunked_training_step`, which does
what the automatic loop would otherwise do:

* **precision**: every chunk's backward goes through ``manual_backward``, so the
  precision plugin scales it (16-mixed) and the optimizer step unscales;
* **DDP**: all chunks but the last run in ``strategy.block_backward_sync()``
  (DDP's ``no_sync``), so the gradients are all-reduced once per step;
* **gradient clipping** at ``trainer.gradient_clip_val`` (the Trainer itself
  refuses clipping under manual optimization): :class:`ManualGradientClipping`,
  a callback run by the optimizer step after unscaling, as in the automatic loop;
* **learning-rate schedule**: stepped after every batch, as the automatic loop
  does (also after a skipped, non-finite one);
* **non-finite loss**: known before any backward pass; skipped or reported by
  the module's own rule (``loss.skip_nonfinite``; without it, read at logging steps).

Gradient accumulation over batches is refused with chunks (simclr.config.validate):
chunks already give the memory of a small batch with the negatives of a large one,
so raise ``data.batch_size`` instead.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from simclr.losses.gradcache import backward_chunks, forward_chunks, projection_gradient


class ChunkedModule(Protocol):
    """What :func:`chunked_training_step` uses of the LightningModule."""

    # Read-only here (properties), so that subclasses of nn.Module satisfy them.
    @property
    def encoder(self) -> torch.nn.Module: ...
    @property
    def head(self) -> torch.nn.Module: ...
    @property
    def criterion(self) -> torch.nn.Module: ...
    @property
    def chunk_size(self) -> int: ...
    @property
    def trainer(self) -> pl.Trainer: ...

    def finish_views(self, views: Any) -> tuple[Any, Any]: ...
    def _prepare(self, images: Tensor) -> Tensor: ...
    def guard_nonfinite(self, loss: Tensor, batch_idx: int) -> bool: ...
    def log_loss(self, loss: Tensor, batch_size: int) -> None: ...
    def optimizers(self) -> Any: ...
    def lr_schedulers(self) -> Any: ...
    def manual_backward(self, loss: Tensor, *args: Any) -> None: ...


def chunked_training_step(
    module: ChunkedModule, batch: Any, batch_idx: int
) -> dict[str, Tensor] | None:
    """One optimizer step on the batch's full NT-Xent, `module.chunk_size` images per pass."""
    views, labels = batch
    view1, view2 = module.finish_views(views)
    n = view1.shape[0]
    images = module._prepare(torch.cat([view1, view2]))  # rows: view 1, then view 2

    def features_and_projections(x: Tensor) -> tuple[Tensor, Tensor]:
        features = module.encoder(x)
        return features, module.head(features)

    def project(x: Tensor) -> Tensor:
        return module.head(module.encoder(x))

    def full_batch_loss(z: Tensor) -> Tensor:
        z1, z2 = z.chunk(2)
        return module.criterion(z1, z2)

    outputs, states = forward_chunks(features_and_projections, images, module.chunk_size)
    features = torch.cat([f for f, _ in outputs])
    loss, grad = projection_gradient(full_batch_loss, torch.cat([z for _, z in outputs]))
    optimizer = module.optimizers()
    scheduler = module.lr_schedulers()
    if module.guard_nonfinite(loss, batch_idx):
        scheduler.step()  # the automatic loop steps the schedule after a skipped batch too
        return None
    optimizer.zero_grad()
    strategy = module.trainer.strategy
    no_sync: Any = getattr(strategy, "block_backward_sync", contextlib.nullcontext)
    backward_chunks(
        project,
        images,
        grad,
        module.chunk_size,
        states,
        backward=lambda z, g: module.manual_backward(z, g),
        no_sync=no_sync,
        norm_modules=(module.encoder, module.head),
    )
    optimizer.step()
    scheduler.step()
    module.log_loss(loss, n)
    return {"loss": loss, "features": features[:n].detach(), "labels": labels}


class ManualGradientClipping(Callback):
    """Clip the gradient norm before each optimizer step under manual optimization.

    Lightning calls ``on_before_optimizer_step`` from the optimizer step after the
    precision plugin has unscaled the gradients (16-mixed), so the threshold applies
    to the true gradients, as with the Trainer's own ``gradient_clip_val``.
    """

    def __init__(self, max_norm: float) -> None:
        self.max_norm = float(max_norm)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not pl_module.automatic_optimization:
            pl_module.clip_gradients(
                optimizer, gradient_clip_val=self.max_norm, gradient_clip_algorithm="norm"
            )
