"""Shared fixtures: composed configs and small generated image folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from simclr.config import register_configs
from simclr.console.app import CONF_DIR

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def compose_config() -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with overrides, as `simclr-pretrain` would."""
    register_configs()

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("config", overrides=list(overrides))

    return _compose


def write_image(path: Path, rng: np.random.Generator, size: int = 24, mode: str = "RGB") -> None:
    """A random image of `mode` saved in the format its suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        arr = rng.integers(0, 65535, (size, size), dtype=np.uint16)
        Image.fromarray(arr).save(path)
        return
    channels = {"RGB": 3, "RGBA": 4, "L": 1}.get(mode, 3)
    arr = rng.integers(0, 255, (size, size, channels), dtype=np.uint8)
    img = Image.fromarray(arr.squeeze(-1) if channels == 1 else arr)
    if mode == "P":
        img = img.convert("P")
    img.save(path)


def write_labeled_folder(root: Path) -> Path:
    """ROOT/train/<class>/*.jpg|png and ROOT/test/<class>/*, 3 classes, 12 + 4 images each."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("test", 4)):
        for c in ("cat", "dog", "fox"):
            for i in range(count):
                suffix = ".jpg" if i % 2 else ".png"
                write_image(root / split / c / f"{i}{suffix}", rng)
    return root


@pytest.fixture
def labeled_folder(tmp_path: Path) -> Path:
    """A labeled folder (see `write_labeled_folder`) for one test."""
    return write_labeled_folder(tmp_path / "images")


@pytest.fixture(scope="module")
def shared_labeled_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same folder, shared by the tests of a module (read-only for them)."""
    return write_labeled_folder(tmp_path_factory.mktemp("images"))


def quiet_trainer(**kwargs: Any) -> Any:
    """A Lightning Trainer for a few test steps: no logger, checkpoints, bars, summary or
    validation loop; `kwargs` (accelerator, precision, max_steps, ...) complete it."""
    import pytorch_lightning as pl

    return pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        **kwargs,
    )
