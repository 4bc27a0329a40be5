"""`embed`: features of a folder (or list) of images from a loaded encoder, batched."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from simclr.data.image_files import IMAGE_SUFFIXES, folder_files
from simclr.data.images import load_rgb, to_rgb
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
            of :mod:`simclr.data.image_files`, as for training), one image file, or a
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
