"""CIFAR-10/100 and STL-10 through torchvision, read from a local root only."""

from __future__ import annotations

from pathlib import Path

from torchvision import datasets

from simclr.data.splits import DataSplits
from simclr.errors import DataError

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
