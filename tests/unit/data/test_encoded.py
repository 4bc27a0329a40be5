"""augment.decode=gpu, the parts a CPU can check: workers yield bytes and crop draws,
the collate keeps the bytes ragged, and the decode-and-crop of a batch (run here on
the CPU, with torchvision's libjpeg decoder) gives the crops of the CPU path.

The references are the CPU path's own functions: `load_rgb` (PIL) for the pixels and
`TwoViews(build_crop_transform(...))` for the crops, under the same seeds. The CUDA
side (nvJPEG) is in tests/integration/test_gpu_decode.py.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from simclr.config import validate_config
from simclr.config.schema import AugmentConfig, RunConfig
from simclr.data.encoded import (
    EncodedBatch,
    EncodedCollate,
    EncodedImage,
    EncodedTwoViews,
    EncodedViews,
    gpu_decode,
    read_encoded,
)
from simclr.data.folder import ImageFileDataset
from simclr.data.images import load_rgb
from simclr.data.views import TwoViews, build_crop_transform
from simclr.errors import ConfigError, DataError

SIZE = 16


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus mild noise: JPEG-like content (pure noise is not)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([yy / height, xx / width, 0.5 + 0.5 * np.sin(xx / 5.0)], axis=-1) * 220
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def save(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoded")
    rotated = Image.fromarray(photo(30, 40, 3))
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    rotated_path = root / "rotated.jpg"
    rotated.save(rotated_path, quality=90, exif=exif)
    cmyk_path = root / "cmyk.jpg"
    Image.fromarray(photo(20, 20, 5)).convert("CMYK").save(cmyk_path, quality=90)
    return {
        "jpeg": save(root / "a.jpg", photo(37, 53), quality=90),
        "jpeg2": save(root / "b.jpg", photo(64, 48, 1), quality=85),
        "gray": save(root / "gray.jpg", photo(40, 40, 2)[..., 0], quality=90),
        "png": save(root / "c.png", photo(33, 29, 4)),
        "rotated": rotated_path,
        "cmyk": cmyk_path,
    }


def augment_cfg(**overrides: object):
    return OmegaConf.structured(AugmentConfig(backend="gpu", **overrides))  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
def test_libjpeg_decode_of_the_bytes_equals_pils(files):
    # The CPU reference of nvJPEG: torchvision's decoder on the same bytes as PIL's.
    for key in ("jpeg", "jpeg2", "gray"):
        data = torch.frombuffer(bytearray(files[key].read_bytes()), dtype=torch.uint8)
        ours = decode_jpeg(data, mode=ImageReadMode.RGB)
        pil = torch.from_numpy(np.array(load_rgb(files[key]))).permute(2, 0, 1)
        assert ours.shape == pil.shape and ours.dtype == torch.uint8
        assert (ours.int() - pil.int()).abs().max() <= 1, key


def test_the_dataset_yields_bytes_when_asked_and_pixels_where_nvjpeg_cannot(files):
    order = ["jpeg", "gray", "png", "rotated", "cmyk"]
    plain = ImageFileDataset([files[k] for k in order], list(range(len(order))))
    encoded = plain.encoded_items()
    items = {k: encoded[i][0] for i, k in enumerate(order)}
    for key in ("jpeg", "gray"):
        item = items[key]
        assert isinstance(item, EncodedImage) and item.jpeg
        assert item.data == files[key].read_bytes()
        assert (item.width, item.height) == Image.open(files[key]).size
    # PNG, an EXIF-rotated JPEG (the CPU path turns it upright) and CMYK: decoded here.
    for key in ("png", "rotated", "cmyk"):
        assert isinstance(items[key], Image.Image) and items[key].mode == "RGB", key
        assert np.array_equal(np.asarray(items[key]), np.asarray(load_rgb(files[key])))
    assert items["rotated"].size == (30, 40)  # upright: the 40 x 30 photo turned
    # The original dataset still decodes (evaluation and the probe read it).
    assert isinstance(plain[0][0], Image.Image) and encoded[0][1] == plain[0][1] == 0


def test_shards_keep_the_exif_bytes_as_decode_rgb_ignores_rotation(files):
    data = files["rotated"].read_bytes()
    assert isinstance(read_encoded(data, "item", upright=False), EncodedImage)
    assert isinstance(read_encoded(data, "item", upright=True), Image.Image)


def test_unreadable_and_oversized_bytes_name_the_item():
    with pytest.raises(DataError, match="shard item 7: not a readable image"):
        read_encoded(b"not an image", "shard item 7")
    big = io.BytesIO()
    Image.fromarray(photo(50, 50)).save(big, format="JPEG")
    with pytest.raises(
        DataError, match=re.escape("big.jpg: 50x50 = 2,500 pixels, above data.max_image_pixels=100")
    ):
        read_encoded(big.getvalue(), "big.jpg", max_pixels=100)


def test_encoded_views_draw_the_crops_of_the_cpu_path_and_decode_to_them(files):
    cfg = augment_cfg()
    workers = EncodedTwoViews(cfg, SIZE)
    reference = TwoViews(build_crop_transform(cfg, SIZE))
    keys = ["jpeg", "png", "jpeg2", "gray", "rotated"]
    dataset = ImageFileDataset([files[k] for k in keys], list(range(len(keys)))).encoded_items()
    items, expected = [], []
    for index, key in enumerate(keys):
        torch.manual_seed(100 + index)
        items.append((workers(dataset[index][0]), index))
        torch.manual_seed(100 + index)  # the same draws, on the image PIL decoded
        expected.append(reference(load_rgb(files[key])))
    batch, labels = EncodedCollate(SIZE)(items)
    assert isinstance(batch, EncodedBatch) and labels.tolist() == list(range(len(keys)))
    view1, view2 = batch.decode("cpu")
    assert view1.shape == view2.shape == (len(keys), 3, SIZE, SIZE)
    assert view1.dtype == torch.uint8
    for k, key in enumerate(keys):
        for got, want in ((view1[k], expected[k][0]), (view2[k], expected[k][1])):
            diff = (got.int() - want.int()).abs()
            if key in ("png", "rotated"):  # pixels from the worker: the same kernel, exact
                assert torch.equal(got, want), key
            else:  # libjpeg vs PIL, each ±1 (above), then the same resize
                assert diff.max() <= 2, (key, int(diff.max()))
    assert not torch.equal(view1, view2)  # two independent views


def test_collate_keeps_the_bytes_ragged_and_on_the_cpu(files):
    workers = EncodedTwoViews(augment_cfg(), SIZE)
    items = [
        (workers(read_encoded(files[k].read_bytes(), k)), i)
        for i, k in enumerate(("jpeg", "jpeg2"))
    ]
    batch, labels = EncodedCollate(SIZE)(items)
    sizes = [item.payload.numel() for item in batch.items]
    assert sizes == [files["jpeg"].stat().st_size, files["jpeg2"].stat().st_size]
    assert all(item.payload.dtype == torch.uint8 and item.payload.ndim == 1 for item in batch.items)
    assert len(batch) == 2 and labels.tolist() == [0, 1]
    # Lightning moves tensors inside collections; an EncodedBatch is not one.
    from lightning_fabric.utilities.apply_func import move_data_to_device

    moved = move_data_to_device((batch, labels), torch.device("cpu"))
    assert moved[0] is batch


def test_flips_follow_the_draw_and_no_flip_when_p_is_zero(files):
    image = read_encoded(files["jpeg"].read_bytes(), "a.jpg")
    never = EncodedTwoViews(augment_cfg(hflip_p=0.0), SIZE)
    always = EncodedTwoViews(augment_cfg(hflip_p=1.0), SIZE)
    assert not any(v[4] for v in never(image).views)
    assert all(v[4] for v in always(image).views)
    torch.manual_seed(0)
    a = always(image)
    torch.manual_seed(0)
    b = always(image)
    assert a.views == b.views  # a pure function of the generator's state


@pytest.mark.parametrize(
    "decode,backend,data,device,expected",
    [
        ("auto", "auto", "folder", "cuda", True),  # the defaults on CUDA
        ("auto", "auto", "folder", "cpu", False),  # the defaults elsewhere
        ("auto", "gpu", "folder", "cuda", True),
        ("auto", "gpu", "stream", "cuda", True),
        ("auto", "gpu", "folder", "cpu", False),
        ("auto", "cpu", "folder", "cuda", False),
        ("auto", "gpu", "cifar10", "cuda", False),
        ("cpu", "gpu", "folder", "cuda", False),
        ("gpu", "gpu", "stream", "cuda", True),
    ],
)
def test_auto_decodes_on_the_gpu_only_where_it_can(decode, backend, data, device, expected):
    cfg = OmegaConf.structured(AugmentConfig(backend=backend, decode=decode))  # type: ignore[arg-type]
    assert gpu_decode(cfg, data, device) is expected


def test_gpu_decode_without_cuda_is_refused():
    cfg = OmegaConf.structured(AugmentConfig(backend="gpu", decode="gpu"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=re.escape("augment.decode=gpu needs a CUDA device")):
        gpu_decode(cfg, "folder", "cpu")


@pytest.mark.parametrize(
    "overrides,named",
    [
        (
            {"augment.decode": "gpu", "augment.backend": "cpu"},
            "augment.decode=gpu needs augment.backend=gpu",
        ),
        (
            {"augment.decode": "gpu", "augment.backend": "gpu", "data.name": "digits"},
            "data.name=digits has none",
        ),
    ],
)
def test_impossible_gpu_decode_is_one_config_line(overrides, named):
    cfg = OmegaConf.structured(RunConfig)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_check_devices_refuses_gpu_decode_without_cuda(compose_config, monkeypatch):
    from simclr.training.trainer import check_devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose_config("augment.backend=gpu", "augment.decode=gpu")
    with pytest.raises(ConfigError, match=re.escape("augment.decode=gpu: no CUDA device")):
        check_devices(cfg)
    check_devices(compose_config("augment.backend=gpu"))  # auto: falls back, no error


def _fit(cfg, datamodule, steps: int = 2):

    from simclr.training.module import SimCLRModule
    from tests.conftest import quiet_trainer

    module = SimCLRModule(cfg)
    trainer = quiet_trainer(accelerator="cpu", devices=1, max_steps=steps)
    trainer.fit(module, datamodule=datamodule)
    return trainer


TINY = (
    "experiment=none",
    "encoder=timm",
    "encoder.timm_name=test_resnet",
    "head.hidden_dim=16",
    f"data.image_size={SIZE}",
    "data.batch_size=4",
    "augment.backend=gpu",
    "trainer.precision=32-true",
    "eval=none",
)


@pytest.mark.parametrize("workers", [0, 2])
def test_training_on_decoded_batches_runs_the_whole_path(
    compose_config, shared_labeled_folder, monkeypatch, workers
):
    # The device decode path on the CPU "device": worker items and pickling (workers=2),
    # the collate, Lightning leaving the bytes alone, decoding and cropping in the module.
    from simclr.data import datamodule as dm

    monkeypatch.setattr(dm, "gpu_decode", lambda *args: True)
    cfg = compose_config(
        *TINY, "data=folder", f"data.root={shared_labeled_folder}", f"data.num_workers={workers}"
    )
    datamodule = dm.SimCLRDataModule(cfg.data, cfg.augment)
    batch = next(iter(datamodule.train_dataloader()))
    assert isinstance(batch[0], EncodedBatch) and len(batch[0]) == 4
    assert {item.jpeg for item in batch[0].items} == {True, False}  # the folder: JPEG + PNG
    trainer = _fit(cfg, datamodule)
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss"])


def test_a_jpeg_the_decoder_refuses_is_named(files):
    workers = EncodedTwoViews(augment_cfg(), SIZE)
    good = workers(read_encoded(files["jpeg"].read_bytes(), "a.jpg"))
    data = bytearray(files["jpeg2"].read_bytes())
    data[2:200] = bytes(198)  # the header's tables gone: no decoder can read it
    bad = EncodedViews(torch.frombuffer(data, dtype=torch.uint8), True, "b.jpg", good.views)
    batch, _ = EncodedCollate(SIZE)([(good, 0), (bad, 1)])
    with pytest.raises(DataError, match=re.escape("b.jpg: not a decodable JPEG")):
        batch.decode("cpu")
