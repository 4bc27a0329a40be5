"""embed's progress bar counts the items actually in each batch, skipped ones included."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

# simclr.hub re-exports the function `embed`, which shadows the module's name there.
embed_module = importlib.import_module("simclr.hub.embed")


class RecordingBar:
    """Stands in for tqdm: remembers its total and every update."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, *args: object, total: int, **kwargs: object) -> None:
        self.total, self.updates = total, []
        RecordingBar.made.append(self)

    def update(self, n: int) -> None:
        self.updates.append(n)

    def __enter__(self) -> RecordingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_bar_advances_by_each_batchs_length(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(embed_module, "tqdm", RecordingBar)
    rng = np.random.default_rng(0)
    images: list[Image.Image | Path] = [
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(4)
    ]
    (tmp_path / "broken.png").write_text("not an image")
    images.insert(1, tmp_path / "broken.png")  # 5 items, batches of 2: 2, 2, 1
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    with pytest.warns(UserWarning, match="broken"):
        out = embed_module.embed(encoder, images, transform=transform, batch_size=2)
    bar = RecordingBar.made[-1]
    assert out.shape == (4, 5)
    assert bar.updates == [2, 2, 1] and sum(bar.updates) == bar.total == 5
