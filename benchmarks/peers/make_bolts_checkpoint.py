"""Write real lightning-bolts 0.7 SimCLR checkpoints, for the interop proof.

Run with the bolts peer environment (see install.sh), not with our own venv:

    benchmarks/.peers/bolts/bin/python benchmarks/peers/make_bolts_checkpoint.py OUT_DIR

For each variant (ResNet-18 with the ImageNet stem, with first_conv=False and
maxpool1=False, with maxpool1=False alone; ResNet-50) it trains bolts' own
``pl_bolts.models.self_supervised.SimCLR`` for two optimizer steps on tiny random
data on the CPU, saves the checkpoint with the Trainer (so the file is exactly
what bolts writes), then records, for a fixed input tensor, the features that
bolts' own model gives in eval mode:

    OUT_DIR/<variant>.ckpt           the checkpoint (large, never committed)
    OUT_DIR/<variant>.input.npy      the fixed input, (4, 3, 32, 32) float32
    OUT_DIR/<variant>.features.npy   bolts' ``model(input)``, eval mode
    OUT_DIR/<variant>.projection.npy bolts' ``model.projection(features)``
    OUT_DIR/<variant>.keys.json      state-dict key names and shapes, hyper_parameters
                                     and the other top-level checkpoint keys

    OUT_DIR/bolts_simclr_keys.json   all the keys.json above in one file: the
                                     fixture tests/fixtures/bolts_simclr_keys.json
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

warnings.filterwarnings("ignore")

from pl_bolts.models.self_supervised import SimCLR  # noqa: E402

VARIANTS = {
    "resnet18_imagenet_stem": dict(arch="resnet18", hidden_mlp=512, first_conv=True, maxpool1=True),
    "resnet18_cifar_stem": dict(arch="resnet18", hidden_mlp=512, first_conv=False, maxpool1=False),
    # bolts' STL-10 recipe: 7x7/2 conv, no max-pool.
    "resnet18_stl10_stem": dict(arch="resnet18", hidden_mlp=512, first_conv=True, maxpool1=False),
    "resnet50_imagenet_stem": dict(
        arch="resnet50", hidden_mlp=2048, first_conv=True, maxpool1=True
    ),
}
BATCH = 4


class RandomViews(Dataset):
    """Bolts' batch layout: ((view1, view2, view_for_online_eval), label)."""

    def __len__(self) -> int:
        return 2 * BATCH

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        views = tuple(torch.rand(3, 32, 32, generator=g) for _ in range(3))
        return views, i % 2


def make(name: str, kwargs: dict, out: Path) -> dict:
    pl.seed_everything(0)
    model = SimCLR(
        gpus=0,
        num_samples=2 * BATCH,
        batch_size=BATCH,
        dataset="cifar10",
        max_epochs=1,
        warmup_epochs=0,
        **kwargs,
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(out),
    )
    trainer.fit(model, DataLoader(RandomViews(), batch_size=BATCH, drop_last=True))
    ckpt_path = out / f"{name}.ckpt"
    trainer.save_checkpoint(str(ckpt_path))

    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        h = model(x)
        z = model.projection(h)
    np.save(out / f"{name}.input.npy", x.numpy())
    np.save(out / f"{name}.features.npy", h.numpy())
    np.save(out / f"{name}.projection.npy", z.numpy())

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    record = {
        "made_with": {
            "lightning-bolts": __import__("pl_bolts").__version__,
            "pytorch-lightning": pl.__version__,
            "torch": torch.__version__,
        },
        "variant": name,
        "top_level_keys": sorted(ckpt),
        "hyper_parameters": {k: v for k, v in ckpt["hyper_parameters"].items()},
        "state_dict": {k: list(v.shape) for k, v in ckpt["state_dict"].items()},
        "feature_shape": list(h.shape),
    }
    (out / f"{name}.keys.json").write_text(json.dumps(record, indent=1))
    print(
        f"{name}: {ckpt_path} ({ckpt_path.stat().st_size / 1e6:.1f} MB), features {tuple(h.shape)}"
    )
    return record


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/.work/bolts")
    out.mkdir(parents=True, exist_ok=True)
    names = sys.argv[2:] or list(VARIANTS)
    records = {name: make(name, VARIANTS[name], out) for name in names}
    (out / "bolts_simclr_keys.json").write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
