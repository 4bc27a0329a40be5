"""The splits every data source provides, and a transform over `(image, label)` items.

The splits every data source provides.

`TransformedDataset`: a transform applied to the image of `(image, label)` items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


class TransformedDataset(Dataset):
    """Apply `transform` to the image of each `(image, label)` item."""

    def __init__(self, base: Dataset, transform: Callable[[Any], Any]) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.base[index]
        return self.transform(image), int(label)
