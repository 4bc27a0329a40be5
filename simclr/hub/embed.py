"""`embed`: features of a folder (or list) of images from a loaded encoder, batched;
`embed_labeled`: the same for a labeled folder, with its labels and class names."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from simclr.data.folder import TEST_SPLIT, TRAIN_SPLIT, read_labeled_split
from simclr.data.images import IMAGE_SUFFIXES, folder_files, load_rgb, subfolders, to_rgb
from simclr.errors import ConfigError, DataError
from simclr.models.inference import encode

ImageItem = str | Path | Image.Image


class _Images(Dataset):
    """Decodes and transforms one item; an unreadable file becomes None (skipped later)."""

    def __init__(
        self, items: Sequence[ImageItem], transform: Callable[[Any], torch.Tensor]
    ) -> None:
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None]:
        item = self.items[index]
        try:
            image = to_rgb(item) if isinstance(item, Image.Image) else load_rgb(item)
        except DataError:
            return index, None
        return index, self.transform(image)


def _collate(
    batch: list[tuple[int, torch.Tensor | None]],
) -> tuple[int, list[int], torch.Tensor | None]:
    """`(items in the batch, indices of the readable ones, their stacked images)`."""
    kept = [(i, x) for i, x in batch if x is not None]
    if not kept:
        return len(batch), [], None
    return len(batch), [i for i, _ in kept], torch.stack([x for _, x in kept])


def _items(source: ImageItem | Iterable[ImageItem]) -> list[ImageItem]:
    if isinstance(source, Image.Image):
        return [source]
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            # The folder reader's definition of an image file (hidden files never are).
            files, others = folder_files(path)
            if others:
                warnings.warn(
                    f"{path}: ignoring {len(others)} non-image file(s), e.g. {others[0]}",
                    stacklevel=3,
                )
            if not files:
                raise DataError(
                    f"{path}: no image files to embed; expected {', '.join(IMAGE_SUFFIXES)} files"
                )
            return list(files)
        if not path.exists():
            raise DataError(
                f"{path}: no such file or folder; expected an image or a folder of images"
            )
        return [path]
    return list(source)


@overload
def embed(
    encoder: nn.Module,
    source: ImageItem | Iterable[ImageItem],
    *,
    transform: Callable[[Any], torch.Tensor] | None = ...,
    batch_size: int = ...,
    num_workers: int = ...,
    device: str | torch.device | None = ...,
    progress: bool = ...,
    return_paths: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def embed(
    encoder: nn.Module,
    source: ImageItem | Iterable[ImageItem],
    *,
    transform: Callable[[Any], torch.Tensor] | None = ...,
    batch_size: int = ...,
    num_workers: int = ...,
    device: str | torch.device | None = ...,
    progress: bool = ...,
    return_paths: Literal[True],
) -> tuple[np.ndarray, list[ImageItem]]: ...


def embed(
    encoder: nn.Module,
    source: ImageItem | Iterable[ImageItem],
    *,
    transform: Callable[[Any], torch.Tensor] | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    return_paths: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[ImageItem]]:
    """Encode images to a float32 array of shape (N, feature_dim), in eval mode.

    Args:
        encoder: typically from `load_encoder`; its `.transform` is used unless
            `transform` is given.
        source: a folder (its image files, sorted: the suffixes and hidden-file rule
            of :mod:`simclr.data.images`, as for training), one image file, or a
            list of paths / PIL images. Files are read as for training (EXIF
            orientation applied, 16-bit and float images scaled, the default pixel
            limit; :mod:`simclr.data.images`); PIL images are used as given, in RGB.
            A file that is not a readable image is skipped with a warning naming it.
        device: where to run; by default the encoder's device.
        return_paths: also return the items actually embedded (row order), which
            differs from the input when files were skipped.
    """
    transform = transform or getattr(encoder, "transform", None)
    if transform is None:
        raise ConfigError("the encoder has no .transform; pass transform= (PIL image -> tensor)")
    items = _items(source)
    loader = DataLoader(
        _Images(items, transform),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    kept: list[int] = []

    def readable(bar: tqdm) -> Iterator[torch.Tensor]:
        for n_items, indices, batch in loader:
            bar.update(n_items)  # the last batch may be short
            if batch is not None:
                kept.extend(indices)
                yield batch

    with tqdm(total=len(items), disable=not progress, desc="embed", unit="img") as bar:
        features = encode(encoder, readable(bar), device).numpy()
    skipped = sorted(set(range(len(items))) - set(kept))
    for index in skipped:
        warnings.warn(f"skipping {items[index]}: not a readable image", stacklevel=2)
    if not kept:
        raise DataError(f"{source}: none of the {len(items)} item(s) is a readable image")
    return (features, [items[i] for i in kept]) if return_paths else features


@dataclass(frozen=True)
class LabeledFeatures:
    """What `embed_labeled` returns: one row of `features` per embedded image.

    `labels[i]` indexes `classes` (the class folder names, sorted); `paths[i]` is
    the file row i came from (unreadable files are left out of all three).
    """

    features: np.ndarray  # (N, feature_dim) float32
    labels: np.ndarray  # (N,) int64
    classes: list[str]
    paths: list[Path]


def _labeled_directory(root: Path, split: str | None) -> tuple[Path, list[str] | None]:
    """The folder holding the class folders, and the train split's classes to match."""
    train = root / TRAIN_SPLIT
    if split is None:
        if train.is_dir():
            raise DataError(
                f"{root}: holds {TRAIN_SPLIT}/ (the data=folder layout); pass "
                f"split='{TRAIN_SPLIT}' or split='{TEST_SPLIT}' to say which split to embed"
            )
        return root, None
    directory = root / split
    if not directory.is_dir():
        raise DataError(f"{root}: no {split}/ folder; expected {directory}/<class>/ images")
    # Another split's labels must mean the train split's classes, in the same order.
    return directory, subfolders(train) if split != TRAIN_SPLIT and train.is_dir() else None


def embed_labeled(
    encoder: nn.Module,
    folder: str | Path,
    *,
    split: str | None = None,
    transform: Callable[[Any], torch.Tensor] | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_bad_image: str = "skip",
) -> LabeledFeatures:
    """Features, labels and class names of a labeled image folder, for a classifier.

    The layouts `data=folder` trains and evaluates on: `folder/<class>/*` (with
    `split=None`) or `folder/train/<class>/*` and `folder/test/<class>/*` (with
    `split="train"` or `split="test"`; the test split must have the train split's
    class folders, so a label means the same class in both). The class folders and
    image files are read by the folder reader (:func:`simclr.data.folder.read_labeled_split`:
    sorted class names are labels 0, 1, ...; hidden files are not images; damaged
    files skipped with a warning, or refused with `on_bad_image="fail"`).

        with torch.inference_mode():
            train = embed_labeled(encoder, "images/", split="train")
            test = embed_labeled(encoder, "images/", split="test")
        classifier = LogisticRegression(max_iter=1000).fit(train.features, train.labels)
        print(classifier.score(test.features, test.labels))

    The other arguments are `embed`'s.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; expected {root}/<class>/ image folders")
    directory, classes = _labeled_directory(root, split)
    dataset, names = read_labeled_split(directory, classes, on_bad_image)
    features, kept = embed(
        encoder,
        dataset.paths,
        transform=transform,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
        return_paths=True,
    )
    label_of = dict(zip(dataset.paths, dataset.labels, strict=True))
    paths = [Path(p) for p in kept if isinstance(p, (str, Path))]  # files only here
    labels = np.array([label_of[p] for p in paths], dtype=np.int64)
    return LabeledFeatures(features, labels, list(names), paths)
