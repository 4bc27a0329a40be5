"""Reading image files into RGB PIL images, whatever their mode, and screening them.

:func:`screen_images` looks at the first and last bytes of every file before
training starts (a few milliseconds per thousand files): a file that is not an
image, or a JPEG/PNG cut short by an interrupted copy, is found in a second
rather than hours into a run. Damage in the middle of a file is found when it is
decoded (:func:`load_rgb`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from simclr.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def is_image_path(path: Path) -> bool:
    """True for a file whose suffix names an image format we read."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert grayscale, 16-bit, palette and RGBA images to 8-bit RGB.

    16-bit PNGs (mode I;16 / I) are rescaled from their full range rather than
    clipped, which would turn most of them white.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        image = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        # Composite on white: transparent pixels of PNG icons are usually background.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image file fully and return it in RGB; DataError names a bad file."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not in a worker later
            return to_rgb(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: not a readable image ({err})") from None


# File signatures of the formats in IMAGE_SUFFIXES (first bytes).
_SIGNATURES = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"GIF8": "gif",
    b"BM": "bmp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
_TAIL_BYTES = 4096


def image_problem(path: Path) -> str | None:
    """Why `path` cannot be a whole image (one phrase), or None if it looks fine.

    Reads only the head and the tail: JPEGs must end with an end-of-image marker
    and PNGs with their IEND chunk, which a truncated copy lacks.
    """
    try:
        with path.open("rb") as f:
            head = f.read(16)
            size = f.seek(0, 2)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if size == 0:
        return "empty file"
    kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = "webp"
    if kind == "jpeg" and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if kind == "png" and b"IEND" not in tail[-64:]:
        return "truncated PNG (no IEND chunk)"
    if kind is not None:
        return None
    try:  # a format without a signature above (PPM, ...): let PIL parse the header
        with Image.open(path):
            return None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "not an image (unrecognised content)"


def screen_images(paths: list[Path], threads: int = 8) -> dict[Path, str]:
    """`{path: problem}` for the files of `paths` that :func:`image_problem` rejects."""
    with ThreadPoolExecutor(max_workers=threads) as pool:  # I/O bound: threads suffice
        problems = list(pool.map(image_problem, paths, chunksize=256))
    return {p: why for p, why in zip(paths, problems, strict=True) if why is not None}
