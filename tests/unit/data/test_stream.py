"""`data=stream`: LitData shards from simclr-prepare, read like the folder they came from.

Each image is identified by a digest of its decoded pixels; the shards must give,
every epoch, exactly the multiset of images that `data=folder` reads from the same
folder; two gloo ranks must see disjoint halves of it. Writing the shards starts
litdata's worker processes (half a minute here), so the tests that read them are
marked slow; the bad-input tests are not.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf
from PIL import Image

from simclr.console import pretrain
from simclr.data import build_datasets
from simclr.data.prepare import prepare_shards
from simclr.data.stream import ResumableStreamLoader, stream_train_loader
from simclr.errors import DataError
from tests.conftest import write_labeled_folder
from tests.support.cli_harness import (
    assert_one_line_error,
    assert_unchanged,
    run_cli,
    snapshot,
    tiny_run,
)
from tests.support.gloo_harness import run_on_gloo_ranks

BATCH = 4
SEED = 7


def digest(image: Image.Image) -> torch.Tensor:
    """Eight bytes of the image's pixel digest, as a tensor (a 'view' that names the image)."""
    return torch.tensor(list(hashlib.sha256(image.tobytes()).digest()[:8]), dtype=torch.uint8)


def _key(t: torch.Tensor) -> bytes:
    return bytes(t.tolist())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labeled folder shared by this module's tests."""
    return write_labeled_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def shards(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("shards") / "dest"
    method = mp.get_start_method(allow_none=True)
    # Two workers: two chunk files per split, so that ranks and workers share them out.
    result = prepare_shards(folder, str(dest), workers=2, progress=False)
    # litdata.optimize forces "spawn" process-wide; prepare_shards puts it back.
    assert mp.get_start_method(allow_none=True) == method
    assert result.counts == {"train": 36, "test": 12}
    assert result.classes == ["cat", "dog", "fox"]
    return dest


def _cfg(name: str, root: Path, **extra: object) -> object:
    return OmegaConf.create(
        {
            "name": name,
            "root": str(root),
            "batch_size": BATCH,
            "num_workers": 0,
            "drop_last": True,
            "pin_memory": False,
            "on_bad_image": "fail",
            "download": False,
            **extra,
        }
    )


def _folder_multiset(folder: Path) -> Counter[bytes]:
    pretraining = build_datasets(_cfg("folder", folder)).pretraining_set()
    return Counter(_key(digest(image)) for image, _ in pretraining)  # type: ignore[attr-defined]


def _epoch(loader: ResumableStreamLoader) -> list[tuple[bytes, int]]:
    return [(_key(d), int(y)) for ds, ys in loader for d, y in zip(ds, ys, strict=True)]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_every_image_once_per_epoch_as_from_the_folder(folder, shards, workers):
    expected = _folder_multiset(folder)
    loader = stream_train_loader(_cfg("stream", shards, num_workers=workers), digest, SEED)
    epochs = [_epoch(loader) for _ in range(2)]
    for seen in epochs:
        assert Counter(k for k, _ in seen) == expected
    assert [k for k, _ in epochs[0]] != [k for k, _ in epochs[1]]  # reshuffled
    # Labels travel with the images: the folder's label of every image.
    labels = {_key(digest(img)): y for img, y in build_datasets(_cfg("folder", folder)).train}  # type: ignore[union-attr]
    assert all(labels[k] == y for k, y in epochs[0])


@pytest.mark.slow
def test_shards_yield_bytes_for_device_decoding(folder, shards):
    # augment.decode=gpu: the same epoch (every image once, labels as from the folder),
    # as encoded items; the batch decodes (here with libjpeg on the CPU) to crops.
    from simclr.config.schema import AugmentConfig
    from simclr.data.encoded import EncodedBatch, EncodedCollate, EncodedTwoViews

    augment = OmegaConf.structured(AugmentConfig(backend="gpu"))  # type: ignore[arg-type]
    views = EncodedTwoViews(augment, 16)
    loader = stream_train_loader(_cfg("stream", shards), views, SEED, EncodedCollate(16))
    batches = list(loader)
    assert all(isinstance(b, EncodedBatch) for b, _ in batches)
    labels = Counter(int(y) for _, ys in batches for y in ys)
    folder_labels = Counter(int(y) for _, y in build_datasets(_cfg("folder", folder)).train)  # type: ignore[union-attr]
    assert labels == folder_labels and sum(labels.values()) == 36
    assert {item.jpeg for b, _ in batches for item in b.items} == {True, False}
    view1, view2 = batches[0][0].decode("cpu")
    assert view1.shape == view2.shape == (BATCH, 3, 16, 16) and view1.dtype == torch.uint8


@pytest.mark.slow
def test_labeled_splits_are_read_from_the_shards(folder, shards):
    from_folder = build_datasets(_cfg("folder", folder))
    from_shards = build_datasets(_cfg("stream", shards))
    assert from_shards.classes == from_folder.classes
    for split in ("train", "test"):
        a, b = getattr(from_folder, split), getattr(from_shards, split)
        assert len(a) == len(b)
        # Same images with the same labels, in the folder's order.
        assert [(_key(digest(x)), y) for x, y in a] == [(_key(digest(x)), y) for x, y in b]
        assert b[0][0].mode == "RGB"


def _epoch_on_rank(shards: str, rank: int) -> dict:
    loader = stream_train_loader(_cfg("stream", Path(shards), batch_size=3), digest, SEED)
    seen = [k for k, _ in _epoch(loader)]
    everyone: list[list[bytes] | None] = [None, None]
    dist.all_gather_object(everyone, seen)
    return {"seen": everyone}


@pytest.mark.distributed
@pytest.mark.slow
def test_two_ranks_see_disjoint_halves(folder, shards, tmp_path):
    rank0, rank1 = run_on_gloo_ranks(partial(_epoch_on_rank, str(shards)), 2, tmp_path)["seen"]
    assert len(rank0) == len(rank1) == 18
    assert not set(rank0) & set(rank1)
    assert Counter(rank0) + Counter(rank1) == _folder_multiset(folder)


@pytest.mark.slow
def test_pretrain_trains_from_the_shards_with_the_probe_on_their_test_split(
    shards, tmp_path, capfd
):
    run = tmp_path / "run"
    argv = [*tiny_run(1, 2), "data=stream", f"data.root={shards}", f"hydra.run.dir={run}"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2
    loader_state = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader_state["current_epoch"] == 1  # LitData's state is in the checkpoint
    assert "online_probe/val_acc" in (run / "logs" / "metrics.csv").read_text()


# --- simclr-prepare on bad input -------------------------------------------------------


def _prepare(argv: list[str], capfd: pytest.CaptureFixture[str]):
    from simclr.console.prepare import cli

    return run_cli(cli, "simclr-prepare", argv, capfd)


def test_prepare_refuses_a_missing_folder(tmp_path, capfd):
    result = _prepare([str(tmp_path / "nope"), str(tmp_path / "dest")], capfd)
    assert_one_line_error(result, "simclr-prepare", f"SRC={tmp_path / 'nope'}", "no such directory")
    assert not (tmp_path / "dest").exists()


def test_prepare_refuses_a_folder_without_images(tmp_path, capfd):
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("no images here")
    result = _prepare([str(src), str(tmp_path / "dest"), "--quiet"], capfd)
    assert_one_line_error(result, "simclr-prepare", f"SRC={src}", "no images found")
    assert not (tmp_path / "dest").exists()


def test_prepare_refuses_an_existing_dest_and_leaves_it_alone(labeled_folder, tmp_path, capfd):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "index.json").write_text("{}")  # earlier shards, or anything else
    before = snapshot(dest)
    result = _prepare([str(labeled_folder), str(dest), "--quiet"], capfd)
    assert_one_line_error(result, "simclr-prepare", f"DEST={dest}", "--force")
    assert_unchanged(before)


def test_prepare_leaves_the_start_method_and_environment_as_it_found_them(monkeypatch):
    # What litdata.optimize does to its caller's process (see prepare._process_state_kept).
    import multiprocessing
    import os

    from simclr.data.prepare import _OPTIMIZER_WORKERS, _process_state_kept

    monkeypatch.delenv(_OPTIMIZER_WORKERS, raising=False)
    before = multiprocessing.get_start_method(allow_none=True)
    with _process_state_kept():
        multiprocessing.set_start_method("spawn" if before != "spawn" else "fork", force=True)
        os.environ[_OPTIMIZER_WORKERS] = "2"
    assert multiprocessing.get_start_method(allow_none=True) == before
    assert _OPTIMIZER_WORKERS not in os.environ


def test_stream_without_shards_is_one_line(tmp_path):
    with pytest.raises(DataError, match="not shards written by simclr-prepare"):
        build_datasets(_cfg("stream", tmp_path))
