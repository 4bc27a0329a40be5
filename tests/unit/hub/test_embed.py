"""embed: folders with non-image files, grayscale images, lists of PIL images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simclr import embed, load_encoder
from simclr.errors import DataError
from tests.support.hub_helpers import make_checkpoint


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    path, _, _ = make_checkpoint(tmp_path_factory.mktemp("emb") / "r18.ckpt", "resnet18", "cifar")
    return load_encoder(path)


def _images(root: Path) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)) for _ in range(3)]
    images.append(Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8), mode="L"))
    root.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        image.save(root / f"{i}.png")
    return images


def test_folder_skips_non_images_with_a_warning(encoder: torch.nn.Module, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    images = _images(folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden").write_text("ignored silently")
    with pytest.warns(UserWarning, match=r"notes\.txt"):
        X, paths = embed(encoder, folder, batch_size=2, progress=False, return_paths=True)
    assert X.shape == (4, 512) and X.dtype == np.float32
    assert [Path(p).name for p in paths] == ["0.png", "1.png", "2.png", "3.png"]
    # Independent reference: the encoder on the transformed images, one at a time.
    with torch.no_grad():
        want = [
            encoder(encoder.transform(im.convert("RGB")).unsqueeze(0))[0].numpy() for im in images
        ]
    np.testing.assert_allclose(X, np.stack(want), rtol=1e-5, atol=1e-5)


def test_grayscale_image_is_embedded_as_rgb(encoder: torch.nn.Module) -> None:
    gray = Image.fromarray(np.arange(30 * 30, dtype=np.uint8).reshape(30, 30) % 251, mode="L")
    X = embed(encoder, [gray], progress=False)
    Y = embed(encoder, [gray.convert("RGB")], progress=False)
    assert X.shape == (1, 512)
    np.testing.assert_array_equal(X, Y)


def test_nothing_readable(encoder: torch.nn.Module, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no image files"):
        embed(encoder, tmp_path, progress=False)
    with pytest.raises(DataError, match="no such file"):
        embed(encoder, tmp_path / "missing", progress=False)
