"""LightningDataModule feeding pretraining (two views) and the online probe (eval views)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from simclr.config.schema import AugmentConfig, DataConfig
from simclr.config.step import views_on
from simclr.data import build_datasets
from simclr.data.encoded import EncodedCollate, EncodedTwoViews, gpu_decode
from simclr.data.epochs import EpochSeededDataset, EpochShuffleSampler
from simclr.data.splits import DataSplits, TransformedDataset
from simclr.data.views import (
    TwoViews,
    build_crop_transform,
    build_eval_transform,
    build_view_transform,
)
from simclr.errors import DataError


class SimCLRDataModule(pl.LightningDataModule):
    """Two augmented views of every pretraining image; eval views of the test split.

    The splits are read in the constructor, so a missing root or an empty folder
    fails before the model is built.
    """

    def __init__(
        self,
        data_cfg: DataConfig,
        augment_cfg: AugmentConfig,
        splits: DataSplits | None = None,
        *,
        seed: int = 0,
        start_epoch: int = 0,
        start_batch: int = 0,
    ) -> None:
        super().__init__()
        self.data_cfg = data_cfg
        self.augment_cfg = augment_cfg
        # Data order and views are functions of (seed, epoch, index): see simclr.data.epochs.
        self.seed = int(seed)
        self.start_epoch = int(start_epoch)  # > 0 when resuming
        self.start_batch = int(start_batch)  # > 0 when resuming mid-epoch
        self.splits = splits if splits is not None else build_datasets(data_cfg)
        self.pretrain_set = self.splits.pretraining_set()
        n, batch = len(self.pretrain_set), int(data_cfg.batch_size)  # type: ignore[arg-type]
        if data_cfg.drop_last and n < batch:
            fits = 1 << max(1, (n // 2).bit_length() - 1)  # a power of two, >= 2 steps an epoch
            raise DataError(
                f"{self.splits.source}: {n} images is fewer than one batch "
                f"(data.batch_size={batch}) with data.drop_last=true; pass "
                f"data.batch_size={fits} (or smaller)"
            )

    @property
    def has_labeled_eval(self) -> bool:
        """Whether an online probe can be validated (a labeled test split exists)."""
        return self.splits.test is not None

    def _loader(
        self,
        dataset: Dataset,
        shuffle: bool,
        drop_last: bool,
        sampler: Sampler | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> DataLoader:
        workers = int(self.data_cfg.num_workers)
        return DataLoader(
            dataset,
            batch_size=int(self.data_cfg.batch_size),
            shuffle=shuffle if sampler is None else None,
            sampler=sampler,
            drop_last=drop_last,
            collate_fn=collate_fn,
            num_workers=workers,
            pin_memory=bool(self.data_cfg.pin_memory) and torch.cuda.is_available(),
            # Keeping workers alive avoids re-forking them at every epoch boundary.
            persistent_workers=bool(self.data_cfg.persistent_workers) and workers > 0,
        )

    @property
    def device_type(self) -> str:
        """Where the trainer trains (cpu before one is attached)."""
        return self.trainer.strategy.root_device.type if self.trainer is not None else "cpu"

    @property
    def decodes_on_device(self) -> bool:
        """Whether the pretraining batches are file bytes decoded on the device
        (`augment.decode`, simclr.data.encoded); known once the trainer is attached."""
        return gpu_decode(self.augment_cfg, self.data_cfg.name, self.device_type)

    def train_dataloader(self) -> DataLoader:
        size = int(self.data_cfg.image_size)
        # GPU views (augment.backend, simclr/config/step.py): workers stop at uint8 crops;
        # SimCLRModule finishes the views batched.
        gpu = views_on(self.augment_cfg, self.device_type) == "gpu"
        build = build_crop_transform if gpu else build_view_transform
        views: Callable[[Any], Any] = TwoViews(build(self.augment_cfg, size))
        pretrain_set, collate = self.pretrain_set, None
        if self.decodes_on_device:
            # Workers read bytes and draw the crops; the module decodes and crops the batch.
            views, collate = EncodedTwoViews(self.augment_cfg, size), EncodedCollate(size)
            if self.data_cfg.name != "stream":
                pretrain_set = _encoded_items(self.pretrain_set, self.splits.source)
        if self.data_cfg.name == "stream":  # LitData shuffles and splits between ranks itself
            from simclr.data.stream import stream_train_loader

            return stream_train_loader(self.data_cfg, views, self.seed, collate_fn=collate)
        drop_last = bool(self.data_cfg.drop_last)
        if self.trainer is not None and self.trainer.world_size > 1:
            # Lightning puts in a DistributedSampler, itself seeded per epoch.
            shared = TransformedDataset(pretrain_set, views)
            return self._loader(shared, True, drop_last, collate_fn=collate)
        skip = self.start_batch * int(self.data_cfg.batch_size)
        if skip:
            # Lightning warns that a loader without state_dict() restarts the epoch; this
            # sampler continues it instead (its order is a function of seed and epoch).
            warnings.filterwarnings(
                "ignore", message="You're resuming from a checkpoint that ended"
            )
        sampler = EpochShuffleSampler(len(pretrain_set), self.seed, self.start_epoch, skip)  # type: ignore[arg-type]
        dataset = EpochSeededDataset(pretrain_set, views, self.seed)
        return self._loader(dataset, False, drop_last, sampler=sampler, collate_fn=collate)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if self.splits.test is None:
            return []
        transform = build_eval_transform(self.augment_cfg, int(self.data_cfg.image_size))
        return self._loader(TransformedDataset(self.splits.test, transform), False, False)


def _encoded_items(dataset: Dataset, source: str) -> Dataset:
    """`dataset` (image files, or a concatenation of them) yielding the files' bytes."""
    if hasattr(dataset, "encoded_items"):
        return dataset.encoded_items()
    if isinstance(dataset, ConcatDataset):
        return ConcatDataset([_encoded_items(d, source) for d in dataset.datasets])
    raise DataError(f"{source}: augment.decode=gpu needs image files, and these are not")
