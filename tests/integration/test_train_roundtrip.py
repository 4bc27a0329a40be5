"""Train (simclr-pretrain, two steps) -> export -> load: the features stay identical (~20 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from omegaconf import OmegaConf
from safetensors.torch import load_file
from torch import nn

from simclr import embed, load_encoder
from simclr.console.export import cli
from simclr.models.encoder import build_encoder
from tests.conftest import REPO

SCRIPT = Path(sys.executable).with_name("simclr-pretrain")


def test_train_export_load(labeled_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    overrides = [
        "experiment=none",
        "data=folder",
        f"data.root={labeled_folder}",
        "data.image_size=16",
        "data.batch_size=8",
        "data.num_workers=0",
        "encoder=resnet18",
        "head.hidden_dim=64",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.enable_progress_bar=false",
        "eval=none",
        f"hydra.run.dir={run}",
    ]
    result = subprocess.run(
        [str(SCRIPT), *overrides], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]

    # Reference built without the hub: the checkpoint's encoder.* tensors in build_encoder.
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    reference = build_encoder(OmegaConf.create(ckpt["hyper_parameters"]["config"]["encoder"]))
    reference.load_state_dict(
        {k[len("encoder.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    )
    reference.eval()

    out = tmp_path / "resnet18_simclr.safetensors"
    assert cli([str(run), str(out)]) == 0
    from_run = load_encoder(run)
    from_export = load_encoder(out)
    plain = torchvision.models.resnet18()
    plain.fc = nn.Identity()
    plain.load_state_dict(load_file(str(out)), strict=True)
    plain.eval()

    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = reference(x)
        for model in (from_run, from_export, plain):
            assert torch.equal(model(x), want)
    assert from_export.meta["config"] == from_run.meta["config"]
    X = embed(from_export, labeled_folder / "test", progress=False)
    Y = embed(from_run, labeled_folder / "test", progress=False)
    assert X.shape == (12, 512)
    np.testing.assert_array_equal(X, Y)
