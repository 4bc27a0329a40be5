"""Frozen features of the labeled splits (cached on disk) and the baselines' representations.

Frozen features of the labeled splits, extracted once and cached on disk.

The cache file name is a hash of what determines the features: the model (a
checkpoint file's path, size and modification time, or a hash of the weights),
the evaluation data config, the exact eval transform, and the data's content:
every image file's path, size, modification time and bytes (:func:`data_fingerprint`).
Any change to one of them is a new file, so a stale cache cannot be read by
mistake: an image replaced by another of the same name is read again.

The representations an evaluation compares: the encoder and its baselines.

`random_init` (the same architecture, untrained) and `raw_pixels` (the
eval-transformed image itself) are the floors the SimCLR features must clear;
`supervised` (trained from scratch on the labels) is a fine-tuning baseline and
is built by the protocol, not here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from simclr.config.hardware import HardwareChoice
from simclr.config.schema import DataConfig, RunConfig
from simclr.data.splits import TransformedDataset
from simclr.models.inference import encode

log = logging.getLogger(__name__)

# Data-config keys that change which images are read or how; batching and worker
# settings do not change a feature, so they stay out of the cache key.
_DATA_KEYS = (
    "name",
    "root",
    "image_size",
    "split_seed",
    "test_fraction",
    "on_bad_image",
    "max_image_pixels",
)
# Bumped whenever images decode differently (2: EXIF orientation, scaled high bit depths)
# or the key changes,
# so features cached by an earlier version are not reused.
CACHE_VERSION = 3  # 3: the data's content in the key


@dataclass
class FeatureSet:
    """Features and labels of the labeled train and test splits."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.train_x.shape[1])


class RawPixels(nn.Module):
    """The eval-transformed image itself as the representation, average-pooled to `size`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] > self.size or images.shape[-2] > self.size:
            images = F.adaptive_avg_pool2d(images, self.size)
        return images.flatten(1)


def weights_identity(model: nn.Module) -> str:
    """sha256 of a module's state dict (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def checkpoint_identity(path: Path) -> str:
    """The checkpoint file as seen now: resolved path, size and modification time."""
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def file_fingerprint(paths: Iterable[Path]) -> str:
    """A digest of each file's path, size, modification time and bytes, in order."""
    digest = hashlib.blake2b(digest_size=20)
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _split_files(dataset: Any) -> list[Path] | None:
    """The image files of a split read from files (a folder, or a subset of one)."""
    paths = getattr(dataset, "paths", None)
    if paths is not None:
        return [Path(p) for p in paths]
    base, indices = getattr(dataset, "dataset", None), getattr(dataset, "indices", None)
    inner = _split_files(base) if base is not None and indices is not None else None
    return None if inner is None else [inner[int(i)] for i in indices]  # type: ignore[union-attr]


def data_fingerprint(splits: Any, data_cfg: DataConfig) -> str | None:
    """The content of the evaluation data: its image files, else every file under
    `data.root` (data sets stored in a few files, shards); None for embedded data."""
    train, test = _split_files(splits.train), _split_files(splits.test)
    files = train + test if train is not None and test is not None else None
    root = getattr(data_cfg, "root", None)
    if files is None and root and "://" not in str(root) and Path(str(root)).is_dir():
        files = sorted(p for p in Path(str(root)).expanduser().rglob("*") if p.is_file())
    return None if files is None else file_fingerprint(files)


def cache_key(model_id: str, data_cfg: DataConfig, transform: Any, contents: Any = None) -> str:
    """Hex digest naming the features of `model_id` on `data_cfg` under `transform`.

    `contents` describes what the splits hold (classes, sizes): a folder whose
    images changed under the same root must not reuse stale features.
    """
    data = {k: getattr(data_cfg, k, None) for k in _DATA_KEYS}
    blob = json.dumps(
        {
            "version": CACHE_VERSION,
            "model": model_id,
            "data": data,
            "transform": repr(transform),
            "contents": contents,
        },
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def extract(
    model: nn.Module,
    dataset: Dataset,
    transform: Any,
    *,
    batch_size: int,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    desc: str = "features",
    hardware: HardwareChoice | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`(features float32 (N, D), labels int64 (N,))` of every item, in dataset order.

    With `hardware`, the model runs under its precision's autocast and memory format
    (simclr/config/hardware.py), as in training; the features are float32 regardless.
    """
    loader = DataLoader(
        TransformedDataset(dataset, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
    )
    labels: list[torch.Tensor] = []

    def images(batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[torch.Tensor]:
        for batch, targets in batches:
            labels.append(targets)
            yield batch

    batches = tqdm(loader, desc=desc, unit="batch", leave=False)
    feats = encode(
        model.to(device),
        images(batches),
        device,
        autocast=hardware.autocast_dtype if hardware else None,
        channels_last=hardware.channels_last if hardware else False,
    )
    return feats.numpy(), torch.cat(labels).numpy().astype(np.int64)


def cached_features(
    model: nn.Module,
    model_id: str,
    name: str,
    splits: Any,
    data_cfg: DataConfig,
    transform: Any,
    cache_dir: Path,
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    hardware: HardwareChoice | None = None,
    fingerprint: str | None = None,
) -> FeatureSet:
    """Features of `splits.train` / `splits.test` for `model`, from `cache_dir` if there.

    `hardware` is the precision and memory format to extract with (see `extract`);
    features extracted in bf16 are not those of float32, so it is part of the key.
    `fingerprint` is :func:`data_fingerprint` of the splits (computed here if None).
    """
    contents: dict[str, Any] = {
        "classes": list(getattr(splits, "classes", [])),
        "sizes": [len(splits.train), len(splits.test)],
        "files": fingerprint or data_fingerprint(splits, data_cfg),
    }
    if hardware is not None and hardware.autocast_dtype is not None:
        contents["autocast"] = str(hardware.autocast_dtype)
    path = cache_dir / f"{name}-{cache_key(model_id, data_cfg, transform, contents)}.npz"
    if path.is_file():
        log.info("features of %s from cache %s", name, path)
        with np.load(path) as z:
            return FeatureSet(z["train_x"], z["train_y"], z["test_x"], z["test_y"])
    workers = int(getattr(data_cfg, "num_workers", 0))
    run = partial(
        extract,
        model,
        transform=transform,
        batch_size=batch_size,
        device=device,
        hardware=hardware,
    )
    train_x, train_y = run(splits.train, num_workers=workers, desc=f"{name} train")
    test_x, test_y = run(splits.test, num_workers=workers, desc=f"{name} test")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
    tmp.replace(path)  # atomic: a concurrent reader sees the whole file or none
    return FeatureSet(train_x, train_y, test_x, test_y)


def random_init_encoder(cfg: RunConfig) -> nn.Module:
    """The encoder architecture of `cfg`, initialised from `eval.random_init_seed`."""
    from simclr.models import build_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.eval.random_init_seed)
        return build_encoder(cfg.encoder)


def representations(
    encoder: nn.Module, cfg: RunConfig, checkpoint_path: Path | None
) -> dict[str, tuple[nn.Module, str]]:
    """name -> (model mapping eval images to features, identity for the cache key)."""
    ev = cfg.eval
    simclr_id = (
        checkpoint_identity(checkpoint_path) if checkpoint_path else weights_identity(encoder)
    )
    reps = {"simclr": (encoder, simclr_id)}
    if "random_init" in ev.baselines:
        random = random_init_encoder(cfg)
        reps["random_init"] = (random, f"random_init:{weights_identity(random)}")
    if "raw_pixels" in ev.baselines:
        reps["raw_pixels"] = (
            RawPixels(int(ev.raw_pixels_size)),
            f"raw_pixels:{ev.raw_pixels_size}",
        )
    return reps
