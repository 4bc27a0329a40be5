"""The built-in data sources: scikit-learn's digits (embedded) and torchvision's CIFAR/STL-10.

scikit-learn's handwritten digits, the embedded default data set.

1,797 real 8x8 scans shipped inside scikit-learn (no download). Pixel values
0..16 become 8-bit grayscale, then RGB; the view and eval transforms upsample
them to `image_size`.

CIFAR-10/100 and STL-10 through torchvision, read from a local root only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset
from torchvision import datasets

from simclr.data.splits import DataSplits
from simclr.errors import DataError


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


# Folder that torchvision expects inside `root` for each data set.
EXPECTED_FOLDER = {
    "cifar10": "cifar-10-batches-py",
    "cifar100": "cifar-100-python",
    "stl10": "stl10_binary",
}


def _check_root(name: str, root: str | None) -> Path:
    if not root:
        raise DataError(f"data.root is not set: data.name={name} reads {EXPECTED_FOLDER[name]}/")
    path = Path(root).expanduser()
    inner = path / EXPECTED_FOLDER[name]
    if not inner.is_dir():
        raise DataError(
            f"data.root={root}: expected {inner} (the extracted {name} archive); "
            "this toolkit never downloads, so place the files there yourself"
        )
    return path


def torchvision_splits(name: str, root: str | None, stl10_unlabeled: bool = True) -> DataSplits:
    """Labeled train/test splits (and STL-10's unlabeled split) from `root`."""
    path = _check_root(name, root)
    try:
        if name == "cifar10":
            train = datasets.CIFAR10(str(path), train=True, download=False)
            test = datasets.CIFAR10(str(path), train=False, download=False)
            return DataSplits(train, test, None, list(train.classes), f"CIFAR-10 at {path}")
        if name == "cifar100":
            train = datasets.CIFAR100(str(path), train=True, download=False)
            test = datasets.CIFAR100(str(path), train=False, download=False)
            return DataSplits(train, test, None, list(train.classes), f"CIFAR-100 at {path}")
        stl_train = datasets.STL10(str(path), split="train", download=False)
        stl_test = datasets.STL10(str(path), split="test", download=False)
        unlabeled = (
            datasets.STL10(str(path), split="unlabeled", download=False)
            if stl10_unlabeled
            else None
        )
        return DataSplits(
            stl_train, stl_test, unlabeled, list(stl_train.classes), f"STL-10 at {path}"
        )
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise DataError(
            f"data.root={root}: {name} files are incomplete or corrupt ({err})"
        ) from None
