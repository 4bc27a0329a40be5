"""Screening image files before training: a bad file is found in seconds, not hours in.

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

import struct
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from PIL import Image, ImageFile, UnidentifiedImageError

from simclr.data.images import (
    DECODE_ERRORS,
    DEFAULT_MAX_PIXELS,
    allow_in_pil,
    bomb_problem,
    pixel_problem,
)

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
