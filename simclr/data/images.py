"""Image files: which files are images, reading them as RGB, and screening them before training.

Which files are images: the one definition the folder reader and `embed` share.

A file below a folder is an image when its suffix names a format we read
(:data:`IMAGE_SUFFIXES`, any case) and no part of its path below the folder
starts with a dot. The dot rule leaves out what tools leave behind next to real
images: macOS resource forks (``._photo.jpg``), Jupyter's ``.ipynb_checkpoints/``,
``.DS_Store``, version-control and cache directories (``.git/``, ``.cache/``).

Reading image files into upright 8-bit RGB PIL images, whatever their mode.

Files are screened before training (:mod:`simclr.data.images`); damage found
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

Screening image files before training: a bad file is found in seconds, not hours in.

:func:`image_problem` parses each file's header with PIL (which finds files that
are not images and gives the dimensions for the pixel limit, see
:mod:`simclr.data.images`), then checks that the file is as long as its own
structure says, format by format, without decoding it where that is cheap:

* JPEG ends with an end-of-image marker, PNG with its IEND chunk, GIF with its
  trailer byte; a WebP file is as long as its RIFF header declares;
* a TIFF holds every strip (or tile) its byte counts name; an uncompressed BMP
  holds every row its header implies;
* any other file the reader accepts (PPM, RLE-compressed BMP, a TIFF without byte
  counts) is decoded in full: the pixel limit, checked first, bounds that work.

Damage that keeps a file's length (flipped bytes inside the compressed data) is
found only when decoding (:func:`simclr.data.images.load_rgb`), handled by
``data.on_bad_image`` there as well.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from simclr.config.schema import DataConfig
from simclr.errors import DataError

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


_TAIL_BYTES = 4096
# First bytes of the formats we read: to name the format of a file PIL cannot open.
_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _signature(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for sig, kind in _SIGNATURES.items() if head.startswith(sig)), None)


def _tail(f: IO[bytes], size: int) -> bytes:
    f.seek(max(0, size - _TAIL_BYTES))
    return f.read()


def _tiff_extent(img: Image.Image) -> int | None:
    """The end of the last strip or tile a TIFF's tags name, or None without byte counts."""
    tags = getattr(img, "tag_v2", {})
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):  # strips, tiles
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets is not None and counts is not None:
            offsets = offsets if isinstance(offsets, tuple) else (offsets,)
            counts = counts if isinstance(counts, tuple) else (counts,)
            return max((o + c for o, c in zip(offsets, counts, strict=False)), default=0)
    return None


def _bmp_extent(img: ImageFile.ImageFile) -> int | None:
    """Offset + stride x rows of an uncompressed BMP, or None for a compressed one."""
    if len(img.tile) != 1 or img.tile[0][0] != "raw":
        return None
    offset, args = img.tile[0][2], img.tile[0][3]
    stride = args[1] if isinstance(args, tuple) and len(args) > 1 else 0
    return offset + stride * img.size[1] if stride > 0 else None


def _short_riff(f: IO[bytes], size: int) -> str | None:
    f.seek(4)
    (riff_size,) = struct.unpack("<I", f.read(4))
    return "truncated WebP (shorter than its RIFF size)" if size < riff_size + 8 else None


def _incomplete(img: ImageFile.ImageFile, f: IO[bytes], size: int) -> str | None:
    """Why a file PIL could open is not whole (one phrase), or None if it is."""
    kind = img.format
    if kind == "JPEG":
        return None if b"\xff\xd9" in _tail(f, size) else "truncated JPEG (no end-of-image marker)"
    if kind == "PNG":
        return None if b"IEND" in _tail(f, size)[-64:] else "truncated PNG (no IEND chunk)"
    if kind == "GIF":
        whole = _tail(f, size).rstrip(b"\x00").endswith(b";")
        return None if whole else "truncated GIF (no trailer)"
    if kind == "WEBP":
        return _short_riff(f, size)
    extent = _tiff_extent(img) if kind == "TIFF" else _bmp_extent(img) if kind == "BMP" else None
    if extent is not None:
        return None if size >= extent else f"truncated {kind} ({size} of {extent} bytes)"
    try:
        img.load()
    except DECODE_ERRORS as err:
        return f"truncated or damaged {kind} ({err})"
    return None


def image_problem(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str | None:
    """Why `path` cannot be used as an image (one phrase), or None if it looks whole."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size == 0:
                return "empty file"
            f.seek(0)
            signature = _signature(f.read(16))
            if signature == "WEBP" and (short := _short_riff(f, size)):
                return short  # PIL's WebP reader fails on it with a vaguer message
            f.seek(0)
            try:
                img = Image.open(f)
            except Image.DecompressionBombError as err:
                return bomb_problem(err, max_pixels)
            except DECODE_ERRORS as err:
                if signature is None:
                    return "not an image (unrecognised content)"
                unparsed = isinstance(err, UnidentifiedImageError)
                return f"truncated or damaged {signature} ({'unparsable' if unparsed else err})"
            return pixel_problem(img.size, max_pixels) or _incomplete(img, f, size)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"


def screen_images(
    paths: list[Path], max_pixels: int | None = DEFAULT_MAX_PIXELS, threads: int = 8
) -> dict[Path, str]:
    """`{path: problem}` for the files of `paths` that :func:`image_problem` rejects."""
    allow_in_pil(max_pixels)
    with warnings.catch_warnings():
        # PIL warns about images above its own pixel limit, truncated TIFF tags, odd
        # EXIF data...: each file refused here is named with its problem instead.
        warnings.filterwarnings("ignore", module=r"PIL\.")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=threads) as pool:  # I/O and C decoders: threads
            problems = list(pool.map(lambda p: image_problem(p, max_pixels), paths, chunksize=256))
    return {p: why for p, why in zip(paths, problems, strict=True) if why is not None}
