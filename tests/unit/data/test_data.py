"""Data sources: digits split, image folders (real JPEG/PNG files), clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from simclr.config.schema import AugmentConfig, DataConfig
from simclr.data import build_datasets
from simclr.data.datamodule import SimCLRDataModule
from simclr.data.images import load_rgb
from simclr.errors import ConfigError, DataError
from tests.conftest import write_image


def data_cfg(**overrides):
    return OmegaConf.merge(OmegaConf.structured(DataConfig), overrides)


def test_digits_split_is_stratified_disjoint_and_fixed():
    splits = build_datasets(data_cfg())
    assert len(splits.train) + len(splits.test) == 1797
    assert len(splits.test) == 540
    train_labels = np.bincount(splits.train.labels)
    test_labels = np.bincount(splits.test.labels)
    assert np.all(
        np.abs(train_labels / train_labels.sum() - test_labels / test_labels.sum()) < 0.02
    )
    again = build_datasets(data_cfg())
    assert np.array_equal(splits.test.images, again.test.images)
    train_rows = {img.tobytes() for img in splits.train.images}
    overlap = sum(img.tobytes() in train_rows for img in splits.test.images)
    assert overlap < 5  # a few digits scan identically; indices are disjoint
    image, label = splits.train[0]
    assert image.mode == "RGB" and image.size == (8, 8) and 0 <= label <= 9


def test_labeled_folder_reads_train_and_test(labeled_folder):
    splits = build_datasets(data_cfg(name="folder", root=str(labeled_folder)))
    assert splits.classes == ["cat", "dog", "fox"]
    assert len(splits.train) == 36 and len(splits.test) == 12
    image, label = splits.test[5]
    assert image.mode == "RGB" and label == 1


def test_flat_folder_is_unlabeled_and_ignores_other_files(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        write_image(tmp_path / f"{i}.jpg", rng)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="notes.txt"):
        splits = build_datasets(data_cfg(name="folder", root=str(tmp_path)))
    assert splits.train is None and len(splits.unlabeled) == 5
    assert splits.unlabeled[0][1] == -1


@pytest.mark.parametrize(
    "mode,suffix", [("L", ".png"), ("RGBA", ".png"), ("P", ".png"), ("I;16", ".png"), ("L", ".jpg")]
)
def test_image_modes_are_converted_to_rgb(tmp_path, mode, suffix):
    path = tmp_path / f"img{suffix}"
    write_image(path, np.random.default_rng(0), mode=mode)
    image = load_rgb(path)
    assert image.mode == "RGB"
    if mode == "I;16":
        assert np.asarray(image).std() > 20  # rescaled, not clipped to white


def test_corrupt_jpeg_is_named(tmp_path):
    path = tmp_path / "broken.jpg"
    write_image(path, np.random.default_rng(0), size=64)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"broken\.jpg"):
        load_rgb(path)


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"name": "folder", "root": "/nonexistent/dir"}, "no such directory"),
        ({"name": "cifar10", "root": "/nonexistent/dir"}, "cifar-10-batches-py"),
        ({"name": "stl10", "root": "/nonexistent/dir"}, "stl10_binary"),
    ],
)
def test_missing_data_fails_with_where_to_put_files(cfg, message):
    with pytest.raises(DataError, match=message):
        build_datasets(data_cfg(**cfg))


def test_empty_folder_and_folder_without_images(tmp_path):
    with pytest.raises(DataError, match="empty"):
        build_datasets(data_cfg(name="folder", root=str(tmp_path)))
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images"), pytest.warns(UserWarning):
        build_datasets(data_cfg(name="folder", root=str(tmp_path)))


def test_download_request_is_refused():
    with pytest.raises(ConfigError, match="never downloads"):
        build_datasets(data_cfg(name="cifar10", root="/x", download=True))  # ok: refused


def test_datamodule_gives_two_views_and_refuses_a_too_small_set(labeled_folder):
    cfg = data_cfg(
        name="folder", root=str(labeled_folder), image_size=16, batch_size=8, num_workers=0
    )
    dm = SimCLRDataModule(cfg, OmegaConf.structured(AugmentConfig))
    (v1, v2), labels = next(iter(dm.train_dataloader()))
    assert v1.shape == v2.shape == (8, 3, 16, 16) and labels.shape == (8,)
    images, _ = next(iter(dm.val_dataloader()))
    assert images.shape == (8, 3, 16, 16)
    with pytest.raises(DataError, match="fewer than one batch"):
        SimCLRDataModule(
            data_cfg(name="folder", root=str(labeled_folder), batch_size=64),
            OmegaConf.structured(AugmentConfig),
        )


def test_skip_bad_images_keeps_going(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        write_image(tmp_path / f"{i}.jpg", rng)
    (tmp_path / "2.jpg").write_bytes(b"garbage")
    # Screened when the folder is read: left out (skip) or named at once (fail).
    with pytest.warns(UserWarning, match=r"2\.jpg"):
        splits = build_datasets(data_cfg(name="folder", root=str(tmp_path), on_bad_image="skip"))
    assert len(splits.unlabeled) == 3 and "2.jpg" in splits.skipped[0]
    with pytest.raises(DataError, match=r"2\.jpg"):
        build_datasets(data_cfg(name="folder", root=str(tmp_path)))
    # Damage found only when decoding (here: the file broke after it was read).
    write_image(tmp_path / "2.jpg", rng)
    splits = build_datasets(data_cfg(name="folder", root=str(tmp_path), on_bad_image="skip"))
    strict = build_datasets(data_cfg(name="folder", root=str(tmp_path)))
    (tmp_path / "2.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"2\.jpg"):
        items = [splits.unlabeled[i] for i in range(4)]
    assert all(isinstance(img, Image.Image) for img, _ in items)
    assert np.array_equal(np.asarray(items[2][0]), np.asarray(items[3][0]))  # the next image
    with pytest.raises(DataError, match=r"2\.jpg"):
        strict.unlabeled[2]
