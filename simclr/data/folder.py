"""Image folders: `DIR/train/<class>/*` + `DIR/test/<class>/*`, or a flat folder of images."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from simclr.data.encoded import EncodedImage, read_encoded
from simclr.data.images import DEFAULT_MAX_PIXELS, folder_files, load_rgb, screen_images, subfolders
from simclr.data.splits import DataSplits
from simclr.errors import DataError

# The labeled layout: DIR/train/<class>/* and DIR/test/<class>/*.
TRAIN_SPLIT, TEST_SPLIT = "train", "test"


class ImageFileDataset(Dataset):
    """A list of image files with labels; decodes to RGB on access.

    Files are screened when the folder is read (see `folder_splits`); damage
    found only when decoding is handled here: with `on_bad_image="skip"` the file
    is named in a warning and the next image is returned in its place, so a long
    run survives one bad JPEG; with "fail" it raises DataError naming the file.
    """

    def __init__(
        self,
        paths: list[Path],
        labels: list[int],
        on_bad_image: str = "fail",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.paths = paths
        self.labels = labels
        self.on_bad_image = on_bad_image
        self.max_pixels = max_pixels
        self.bad_files: set[str] = set()
        # True: items are the files' bytes where nvJPEG can decode them (augment.decode=gpu,
        # simclr.data.encoded), else RGB images as usual. Set on a copy: see encoded_items().
        self.encoded = False

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image | EncodedImage, int]:
        for _ in range(10):
            try:
                return self._read(self.paths[index]), self.labels[index]
            except DataError as err:
                if self.on_bad_image != "skip":
                    raise
                if str(self.paths[index]) not in self.bad_files:
                    self.bad_files.add(str(self.paths[index]))
                    warnings.warn(f"skipping unreadable image: {err}", stacklevel=2)
                # The next file, not a random one: no draw from the generators, whose
                # streams fix the views (simclr.data.epochs).
                index = (index + 1) % len(self.paths)
        raise DataError(f"{self.paths[index]}: too many unreadable images in a row")

    def _read(self, path: Path) -> Image.Image | EncodedImage:
        if not self.encoded:
            return load_rgb(path, self.max_pixels)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise DataError(f"{path}: not readable ({err.strerror or err})") from None
        return read_encoded(data, str(path), self.max_pixels, upright=True)

    def encoded_items(self) -> ImageFileDataset:
        """A copy whose items are encoded files (this one keeps decoding: evaluation
        and the online probe read the same splits)."""
        encoded = copy.copy(self)
        encoded.encoded = True
        return encoded


def _image_files(directory: Path) -> list[Path]:
    files, others = folder_files(directory)  # hidden files are in neither
    if others:
        warnings.warn(
            f"{directory}: ignoring {len(others)} non-image file(s), e.g. {others[0]}",
            stacklevel=3,
        )
    return files


def _screened(
    files: list[Path], on_bad: str, skipped: list[str], max_pixels: int | None
) -> list[Path]:
    """`files` without the damaged ones (skip), or DataError naming the first (fail)."""
    bad = screen_images(files, max_pixels)
    if not bad:
        return files
    first, why = next(iter(bad.items()))
    if on_bad != "skip":
        others = f" ({len(bad) - 1} more like it)" if len(bad) > 1 else ""
        raise DataError(
            f"{first}: {why}{others}; remove or replace it, or pass data.on_bad_image=skip"
        )
    warnings.warn(
        f"data.on_bad_image=skip: leaving out {len(bad)} unreadable file(s), e.g. {first}: {why}",
        stacklevel=3,
    )
    skipped += [f"{p}: {w}" for p, w in bad.items()]
    return [p for p in files if p not in bad]


def _labeled_split(
    directory: Path,
    classes: list[str] | None,
    on_bad: str,
    skipped: list[str],
    max_pixels: int | None,
) -> ImageFileDataset:
    found = subfolders(directory)
    if not found:
        raise DataError(f"{directory}: expected one subfolder per class, found none")
    if classes is not None and found != classes:
        raise DataError(f"{directory}: classes {found} differ from the train split's {classes}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(found):
        files = _screened(_image_files(directory / name), on_bad, skipped, max_pixels)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise DataError(f"{directory}: no images (expected .jpg/.png files in class folders)")
    return ImageFileDataset(paths, labels, on_bad, max_pixels)


def read_labeled_split(
    directory: Path,
    classes: list[str] | None = None,
    on_bad_image: str = "fail",
    max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[ImageFileDataset, list[str]]:
    """One labeled split, `directory/<class>/*`, as the folder reader reads it:
    `(dataset, class names in label order)`.

    `classes`, when given, are the train split's: a split with other class folders
    is refused, so label i means the same class in every split. Bad files are
    screened as in `folder_splits`.
    """
    dataset = _labeled_split(directory, classes, on_bad_image, [], max_image_pixels)
    return dataset, classes if classes is not None else subfolders(directory)


def folder_splits(
    root: str | None, on_bad_image: str = "fail", max_image_pixels: int | None = DEFAULT_MAX_PIXELS
) -> DataSplits:
    """Read a labeled (train/ + test/) or unlabeled (flat) image folder.

    Which files are images: :mod:`simclr.data.images` (hidden ones never are);
    each is screened (:mod:`simclr.data.images`) with `max_image_pixels` as the
    pixel limit, and a bad one fails the read or, with ``on_bad_image="skip"``, is left out.
    """
    if not root:
        raise DataError("data.root is not set: data.name=folder reads a directory of images")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"data.root={root}: no such directory")
    if not any(path.iterdir()):
        raise DataError(f"data.root={root}: the directory is empty")
    skipped: list[str] = []
    if (path / TRAIN_SPLIT).is_dir():
        train = _labeled_split(path / TRAIN_SPLIT, None, on_bad_image, skipped, max_image_pixels)
        classes = subfolders(path / TRAIN_SPLIT)
        test = (
            _labeled_split(path / TEST_SPLIT, classes, on_bad_image, skipped, max_image_pixels)
            if (path / TEST_SPLIT).is_dir()
            else None
        )
        return DataSplits(train, test, None, classes, f"image folder {path}", skipped)
    files = _image_files(path)
    if not files:
        raise DataError(f"data.root={root}: no images found (expected .jpg/.png files)")
    files = _screened(files, on_bad_image, skipped, max_image_pixels)
    if not files:
        raise DataError(f"data.root={root}: every image is unreadable (see the warning above)")
    unlabeled = ImageFileDataset(files, [-1] * len(files), on_bad_image, max_image_pixels)
    return DataSplits(None, None, unlabeled, [], f"unlabeled image folder {path}", skipped)
