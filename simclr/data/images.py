"""Reading image files into upright 8-bit RGB PIL images, whatever their mode.

Files are screened before training (:mod:`simclr.data.screening`); damage found
only when decoding is reported by :func:`load_rgb`, naming the file.

Rules applied to every file read for training, evaluation and `embed`:

* **Pixel limit.** An image of more than `max_pixels` pixels (``data.max_image_pixels``;
  default PIL's own ``Image.MAX_IMAGE_PIXELS``, 89,478,485, about 9459 x 9459) is a
  bad image, like a truncated one: a small file that declares huge dimensions (a
  "decompression bomb") would otherwise take gigabytes of memory in each worker.
  PIL has no per-call limit, only the global ``Image.MAX_IMAGE_PIXELS`` (it warns
  above it and refuses above twice it). A limit *below* PIL's is checked here
  without touching that global; a limit *above* it (or none, ``null``) raises the
  global once, explicitly, because PIL would otherwise refuse what the
  configuration allows (:func:`allow_in_pil`). It is never lowered.
* **EXIF orientation** is applied (``ImageOps.exif_transpose``): a photo taken
  with the camera turned is used the way it is displayed.
* **Bit depth** (:func:`to_rgb`): 16-bit integer images are scaled by 1/257
  (0..65535 onto 0..255, the type's full range, so dark frames stay dark); 32-bit
  float images whose finite values all lie in [0, 1] are scaled by 255; other
  float images and 32-bit integer images are stretched from their own minimum and
  maximum onto 0..255 (their range has no convention to rely on); NaN and
  infinite pixels become 0, and a constant image becomes black.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from simclr.config.schema import DataConfig
from simclr.errors import DataError

# The default limit, defined once in the schema (data.max_image_pixels).
DEFAULT_MAX_PIXELS: int | None = DataConfig.max_image_pixels

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# What PIL raises for a damaged or unreadable file, while opening or decoding it.
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)


def allow_in_pil(max_pixels: int | None) -> None:
    """Raise PIL's global pixel limit to `max_pixels` if it is lower (see the module doc)."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and (max_pixels is None or max_pixels > current):
        Image.MAX_IMAGE_PIXELS = max_pixels


def pixel_problem(size: tuple[int, int], max_pixels: int | None) -> str | None:
    """Why an image of `size` is refused (one phrase), or None under the limit."""
    width, height = size
    if max_pixels is None or width * height <= max_pixels:
        return None
    return _too_many(f"{width}x{height} = {width * height:,}", max_pixels)


def bomb_problem(err: Image.DecompressionBombError, max_pixels: int | None) -> str:
    """The phrase of :func:`pixel_problem` for an image PIL itself refused to open."""
    found = re.search(r"\((\d+) pixels\)", str(err))
    return _too_many(f"{int(found.group(1)):,}" if found else "more than PIL's limit", max_pixels)


def _too_many(pixels: str, max_pixels: int | None) -> str:
    return f"{pixels} pixels, above data.max_image_pixels={max_pixels} (a decompression bomb?)"


def _is_sixteen_bit(image: Image.Image) -> bool:
    """Mode I;16*, or mode I decoded from a 16-bit file (PNG; unsigned 16-bit TIFF)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return True
    if image.mode != "I":
        return False
    if image.format == "PNG":  # PNG has no 32-bit samples; older Pillows decode 16 bits as I
        return True
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return False
    bits = tags.get(258, (32,))  # BitsPerSample
    sample_format = tags.get(339, (1,))  # 1 unsigned, 2 signed, 3 float
    bits = bits[0] if isinstance(bits, tuple) else bits
    sample_format = sample_format[0] if isinstance(sample_format, tuple) else sample_format
    return bool(bits == 16 and sample_format == 1)


def _to_eight_bit(arr: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """The scaling rules of the module doc, as uint8."""
    is_float = arr.dtype.kind == "f"
    arr = arr.astype(np.float64)
    if sixteen_bit:
        return np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
    finite = np.isfinite(arr)
    out = np.zeros(arr.shape)
    if finite.any():
        low, high = float(arr[finite].min()), float(arr[finite].max())
        if is_float and low >= 0.0 and high <= 1.0:
            out[finite] = arr[finite] * 255.0
        elif high > low:
            out[finite] = (arr[finite] - low) / (high - low) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert grayscale, 16/32-bit, float, palette and RGBA images to 8-bit RGB.

    High-bit-depth and float images are scaled by the rules of the module doc,
    never clipped (which would turn 16-bit images white and [0, 1] floats black).
    """
    if image.mode in (*_SIXTEEN_BIT_MODES, "I", "F"):
        image = Image.fromarray(_to_eight_bit(np.asarray(image), _is_sixteen_bit(image)))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        # Composite on white: transparent pixels of PNG icons are usually background.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


@contextmanager
def named_decode_errors(name: str | Path, max_pixels: int | None) -> Iterator[None]:
    """PIL's errors while decoding `name` as one DataError naming the file (every reader)."""
    try:
        yield
    except Image.DecompressionBombError as err:
        raise DataError(f"{name}: {bomb_problem(err, max_pixels)}") from None
    except DECODE_ERRORS as err:
        raise DataError(f"{name}: not a readable image ({err})") from None


def load_rgb(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file fully, upright, in 8-bit RGB; DataError names a bad file."""
    allow_in_pil(max_pixels)
    with named_decode_errors(path, max_pixels), Image.open(path) as img:
        too_big = pixel_problem(img.size, max_pixels)
        if too_big:
            raise DataError(f"{path}: {too_big}")
        img.load()  # decode now, so a truncated file fails here and not in a worker later
        ImageOps.exif_transpose(img, in_place=True)
        return to_rgb(img)
