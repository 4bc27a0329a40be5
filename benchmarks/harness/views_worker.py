"""Worker: CPU milliseconds per image of one toolkit's view pipeline (decode + two views).

    python benchmarks/harness/views_worker.py --toolkit ours --data DIR
    benchmarks/.peers/bolts/bin/python benchmarks/harness/views_worker.py --toolkit bolts --data DIR

One thread, no DataLoader: the per-image cost each toolkit's loader workers pay, with
the B2 settings (32 px, crop 0.08-1, flip, jitter s=0.5 p=0.8, grayscale 0.2, no blur).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image


def ours(size: int) -> Any:
    from omegaconf import OmegaConf

    from simclr.config.schema import AugmentConfig
    from simclr.data.views import build_view_transform

    cfg = OmegaConf.structured(AugmentConfig(name="cifar", jitter_strength=0.5, blur_p=0.0))
    return build_view_transform(cfg, size)


def bolts(size: int) -> Any:
    from pl_bolts.transforms.dataset_normalizations import cifar10_normalization
    from pl_bolts.transforms.self_supervised.simclr_transforms import SimCLRTrainDataTransform

    t = SimCLRTrainDataTransform(size, gaussian_blur=False, jitter_strength=0.5,
                                 normalize=cifar10_normalization())  # fmt: skip
    return t.train_transform


def lightly(size: int) -> Any:
    from lightly.transforms import SimCLRTransform

    return SimCLRTransform(input_size=size, cj_strength=0.5, gaussian_blur=0.0).transforms[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--toolkit", required=True, choices=["ours", "bolts", "lightly"])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--images", type=int, default=200)
    args = p.parse_args()
    torch.set_num_threads(1)  # what a DataLoader worker runs with
    view = {"ours": ours, "bolts": bolts, "lightly": lightly}[args.toolkit](args.size)
    files = sorted(args.data.glob("*.jpg"))[: args.images]

    def one(path: Path) -> None:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        view(rgb)
        view(rgb)

    for path in files[:20]:  # warm-up
        one(path)
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        for path in files:
            one(path)
        rounds.append((time.perf_counter() - start) / len(files) * 1000)
    print(json.dumps({"toolkit": args.toolkit, "ms_per_image": sorted(rounds)[1],
                      "rounds_ms": rounds, "images": len(files)}))  # fmt: skip


if __name__ == "__main__":
    main()
