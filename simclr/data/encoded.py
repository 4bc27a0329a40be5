"""`augment.decode=gpu`: JPEG files decoded on the device, a batch at a time.

With ``augment.backend=gpu`` the loader workers decode, crop and flip, and the
device finishes the views (:mod:`simclr.data.views`). Decoding is then most of
what is left on the CPU. With GPU decoding the work splits differently:

* **In the workers** (:class:`EncodedTwoViews`): the file's bytes are read, its
  header parsed (format, size, mode; PIL decodes nothing there), and the random
  crop and flip of both views drawn exactly as :func:`simclr.data.views.build_crop_transform`
  draws them, from the generator that :mod:`simclr.data.epochs` seeds per
  (seed, epoch, index). Order, crops and flips are therefore those of the CPU path.
  Files nvJPEG cannot take as they are (PNG and other formats, CMYK JPEGs, and, for
  image folders, JPEGs with an EXIF rotation, which the CPU path applies) are decoded
  here with PIL and handed over as pixels.
* **Collation** (:class:`EncodedCollate`) keeps the ragged byte tensors as a list
  in an :class:`EncodedBatch`, which Lightning leaves on the CPU (it is not a
  collection it moves): ``torchvision.io.decode_jpeg`` wants its input there.
* **On the device** (:meth:`EncodedBatch.decode`): one batched
  ``decode_jpeg(list, device="cuda")`` call (nvJPEG), then each image's two crops
  with the same torchvision kernel (``resized_crop``, antialiased bilinear) as the
  CPU path, and flips; out come the uint8 crop batches the GPU view pipeline
  takes. The decoders differ by rounding only (tests/unit/data/test_encoded.py and, on
  CUDA, tests/integration/test_gpu_decode.py compare them).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from simclr.config.schema import AugmentConfig
from simclr.config.step import choose_decode, views_on
from simclr.data.images import (
    DEFAULT_MAX_PIXELS,
    allow_in_pil,
    named_decode_errors,
    pixel_problem,
    to_rgb,
)
from simclr.data.views import build_crop_transform
from simclr.errors import DataError

# PIL modes of the JPEGs nvJPEG decodes to RGB as PIL would (CMYK/YCCK are not among them).
_GPU_JPEG_MODES = ("RGB", "L")
_EXIF_ORIENTATION = 0x0112


def gpu_decode(augment_cfg: AugmentConfig, data_name: Any, device_type: str) -> bool:
    """Whether pretraining batches are decoded on the device, from `augment.decode`.

    ``auto`` is gpu where it can be: the views are finished on the device anyway
    (``augment.backend=gpu``, or ``auto`` on CUDA), encoded files (folder or stream
    data) and a CUDA device (the rule: :func:`simclr.config.step.choose_decode`).
    ``gpu`` where it cannot be is a ConfigError (the preflight refuses it earlier).
    """
    views = views_on(augment_cfg, device_type)
    return choose_decode(augment_cfg, views, data_name, device_type)[0] == "gpu"


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes, with what its header says (nothing decoded yet)."""

    data: bytes
    name: str  # the file (or shard item), for messages
    width: int
    height: int
    jpeg: bool  # nvJPEG decodes it to the RGB image the CPU path would use


def read_encoded(
    data: bytes, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS, upright: bool = True
) -> EncodedImage | Image.Image:
    """The bytes of one file as an :class:`EncodedImage` where nvJPEG can decode them,
    else the image decoded here to RGB (as the CPU path decodes it).

    Args:
        upright: apply EXIF orientation, as image folders do (:func:`simclr.data.images.load_rgb`);
            shards are decoded without it (:func:`simclr.data.stream.decode_rgb`).

    Raises:
        DataError: naming `name`, for a file PIL cannot read or one above `max_pixels`.
    """
    allow_in_pil(max_pixels)
    with named_decode_errors(name, max_pixels), Image.open(io.BytesIO(data)) as img:
        too_big = pixel_problem(img.size, max_pixels)
        if too_big:
            raise DataError(f"{name}: {too_big}")
        rotated = upright and img.getexif().get(_EXIF_ORIENTATION, 1) not in (1, None)
        if img.format == "JPEG" and img.mode in _GPU_JPEG_MODES and not rotated:
            return EncodedImage(data, name, img.width, img.height, True)
        img.load()
        if upright:
            ImageOps.exif_transpose(img, in_place=True)
        return to_rgb(img)


@dataclass(frozen=True)
class EncodedViews:
    """One item for GPU decoding: the payload and both views' crop and flip.

    `payload` is the file's bytes (1-D uint8) when `jpeg`, else the decoded image
    (3 x H x W uint8). `views` holds (top, left, height, width, flip) per view.
    """

    payload: Tensor
    jpeg: bool
    name: str
    views: tuple[tuple[int, int, int, int, bool], ...]


class EncodedTwoViews:
    """The worker half of GPU decoding: crops and flips drawn, nothing decoded.

    Draws from the global generator in the order of ``TwoViews(build_crop_transform(...))``
    (view 1's crop, its flip, view 2's crop, its flip), with the same transform
    objects, so that a seeded item gets the same crops as on the CPU path.
    """

    def __init__(self, cfg: AugmentConfig, image_size: int) -> None:
        steps = build_crop_transform(cfg, image_size).transforms
        self.crop = next(t for t in steps if isinstance(t, v2.RandomResizedCrop))
        flips = [t for t in steps if isinstance(t, v2.RandomHorizontalFlip)]
        self.hflip_p = float(flips[0].p) if flips else 0.0
        self.size = list(self.crop.size)

    def _draw(self, height: int, width: int) -> tuple[int, int, int, int, bool]:
        # make_params only reads the size: a stand-in of that shape, no pixels.
        shape = torch.empty(1, 1, 1, dtype=torch.uint8).expand(3, height, width)
        p = self.crop.make_params([shape])
        # RandomHorizontalFlip draws even when it leaves the image alone (_RandomApplyTransform).
        flip = bool(torch.rand(1) < self.hflip_p) if self.hflip_p > 0 else False
        return int(p["top"]), int(p["left"]), int(p["height"]), int(p["width"]), flip

    def __call__(self, image: EncodedImage | Image.Image) -> EncodedViews:
        if isinstance(image, EncodedImage):
            payload = torch.from_numpy(np.frombuffer(image.data, dtype=np.uint8).copy())
            jpeg, name, height, width = True, image.name, image.height, image.width
        else:
            rgb = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
            payload = torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()
            jpeg, name, (height, width) = False, "", payload.shape[-2:]
        views = (self._draw(height, width), self._draw(height, width))
        return EncodedViews(payload, jpeg, name, views)

    def __repr__(self) -> str:
        return f"EncodedTwoViews(crop={self.crop!r}, hflip_p={self.hflip_p})"


class EncodedBatch:
    """A batch of :class:`EncodedViews`, still on the CPU.

    A plain class on purpose: Lightning moves tensors inside lists, tuples, dicts
    and dataclasses to the device, and ``decode_jpeg`` needs its input on the CPU.
    """

    def __init__(self, items: list[EncodedViews], size: list[int]) -> None:
        self.items = items
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def pin_memory(self) -> EncodedBatch:
        """What the DataLoader's pin_memory calls: page-locked payloads copy faster."""
        pinned = [EncodedViews(i.payload.pin_memory(), i.jpeg, i.name, i.views) for i in self.items]
        return EncodedBatch(pinned, self.size)

    def decode_images(self, device: torch.device | str) -> list[Tensor]:
        """Every image of the batch, 3 x H x W uint8 on `device`; JPEGs in one call."""
        device = torch.device(device)
        images: list[Tensor | None] = [None] * len(self.items)
        jpegs = [k for k, item in enumerate(self.items) if item.jpeg]
        if jpegs:
            decoded = _decode_jpegs([self.items[k] for k in jpegs], device)
            for k, image in zip(jpegs, decoded, strict=True):
                images[k] = image
        for k, item in enumerate(self.items):
            if not item.jpeg:
                images[k] = item.payload.to(device, non_blocking=True)
        return [image for image in images if image is not None]

    def decode(self, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """The two views' uint8 crop batches (B x 3 x S x S) on `device`."""
        images = self.decode_images(device)
        views = []
        for v in range(2):
            crops = []
            for image, item in zip(images, self.items, strict=True):
                top, left, height, width, flip = item.views[v]
                crop = F.resized_crop(
                    image,
                    top,
                    left,
                    height,
                    width,
                    self.size,
                    interpolation=v2.InterpolationMode.BILINEAR,
                    antialias=True,
                )
                crops.append(F.horizontal_flip(crop) if flip else crop)
            views.append(torch.stack(crops))
        return views[0], views[1]


def _decode_jpegs(items: list[EncodedViews], device: torch.device) -> list[Tensor]:
    """nvJPEG (or libjpeg on the CPU) on the list; a damaged file is named."""
    payloads = [item.payload for item in items]
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders in favour of TorchCodec; they still work.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        try:
            return list(decode_jpeg(payloads, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            pass  # one call for the batch fails as a whole: find the file, one by one
        for item in items:
            try:
                decode_jpeg(item.payload, mode=ImageReadMode.RGB, device=device)
            except RuntimeError as err:
                raise DataError(f"{item.name}: not a decodable JPEG ({err})") from None
        return list(decode_jpeg(payloads, mode=ImageReadMode.RGB, device=device))


class EncodedCollate:
    """The collate function of a GPU-decoding loader: `(EncodedBatch, labels)` from
    `(EncodedViews, label)` items, the bytes kept ragged. Picklable, for spawned workers."""

    def __init__(self, image_size: int) -> None:
        self.size = [int(image_size), int(image_size)]

    def __call__(self, items: list[tuple[EncodedViews, int]]) -> tuple[EncodedBatch, Tensor]:
        labels = torch.tensor([int(label) for _, label in items])
        return EncodedBatch([views for views, _ in items], self.size), labels
