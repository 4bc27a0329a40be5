"""embed_labeled: from an encoder to a classifier on a labeled folder (features, labels,
class names), with the folder reader's layout rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from simclr import LabeledFeatures, embed, embed_labeled, load_encoder
from simclr.errors import DataError
from tests.conftest import write_image
from tests.support.hub_helpers import make_checkpoint


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    path, _, _ = make_checkpoint(tmp_path_factory.mktemp("enc") / "r18.ckpt", "resnet18", "cifar")
    return load_encoder(path)


def test_train_split_rows_labels_and_classes(encoder, labeled_folder: Path) -> None:
    out = embed_labeled(encoder, labeled_folder, split="train", batch_size=7, progress=False)
    assert isinstance(out, LabeledFeatures)
    assert out.classes == ["cat", "dog", "fox"]
    assert out.features.shape == (36, 512) and out.features.dtype == np.float32
    assert out.labels.dtype == np.int64 and len(out.paths) == 36
    # Each label is the index of the file's own class folder among the sorted names.
    assert [out.classes[y] for y in out.labels] == [p.parent.name for p in out.paths]
    assert np.bincount(out.labels).tolist() == [12, 12, 12]
    # Row i is the feature of paths[i], as embed computes it one image at a time.
    one_by_one = np.concatenate([embed(encoder, [p], progress=False) for p in out.paths[::9]])
    np.testing.assert_allclose(out.features[::9], one_by_one, rtol=1e-5, atol=1e-5)


def test_test_split_uses_the_train_splits_labels(encoder, labeled_folder: Path) -> None:
    test = embed_labeled(encoder, labeled_folder, split="test", progress=False)
    assert test.classes == ["cat", "dog", "fox"] and np.bincount(test.labels).tolist() == [4, 4, 4]
    (labeled_folder / "test" / "dog").rename(labeled_folder / "test" / "wolf")
    with pytest.raises(DataError, match="differ from the train split"):
        embed_labeled(encoder, labeled_folder, split="test", progress=False)


def test_class_folders_directly_under_the_folder(encoder, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for name, count in (("b_second", 2), ("a_first", 3)):
        for i in range(count):
            write_image(tmp_path / "imgs" / name / f"{i}.png", rng)
    out = embed_labeled(encoder, tmp_path / "imgs", progress=False)
    assert out.classes == ["a_first", "b_second"] and out.labels.tolist() == [0, 0, 0, 1, 1]


def test_the_split_must_be_named_when_the_folder_has_splits(encoder, labeled_folder) -> None:
    with pytest.raises(DataError, match=r"split='train' or split='test'"):
        embed_labeled(encoder, labeled_folder, progress=False)
    with pytest.raises(DataError, match=r"no val/ folder"):
        embed_labeled(encoder, labeled_folder, split="val", progress=False)
    with pytest.raises(DataError, match="no such folder"):
        embed_labeled(encoder, labeled_folder / "absent", progress=False)


def test_a_damaged_file_is_left_out_with_its_label(encoder, labeled_folder: Path) -> None:
    bad = labeled_folder / "train" / "dog" / "0.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.warns(UserWarning, match="leaving out 1 unreadable"):
        out = embed_labeled(encoder, labeled_folder, split="train", progress=False)
    assert bad not in out.paths and np.bincount(out.labels).tolist() == [12, 11, 12]
    with pytest.raises(DataError, match=r"0\.png"):
        embed_labeled(encoder, labeled_folder, split="train", on_bad_image="fail", progress=False)


def test_encoder_to_classifier_in_five_lines(encoder, labeled_folder: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    with torch.inference_mode():
        train = embed_labeled(encoder, labeled_folder, split="train", progress=False)
        test = embed_labeled(encoder, labeled_folder, split="test", progress=False)
    classifier = LogisticRegression(max_iter=1000).fit(train.features, train.labels)
    assert 0.0 <= classifier.score(test.features, test.labels) <= 1.0
    assert classifier.predict(test.features).shape == (12,)
