"""Reading image files into RGB PIL images, whatever their mode."""

from __future__ import annotations

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
