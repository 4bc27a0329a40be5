"""Semi-supervised fine-tuning in the fastai manner, with Lightning.

Phase 1 trains a new linear head on the frozen encoder (its BatchNorm statistics
frozen too). Phase 2 unfreezes everything and trains with discriminative learning
rates: the head gets `lr`, the last encoder stage `lr * decay`, the one before
`lr * decay**2`, down to the stem, since early layers hold the most general
features and should move least. Each phase uses a one-cycle schedule. An optional
learning-rate finder (Lightning's Tuner) picks `lr` for the head first. bf16
mixed precision on a GPU that supports it. Finally the BatchNorm statistics are
re-estimated on the train split's images (labels unused): a few dozen steps leave
the running averages far from the trained weights' statistics.

The supervised-from-scratch baseline uses the same data, schedule length and
head, but trains every layer from random init at one rate from the start.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from simclr.config.schema import AugmentConfig, FinetuneConfig
from simclr.data.splits import TransformedDataset
from simclr.data.views import build_eval_transform
from simclr.evaluation.probe import Hyper
from simclr.models.classifier import Classifier, attached_head, build_classifier, resolve_head_layer
from simclr.models.encoder import infer_feature_dim
from simclr.models.inference import encode

BN_IMAGES = 10_000  # enough for stable BatchNorm statistics, bounded on large splits


def encoder_stages(encoder: nn.Module) -> list[list[nn.Parameter]]:
    """Parameters grouped by depth, earliest first: a ResNet's stem then layer1..4;
    any other encoder, its top-level children that hold parameters."""
    if all(hasattr(encoder, f"layer{i}") for i in range(1, 5)):
        names = [["conv1", "bn1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]
        stages = [[p for n in group for p in getattr(encoder, n).parameters()] for group in names]
    else:
        stages = [list(child.parameters()) for child in encoder.children()]
    return [s for s in stages if s]


def discriminative_groups(model: Classifier, lr: float, decay: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head at `lr`, stage k from the top at `lr * decay**k`
    (the kept projection-head layers, if any, are the top stage)."""
    stages = encoder_stages(model.encoder)
    stages += [ps for ps in [list(model.projection.parameters())] if ps]
    groups = [
        {"params": params, "lr": lr * decay ** (len(stages) - i), "name": f"stage{i}"}
        for i, params in enumerate(stages)
    ]
    return [*groups, {"params": list(model.head.parameters()), "lr": lr, "name": "head"}]


def set_encoder_frozen(model: Classifier, frozen: bool) -> None:
    """Stop (or restart) gradients into the encoder and the kept projection-head layers."""
    for p in [*model.encoder.parameters(), *model.projection.parameters()]:
        p.requires_grad_(not frozen)


class FinetuneModule(pl.LightningModule):
    """One phase of fine-tuning: `frozen` trains the head only, else all layers."""

    def __init__(
        self, model: Classifier, lr: float, frozen: bool, decay: float, weight_decay: float
    ) -> None:
        super().__init__()
        self.model, self.lr, self.frozen = model, lr, frozen
        self.decay, self.weight_decay = decay, weight_decay

    def on_train_epoch_start(self) -> None:
        # Lightning keeps modules in the mode it finds them (a loaded encoder is in eval
        # mode); a frozen encoder stays in eval mode so its BatchNorm statistics hold.
        self.model.train()
        if self.frozen:
            self.model.encoder.eval()
            self.model.projection.eval()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        images, labels = batch
        loss = F.cross_entropy(self.model(images), labels)
        self.log("finetune_loss", loss, prog_bar=False)
        return loss

    def configure_optimizers(self) -> Any:
        if self.frozen:
            groups: list[dict[str, Any]] = [
                {"params": list(self.model.head.parameters()), "lr": self.lr}
            ]
        else:
            groups = discriminative_groups(self.model, self.lr, self.decay)
        opt = torch.optim.AdamW(groups, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        rates = [g["lr"] for g in groups]
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=rates, total_steps=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    # One Trainer per fraction x seed x phase: their banners would bury the progress.
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _trainer(epochs: int, root: str, callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="auto",
        devices=1,
        precision="bf16-mixed" if bf16 else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=list(callbacks),
    )


def train_phase(
    model: Classifier,
    loader: DataLoader,
    *,
    frozen: bool,
    epochs: int,
    lr: float,
    decay: float,
    weight_decay: float,
    lr_finder: bool = False,
    callbacks: Sequence[pl.Callback] = (),
) -> float:
    """Run one phase for `epochs` epochs; returns the head rate used (found if asked)."""
    set_encoder_frozen(model, frozen)
    model.train()
    module = FinetuneModule(model, lr, frozen, decay, weight_decay)
    with tempfile.TemporaryDirectory() as root, _quiet_lightning():
        if lr_finder:
            from pytorch_lightning.tuner import Tuner

            Tuner(_trainer(epochs, root)).lr_find(module, train_dataloaders=loader)
        if epochs > 0:
            _trainer(epochs, root, callbacks).fit(module, train_dataloaders=loader)
    return float(module.lr)


def finetune_transform(augment_cfg: AugmentConfig, image_size: int) -> v2.Compose:
    """Crop and flip as in pretraining, no colour distortion: the labels' views."""
    steps: list[v2.Transform] = [
        v2.ToImage(),
        v2.RandomResizedCrop(image_size, scale=tuple(augment_cfg.crop_scale), antialias=True),
    ]
    if augment_cfg.hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=augment_cfg.hflip_p))
    steps += [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(augment_cfg.mean, augment_cfg.std),
    ]
    return v2.Compose(steps)


def finetune(
    encoder: nn.Module,
    train_set: Dataset,
    indices: Sequence[int],
    num_classes: int,
    augment_cfg: AugmentConfig,
    image_size: int,
    cfg: FinetuneConfig,
    seed: int,
    *,
    pretrained: bool = True,
    num_workers: int = 0,
) -> tuple[Classifier, dict[str, Hyper]]:
    """Fine-tune a copy of `encoder` on `train_set[indices]` as `cfg` (`eval.finetune`) says.

    Returns the classifier and the hyperparameters it used. It starts from
    `cfg.from_head_layer` of the projection head the encoder carries
    (:func:`simclr.models.classifier.attach_head`). With `pretrained=False` it is the
    supervised-from-scratch baseline: from the encoder output, no frozen phase, one
    rate for all.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = copy.deepcopy(encoder)
        dim = int(getattr(encoder, "feature_dim", 0)) or infer_feature_dim(encoder, image_size)
        head = attached_head(encoder) if pretrained else None
        layer = resolve_head_layer(cfg.from_head_layer, head) if pretrained else 0
        model = build_classifier(encoder, num_classes, dim, head, layer)
        transform = finetune_transform(augment_cfg, image_size)
        data = TransformedDataset(Subset(train_set, list(indices)), transform)
        batch = min(cfg.batch_size, len(indices))
        loader = DataLoader(
            data,
            batch_size=batch,
            shuffle=True,
            drop_last=len(indices) > batch,  # no 1-example last batch for BatchNorm
            generator=torch.Generator().manual_seed(seed),
            num_workers=num_workers,
            persistent_workers=num_workers > 0,  # one pool for every epoch of both phases
        )
        lr, frozen_epochs = cfg.lr, cfg.frozen_epochs
        phase = partial(train_phase, model, loader, weight_decay=cfg.weight_decay)
        if pretrained:
            decay = cfg.lr_decay_per_stage
            lr = phase(
                frozen=True, epochs=frozen_epochs, lr=lr, decay=decay, lr_finder=cfg.lr_finder
            )
            phase(frozen=False, epochs=cfg.unfrozen_epochs, lr=lr, decay=decay)
        else:
            epochs = frozen_epochs + cfg.unfrozen_epochs
            phase(frozen=False, epochs=epochs, lr=lr, decay=1.0)
        eval_transform = build_eval_transform(augment_cfg, image_size)
        recalibrate_batchnorm(model, train_set, eval_transform, seed, num_workers)
    return model, {"lr": lr, "from_head_layer": layer}


def recalibrate_batchnorm(
    model: nn.Module,
    images: Dataset,
    transform: Any,
    seed: int,
    num_workers: int = 0,
    max_images: int = BN_IMAGES,
) -> None:
    """Re-estimate BatchNorm statistics on `images` (labels unused).

    After a few dozen steps on a few labels the running averages lag far behind
    the trained weights; in eval mode the classifier then falls to chance. One
    pass over (up to `max_images` of) the train split's images fixes them.
    """
    n = len(images)  # type: ignore[arg-type]
    picked = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_images]
    data = TransformedDataset(Subset(images, picked.tolist()), transform)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loader = DataLoader(data, batch_size=256, num_workers=num_workers)
    update_bn(loader, model.to(device), device)


def predict_images(
    model: nn.Module, dataset: Dataset, transform: Any, batch_size: int
) -> np.ndarray:
    """Predicted class of every item of `dataset` (eval transform, eval mode, GPU if any)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loader = DataLoader(TransformedDataset(dataset, transform), batch_size=batch_size)
    return encode(model.to(device), loader, device).argmax(dim=1).numpy()
