"""lightning-bolts 0.7 SimCLR checkpoints, rebuilt from a recorded key layout.

tests/fixtures/bolts_simclr_keys.json holds the key names, shapes and
hyper_parameters of real bolts checkpoints (how it was made: tests/fixtures/README.md).
Here each layout is refilled with random values and saved the way Lightning 1.9
saves it; `load_encoder` must place every tensor. That bolts' own model and ours
give the same features is proven on the real checkpoints by
benchmarks/peers/check_bolts_interop.py (needs the bolts peer environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from simclr.errors import CheckpointError
from simclr.hub import export_encoder, load_encoder
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "bolts_simclr_keys.json"
RECORDS: dict[str, Any] = json.loads(FIXTURE.read_text())
EXPECTED_STEM = {
    "resnet18_imagenet_stem": "imagenet",
    "resnet18_cifar_stem": "cifar",
    "resnet18_stl10_stem": "imagenet_nomaxpool",
    "resnet50_imagenet_stem": "imagenet",
}


def bolts_checkpoint(path: Path, record: dict[str, Any], **hparams: Any) -> dict[str, Any]:
    """A checkpoint with the recorded layout and random values."""
    g = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    for key, shape in record["state_dict"].items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(2)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    ckpt = {
        "epoch": 0,
        "global_step": 2,
        "pytorch-lightning_version": "1.9.5",
        "state_dict": state,
        "hparams_name": "kwargs",
        "hyper_parameters": {**record["hyper_parameters"], **hparams},
        "loops": {},
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    torch.save(ckpt, path)
    return ckpt


def test_fixture_was_recorded_from_bolts() -> None:
    assert set(RECORDS) == set(EXPECTED_STEM)
    for record in RECORDS.values():
        assert record["made_with"]["lightning-bolts"] == "0.7.0"
        assert {"arch", "first_conv", "maxpool1", "hidden_mlp", "feat_dim"} <= set(
            record["hyper_parameters"]
        )


@pytest.mark.parametrize("variant", sorted(EXPECTED_STEM))
def test_every_key_is_mapped(variant: str, tmp_path: Path) -> None:
    record = RECORDS[variant]
    ckpt = bolts_checkpoint(tmp_path / "bolts.ckpt", record)
    encoder, head = load_encoder(tmp_path / "bolts.ckpt", with_head=True)
    hp = record["hyper_parameters"]
    assert encoder.meta["arch"] == hp["arch"] and encoder.meta["stem"] == EXPECTED_STEM[variant]
    assert encoder.meta["origin"] == "lightning-bolts"
    assert encoder.meta["bolts_hparams"]["hidden_mlp"] == hp["hidden_mlp"]
    ours = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    ours.update({f"projection.{k}": v for k, v in head.state_dict().items()})
    theirs = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("encoder.fc.")}
    assert set(ours) == set(theirs)  # nothing left over on either side
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key
    # bolts' projection: Linear - BN - ReLU - Linear, then L2 normalisation (slow reference).
    s = ckpt["state_dict"]
    h = torch.randn(3, record["feature_shape"][1])
    a = h @ s["projection.model.0.weight"].T + s["projection.model.0.bias"]
    a = (a - s["projection.model.1.running_mean"]) / torch.sqrt(
        s["projection.model.1.running_var"] + 1e-5
    )
    a = torch.relu(a * s["projection.model.1.weight"] + s["projection.model.1.bias"])
    want = F.normalize(a @ s["projection.model.3.weight"].T, dim=1)
    with torch.no_grad():
        assert torch.allclose(head(h), want, atol=1e-5)
        assert head(h).shape == (3, hp["feat_dim"])


def test_resnet18_features_and_export(tmp_path: Path) -> None:
    record = RECORDS["resnet18_cifar_stem"]
    bolts_checkpoint(tmp_path / "bolts.ckpt", record)
    encoder = load_encoder(tmp_path / "bolts.ckpt")
    assert encoder.meta["feature_dim"] == record["feature_shape"][1] == 512
    assert encoder.meta["dataset"] == "cifar10" and encoder.meta["image_size"] == 32
    exported = load_encoder(export_encoder(tmp_path / "bolts.ckpt", tmp_path / "b.safetensors"))
    assert exported.meta["origin"] == "lightning-bolts" and exported.meta["stem"] == "cifar"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(encoder(x), exported(x))


def test_unsupported_stem_combination(tmp_path: Path) -> None:
    path = tmp_path / "odd.ckpt"
    bolts_checkpoint(path, RECORDS["resnet18_cifar_stem"], maxpool1=True)
    with pytest.raises(CheckpointError, match="first_conv=False with maxpool1=True"):
        load_encoder(path)
