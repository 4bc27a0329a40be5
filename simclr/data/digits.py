"""scikit-learn's handwritten digits, the embedded default data set.

1,797 real 8x8 scans shipped inside scikit-learn (no download). Pixel values
0..16 become 8-bit grayscale, then RGB; the view and eval transforms upsample
them to `image_size`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from simclr.data.splits import DataSplits


class ArrayImageDataset(Dataset):
    """Images held in memory as a uint8 array (N, H, W), with integer labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images
        self.labels = labels.astype(np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index], mode="L").convert("RGB"), int(self.labels[index])


def digits_splits(test_fraction: float = 0.3, seed: int = 0) -> DataSplits:
    """Stratified train/test split of the digits, fixed by `seed`."""
    bunch = load_digits()
    images = np.clip(bunch.images * 16.0, 0, 255).astype(np.uint8)  # 0..16 -> 0..255
    labels = bunch.target
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    return DataSplits(
        train=ArrayImageDataset(images[train_idx], labels[train_idx]),
        test=ArrayImageDataset(images[test_idx], labels[test_idx]),
        classes=[str(c) for c in bunch.target_names],
        source="digits (sklearn.datasets.load_digits)",
    )
