"""augment.decode=gpu on CUDA: nvJPEG's batched decode against the CPU decode, the
crops it leads to against the CPU path's, and a short fit with GPU decode and GPU views.

Skipped without CUDA (the CPU half of the path is in tests/unit/data/test_encoded.py). The
tolerance is torchvision's own for nvJPEG against libjpeg (mean absolute difference
below 2 levels, test/test_image.py::test_decode_jpegs_cuda): the decoders round the
inverse DCT and upsample chroma differently, so single pixels may differ more.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from simclr.config.schema import AugmentConfig
from simclr.data.encoded import EncodedCollate, EncodedTwoViews, read_encoded
from simclr.data.images import load_rgb
from simclr.data.views import TwoViews, build_crop_transform
from tests.conftest import quiet_trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

SIZE = 24


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([yy / height, xx / width, 0.5 + 0.5 * np.sin(xx / 7.0)], axis=-1) * 220
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> list:
    """JPEGs of different sizes and subsamplings, one grayscale."""
    root = tmp_path_factory.mktemp("jpegs")
    paths = []
    for k, (h, w, sub) in enumerate([(37, 53, 2), (64, 48, 0), (120, 90, 1), (31, 31, 2)]):
        path = root / f"{k}.jpg"
        Image.fromarray(_photo(h, w, k)).save(path, quality=90, subsampling=sub)
        paths.append(path)
    gray = root / "gray.jpg"
    Image.fromarray(_photo(40, 44, 9)[..., 0]).save(gray, quality=90)
    return [*paths, gray]


def _batch(paths, cfg, seed0: int = 100):
    workers = EncodedTwoViews(cfg, SIZE)
    items = []
    for k, path in enumerate(paths):
        torch.manual_seed(seed0 + k)
        items.append((workers(read_encoded(path.read_bytes(), str(path))), k))
    return EncodedCollate(SIZE)(items)[0]


def test_nvjpeg_batch_decode_matches_the_cpu_decode(jpegs):
    batch = _batch(jpegs, OmegaConf.structured(AugmentConfig(backend="gpu")))  # type: ignore[arg-type]
    assert all(item.jpeg for item in batch.items)
    on_gpu = batch.decode_images("cuda")
    on_cpu = batch.decode_images("cpu")
    for path, got, want in zip(jpegs, on_gpu, on_cpu, strict=True):
        assert got.is_cuda and got.dtype == torch.uint8 and got.shape == want.shape, path
        assert got.shape[0] == 3  # grayscale comes out as RGB, as from PIL
        diff = (got.cpu().float() - want.float()).abs().mean()
        assert diff < 2, (path.name, float(diff))
        pil = torch.from_numpy(np.array(load_rgb(path))).permute(2, 0, 1)
        assert (got.cpu().float() - pil.float()).abs().mean() < 2, path.name


def test_decoded_crops_on_the_gpu_match_the_cpu_paths(jpegs):
    cfg = OmegaConf.structured(AugmentConfig(backend="gpu"))  # type: ignore[arg-type]
    batch = _batch(jpegs, cfg)
    view1, view2 = batch.decode("cuda")
    assert view1.is_cuda and view1.shape == (len(jpegs), 3, SIZE, SIZE)
    reference = TwoViews(build_crop_transform(cfg, SIZE))
    for k, path in enumerate(jpegs):
        torch.manual_seed(100 + k)  # the seeds _batch drew each item's crops with
        want1, want2 = reference(load_rgb(path))
        for got, want in ((view1[k], want1), (view2[k], want2)):
            diff = (got.cpu().float() - want.float()).abs().mean()
            assert diff < 2.5, (path.name, float(diff))


@pytest.mark.parametrize("workers", [0, 2])
def test_training_with_gpu_decode_and_gpu_views(compose_config, labeled_folder, workers):
    from simclr.data.datamodule import SimCLRDataModule
    from simclr.training.module import SimCLRModule

    cfg = compose_config(
        "experiment=none",
        "encoder=resnet18",
        "encoder.stem=cifar",
        "head.hidden_dim=64",
        "data=folder",
        f"data.root={labeled_folder}",
        "data.image_size=32",
        "data.batch_size=8",
        f"data.num_workers={workers}",
        "data.pin_memory=true",
        "augment.backend=gpu",
        "augment.decode=gpu",
    )
    module = SimCLRModule(cfg)
    datamodule = SimCLRDataModule(cfg.data, cfg.augment)
    trainer = quiet_trainer(accelerator="gpu", devices=1, precision="bf16-mixed", max_steps=3)
    trainer.fit(module, datamodule=datamodule)
    assert datamodule.decodes_on_device  # the folder's JPEGs went to nvJPEG, PNGs as pixels
    assert trainer.global_step == 3
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
