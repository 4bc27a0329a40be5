"""Which files are images: the one definition the folder reader and `embed` share.

A file below a folder is an image when its suffix names a format we read
(:data:`IMAGE_SUFFIXES`, any case) and no part of its path below the folder
starts with a dot. The dot rule leaves out what tools leave behind next to real
images: macOS resource forks (``._photo.jpg``), Jupyter's ``.ipynb_checkpoints/``,
``.DS_Store``, version-control and cache directories (``.git/``, ``.cache/``).
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def is_image_path(path: Path) -> bool:
    """True for a file whose suffix names an image format we read."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_hidden(relative: Path) -> bool:
    """True when a part of `relative` (a path below the folder read) starts with a dot."""
    return any(part.startswith(".") for part in relative.parts)


def folder_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """`(images, others)` below `directory`, each sorted; hidden files are in neither.

    `others` are the visible files with another suffix (notes, CSVs), which the
    callers name in a warning rather than silently drop.
    """
    images: list[Path] = []
    others: list[Path] = []
    for top, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # never descend into .git/ & co
        for name in files:
            if not name.startswith("."):
                path = Path(top, name)
                (images if is_image_path(path) else others).append(path)
    return sorted(images), sorted(others)


def subfolders(directory: Path) -> list[str]:
    """Names of the visible subfolders of `directory`, sorted (the classes of a split)."""
    return sorted(d.name for d in directory.iterdir() if d.is_dir() and not d.name.startswith("."))
