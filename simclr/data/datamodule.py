"""LightningDataModule feeding pretraining (two views) and the online probe (eval views)."""

from __future__ import annotations

import functools
import math
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
from simclr.data.resolution import ResolutionSchedule, resolution_schedule
from simclr.data.splits import DataSplits, TransformedDataset
from simclr.data.views import (
    TwoViews,
    build_crop_transform,
    build_eval_transform,
    build_view_transform,
)
from simclr.errors import ConfigError, DataError


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
        # Progressive resizing (simclr.data.resolution); None: every view at image_size.
        self.resolution: ResolutionSchedule | None = resolution_schedule(data_cfg)
        self.sizes_run: dict[int, dict[int, int]] = {}  # epoch -> {batch: view size}, as drawn
        self._largest_drawn = 0
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

    def view_size(self, epoch: int, batch: int) -> int:
        """The view side of batch `batch` of `epoch`: the resolution schedule at the run's
        current plan, asked when the loader hands that batch out.

        The plan is the module's :class:`~simclr.training.optim.SchedulePlan` (which a
        `trainer.max_time` budget re-plans), else `trainer.max_epochs`.
        """
        if self.resolution is None:
            return int(self.data_cfg.image_size)
        n, size = len(self.pretrain_set), int(self.data_cfg.batch_size)  # type: ignore[arg-type]
        batches = n // size if self.data_cfg.drop_last else -(-n // size)
        ran = self.trainer.num_training_batches if self.trainer is not None else math.inf
        batches = int(ran) if math.isfinite(ran) else batches  # limit_train_batches counted
        progress = (epoch + batch / max(1, batches)) / self._planned_epochs()
        # Never smaller than a size already drawn: a budget re-planned longer moves the
        # growth later, but views that shrank again would undo the full-size steps' BN.
        view = max(self.resolution.size_at(progress), self._largest_drawn)
        self._largest_drawn = view  # kept, not re-read from sizes_run at every batch
        self.sizes_run.setdefault(int(epoch), {})[int(batch)] = view
        return view

    def _planned_epochs(self) -> float:
        trainer = self.trainer
        plan = getattr(trainer.lightning_module, "schedule_plan", None) if trainer else None
        if plan is not None:
            return plan.total_steps / max(1, plan.steps_per_epoch)
        epochs = trainer.max_epochs if trainer is not None else None
        return float(epochs) if epochs is not None and epochs > 0 else 1.0

    def state_dict(self) -> dict[str, Any]:
        """The view sizes run so far (saved in checkpoints, so a resumed run reports them all)."""
        return {"sizes_run": dict(self.sizes_run)} if self.resolution is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sizes = state_dict.get("sizes_run", {})
        for epoch, batches in sizes.items():
            self.sizes_run[int(epoch)] = {int(b): int(s) for b, s in batches.items()}
            self._largest_drawn = max([self._largest_drawn, *self.sizes_run[int(epoch)].values()])

    def _check_resolution(self, why_not: str | None) -> None:
        if self.resolution is not None and why_not:
            raise ConfigError(
                f"data.start_size={self.data_cfg.start_size}: progressive resizing needs the "
                f"single-process loader, and {why_not}; set data.start_size=null"
            )

    def train_dataloader(self) -> DataLoader:
        size = int(self.data_cfg.image_size)
        # GPU views (augment.backend, simclr/config/step.py): workers stop at uint8 crops;
        # SimCLRModule finishes the views batched.
        gpu = views_on(self.augment_cfg, self.device_type) == "gpu"
        build = build_crop_transform if gpu else build_view_transform
        views: Callable[[Any], Any] = TwoViews(build(self.augment_cfg, size))
        pretrain_set, collate = self.pretrain_set, None
        if self.decodes_on_device:
            self._check_resolution("augment.decode=gpu crops on the device")
            # Workers read bytes and draw the crops; the module decodes and crops the batch.
            views, collate = EncodedTwoViews(self.augment_cfg, size), EncodedCollate(size)
            if self.data_cfg.name != "stream":
                pretrain_set = _encoded_items(self.pretrain_set, self.splits.source)
        if self.data_cfg.name == "stream":  # LitData shuffles and splits between ranks itself
            self._check_resolution("data=stream orders its shards itself")
            from simclr.data.stream import stream_train_loader

            return stream_train_loader(self.data_cfg, views, self.seed, collate_fn=collate)
        drop_last = bool(self.data_cfg.drop_last)
        if self.trainer is not None and self.trainer.world_size > 1:
            # Lightning puts in a DistributedSampler, itself seeded per epoch.
            self._check_resolution(f"{self.trainer.world_size} processes share the data")
            shared = TransformedDataset(pretrain_set, views)
            return self._loader(shared, True, drop_last, collate_fn=collate)
        skip = self.start_batch * int(self.data_cfg.batch_size)
        if skip:
            # Lightning warns that a loader without state_dict() restarts the epoch; this
            # sampler continues it instead (its order is a function of seed and epoch).
            warnings.filterwarnings(
                "ignore", message="You're resuming from a checkpoint that ended"
            )
        sized = self.resolution is not None
        sampler = EpochShuffleSampler(
            len(pretrain_set),  # type: ignore[arg-type]
            self.seed,
            self.start_epoch,
            skip,
            size_of_batch=self.view_size if sized else None,
            batch_size=int(self.data_cfg.batch_size),
        )
        views_at = functools.partial(_two_views, build, self.augment_cfg) if sized else None
        dataset = EpochSeededDataset(pretrain_set, views, self.seed, transform_at=views_at)
        return self._loader(dataset, False, drop_last, sampler=sampler, collate_fn=collate)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if self.splits.test is None:
            return []
        transform = build_eval_transform(self.augment_cfg, int(self.data_cfg.image_size))
        return self._loader(TransformedDataset(self.splits.test, transform), False, False)


def _two_views(
    build: Callable[[AugmentConfig, int], Any], augment_cfg: AugmentConfig, size: int
) -> TwoViews:
    """Two views at `size` (a module-level function: workers may unpickle it)."""
    return TwoViews(build(augment_cfg, size))


def _encoded_items(dataset: Dataset, source: str) -> Dataset:
    """`dataset` (image files, or a concatenation of them) yielding the files' bytes."""
    if hasattr(dataset, "encoded_items"):
        return dataset.encoded_items()
    if isinstance(dataset, ConcatDataset):
        return ConcatDataset([_encoded_items(d, source) for d in dataset.datasets])
    raise DataError(f"{source}: augment.decode=gpu needs image files, and these are not")
