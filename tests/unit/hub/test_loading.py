"""load_encoder / export_encoder: round trips, run directories, torchvision and torch.hub."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from simclr import embed, load_encoder
from simclr.console.export import cli
from simclr.hub import export_encoder
from tests.conftest import REPO
from tests.support.hub_helpers import make_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module, nn.Module]:
    run = tmp_path_factory.mktemp("run")
    (run / ".hydra").mkdir()
    (run / "report.json").write_text(json.dumps({"headline": {"accuracy": 0.42}}))
    return make_checkpoint(run / "checkpoints" / "last.ckpt", "resnet18", "cifar")


def _x(seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_public_imports() -> None:
    import simclr

    assert simclr.load_encoder is load_encoder and simclr.embed is embed


def test_checkpoint_round_trip_gives_identical_features(ckpt, tmp_path: Path) -> None:
    path, encoder, head = ckpt
    with torch.no_grad():
        want_h = encoder(_x())
        want_z = head(want_h)
    out = export_encoder(path, tmp_path / "enc.safetensors", with_head=True)
    for source in (path, path.parent.parent, out):
        loaded, loaded_head = load_encoder(source, with_head=True)
        assert not loaded.training and not loaded_head.training
        with torch.no_grad():
            h = loaded(_x())
            assert torch.equal(h, want_h), source
            assert torch.equal(loaded_head(h), want_z), source


def test_meta_and_transform(ckpt, tmp_path: Path) -> None:
    path, _, _ = ckpt
    encoder = load_encoder(path.parent.parent)  # the run directory
    meta = encoder.meta
    assert (meta["arch"], meta["stem"], meta["feature_dim"]) == ("resnet18", "cifar", 512)
    assert meta["dataset"] == "cifar10" and meta["image_size"] == 32
    assert meta["config"]["encoder"]["arch"] == "resnet18"
    assert meta["metrics"] == {"headline": {"accuracy": 0.42}}
    assert meta["source"] == str(path)
    # The export carries the same metadata, read back from the safetensors header.
    again = load_encoder(export_encoder(path, tmp_path / "e.safetensors"))
    assert again.meta["metrics"] == meta["metrics"] and again.meta["config"] == meta["config"]
    image = Image.new("RGB", (50, 40), (200, 10, 10))
    x = encoder.transform(image)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert encoder(x.unsqueeze(0)).shape == (1, 512)


def test_export_is_weights_only_with_json_header(ckpt, tmp_path: Path) -> None:
    path, encoder, _ = ckpt
    out = export_encoder(path, tmp_path / "enc.safetensors")
    tensors = load_file(str(out))
    assert set(tensors) == set(encoder.state_dict())  # no head, no fc
    with safe_open(str(out), framework="pt") as f:
        header = f.metadata()
    assert header["arch"] == "resnet18" and header["stem"] == "cifar"
    assert json.loads(header["config"])["data"]["image_size"] == 32
    with pytest.raises(Exception, match="already exists"):
        export_encoder(path, out)
    export_encoder(path, out, overwrite=True)


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_export_loads_into_plain_torchvision(tmp_path: Path, stem: str) -> None:
    path, encoder, _ = make_checkpoint(tmp_path / "r18.ckpt", "resnet18", stem, seed=3)
    tensors = load_file(str(export_encoder(path, tmp_path / "r18.safetensors")))
    model = torchvision.models.resnet18()
    model.fc = nn.Identity()  # set aside: the export has no classifier
    if stem == "cifar":
        # Documented: the CIFAR stem needs the 3x3/1 first conv and no max-pool.
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.load_state_dict(tensors, strict=True)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(_x(1)), encoder(_x(1)))


def test_export_cli(ckpt, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _, _ = ckpt
    assert cli([str(path), str(tmp_path / "c.safetensors")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "c.safetensors")
    assert cli([str(tmp_path / "nope.ckpt"), str(tmp_path / "d.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.ckpt" in err and "\n" not in err
    assert not (tmp_path / "d.safetensors").exists()


def test_torch_hub_entry_points(ckpt, tmp_path: Path) -> None:
    path, encoder, _ = ckpt
    out = export_encoder(path, tmp_path / "h.safetensors")
    loaded = torch.hub.load(str(REPO), "simclr_resnet18", source="local", weights=str(out))
    with torch.no_grad():
        assert torch.equal(loaded(_x()), encoder(_x()))
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    for depth in (18, 34, 50, 101, 152):
        assert callable(getattr(hubconf, f"simclr_resnet{depth}"))
    bare = torch.hub.load(str(REPO), "simclr_resnet34", source="local")
    assert bare.feature_dim == 512
