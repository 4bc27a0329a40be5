"""Each way a weights file can be wrong gives one line naming the file and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from simclr.errors import CheckpointError
from simclr.hub import export_encoder, load_encoder
from tests.support.hub_helpers import make_checkpoint, run_config, save_checkpoint


class Payload:
    """Unpickling this creates `target`: stands for arbitrary code in a checkpoint."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "r18.ckpt", "resnet18", "cifar")[0]


def _one_line(err: pytest.ExceptionInfo[CheckpointError], path: Path, expected: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message, message
    assert expected in message, message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.ckpt"
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, path, ".safetensors")


def test_run_dir_without_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_encoder(tmp_path)
    _one_line(err, tmp_path, "checkpoints/last.ckpt")


@pytest.mark.parametrize("kind", ["text", "png", "empty"])
def test_file_of_another_kind(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "weights.ckpt"
    if kind == "text":
        path.write_text("these are not weights\n")
    elif kind == "png":
        Image.new("RGB", (4, 4)).save(path, format="PNG")
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, path, "expected")


def test_lightning_checkpoint_of_another_model(tmp_path: Path) -> None:
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}, "hyper_parameters": {}}, path)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, path, "neither simclr-pretrain")


def test_truncated_checkpoint(ckpt: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, path, "truncated")


def test_truncated_safetensors(ckpt: Path, tmp_path: Path) -> None:
    full = export_encoder(ckpt, tmp_path / "full.safetensors")
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, path, "truncated")


def test_safetensors_without_our_metadata(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, path, "simclr-export")


def test_architecture_mismatch(ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_encoder(ckpt, arch="resnet50")
    _one_line(err, ckpt, "expected resnet50")
    with pytest.raises(CheckpointError) as err:
        load_encoder(ckpt, stem="imagenet")
    _one_line(err, ckpt, "expected the imagenet stem")
    # Weights that do not fit the architecture the config names.
    _, encoder, head = make_checkpoint(tmp_path / "a.ckpt", "resnet18", "cifar")
    lying = save_checkpoint(tmp_path / "lying.ckpt", encoder, head, run_config("resnet34", "cifar"))
    with pytest.raises(CheckpointError) as err:
        load_encoder(lying)
    _one_line(err, lying, "do not fit a resnet34")


def test_head_requested_but_not_exported(ckpt: Path, tmp_path: Path) -> None:
    out = export_encoder(ckpt, tmp_path / "nohead.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_encoder(out, with_head=True)
    _one_line(err, out, "--with-head")


def test_pickle_payload_is_refused_and_never_runs(ckpt: Path, tmp_path: Path) -> None:
    # The payload is live: an unsafe load does create its file.
    armed = tmp_path / "armed.ckpt"
    torch.save({"x": Payload(tmp_path / "proof")}, armed)
    torch.load(armed, weights_only=False)
    assert (tmp_path / "proof").exists()

    target = tmp_path / "pwned"
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["evil"] = Payload(target)
    path = tmp_path / "evil.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    _one_line(err, path, "refused")
    assert not target.exists()
    with pytest.raises(CheckpointError):
        export_encoder(path, tmp_path / "evil.safetensors")
    assert not target.exists() and not (tmp_path / "evil.safetensors").exists()
