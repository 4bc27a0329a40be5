"""The splits every data source provides."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch.utils.data import ConcatDataset, Dataset


@dataclass
class DataSplits:
    """Datasets whose items are `(PIL.Image in RGB, int label)`; -1 marks no label.

    `train` and `test` are labeled (either may be None for an unlabeled folder);
    `unlabeled` holds extra images for pretraining only (STL-10's unlabeled split,
    a flat folder of images).
    """

    train: Dataset | None
    test: Dataset | None
    unlabeled: Dataset | None = None
    classes: list[str] = field(default_factory=list)
    source: str = ""  # what was read, for messages and reports
    # "<file>: <problem>" for each file left out (data.on_bad_image=skip), for the report.
    skipped: list[str] = field(default_factory=list)

    def pretraining_set(self) -> Dataset:
        """Every image usable for self-supervised pretraining (never the test split)."""
        parts = [d for d in (self.train, self.unlabeled) if d is not None]
        if not parts:
            raise ValueError(f"{self.source}: no images to pretrain on")
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    @property
    def labeled(self) -> bool:
        return self.train is not None and self.test is not None
