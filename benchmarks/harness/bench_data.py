"""Benchmark data: a generated folder of JPEGs, and the digits written out as image files.

Both are written once under ``benchmarks/.work/`` (git-ignored) and reused; a
``.complete`` marker tells a finished folder from one a killed run left half-written.
Every toolkit then reads the very same files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from harness.common import WORK_DIR


def _complete(root: Path) -> bool:
    return (root / ".complete").is_file()


def _smooth_image(rng: np.random.Generator, size: int) -> Image.Image:
    """A photo-like image: a coarse random colour field upsampled, plus fine noise.

    Pure noise would make JPEG decoding unrepresentatively slow; a flat image too fast.
    """
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    field = np.asarray(
        Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), np.int16
    )
    noise = rng.integers(-20, 21, (size, size, 3), dtype=np.int16)
    return Image.fromarray(np.clip(field + noise, 0, 255).astype(np.uint8))


def jpeg_folder(count: int, size: int = 32, seed: int = 0) -> Path:
    """A flat folder of `count` RGB JPEGs of `size` px (quality 90), made once."""
    root = WORK_DIR / f"jpeg{size}_{count}"
    if _complete(root):
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        _smooth_image(rng, size).save(root / f"{i:05d}.jpg", quality=90)
    (root / ".complete").write_text(f"{count}\n")
    return root


def digits_folder() -> Path:
    """scikit-learn's digits as `train/<class>/*.png` + `test/<class>/*.png` (8x8 RGB).

    The split is our digits data source's own (stratified, seed 0), so a probe on
    this folder sees the same train/test images as `data=digits`.
    """
    from simclr.data.builtin import digits_splits

    root = WORK_DIR / "digits_folder"
    if _complete(root):
        return root
    shutil.rmtree(root, ignore_errors=True)
    splits = digits_splits()
    for name, dataset in (("train", splits.train), ("test", splits.test)):
        assert dataset is not None
        for i in range(len(dataset)):  # type: ignore[arg-type]
            image, label = dataset[i]
            folder = root / name / splits.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{i:05d}.png")
    (root / ".complete").write_text("digits\n")
    return root


def labeled_counts(root: Path) -> dict[str, int]:
    """Images in `root/train` and `root/test` (0 for a missing split)."""
    return {
        split: sum(1 for p in (root / split).rglob("*") if p.is_file())
        if (root / split).is_dir()
        else 0
        for split in ("train", "test")
    }
