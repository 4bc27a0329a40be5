"""B7 loader alone: pretraining images/s from an image folder vs from local LitData shards.

    python benchmarks/b7_stream_loader.py [--images 2048] [--image-size 224] [--workers 4]
        [--batch 256] [--epochs 3] [--rounds 3]

The same generated JPEG folder (benchmarks/harness/bench_data.py) is read two ways, each
through the loader `simclr-pretrain` builds (SimCLRDataModule.train_dataloader:
decode, two SimCLR views in the workers, collate): `data=folder` from the files,
`data=stream` from shards that `simclr-prepare` writes from it once (not timed).
No model: images/s of the loader alone, the first epoch (worker start-up) left out,
median over rounds. Writes benchmarks/results/b7_stream_loader.json and .md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from typing import Any

from harness.bench_data import jpeg_folder
from harness.common import RESULTS_DIR, WORK_DIR, log, median, write_result


def _loader(name: str, root: str, args: argparse.Namespace) -> Any:
    from hydra import compose, initialize_config_dir

    from simclr.config import register_configs
    from simclr.console.app import CONF_DIR
    from simclr.data.datamodule import SimCLRDataModule

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "experiment=none",
                f"data={name}",
                f"data.root={root}",
                f"data.image_size={args.image_size}",
                f"data.batch_size={args.batch}",
                f"data.num_workers={args.workers}",
                "data.pin_memory=false",
            ],
        )
    return SimCLRDataModule(cfg.data, cfg.augment, seed=0).train_dataloader()


def _images_per_s(loader: Any, epochs: int, batch: int) -> list[float]:
    rates = []
    for epoch in range(epochs):
        if hasattr(getattr(loader, "sampler", None), "set_epoch"):
            loader.sampler.set_epoch(epoch)
        start, images = time.perf_counter(), 0
        for (view1, _), _ in loader:
            images += view1.shape[0]
        rates.append(images / (time.perf_counter() - start))
    return rates[1:]  # the first epoch pays for starting the workers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    from simclr.data.prepare import prepare_shards

    folder = jpeg_folder(args.images, size=max(args.image_size, 64))
    shards = WORK_DIR / f"shards_{folder.name}"
    if not (shards / "simclr_shards.json").is_file():
        shutil.rmtree(shards, ignore_errors=True)
        log(f"b7 writing shards of {folder}")
        prepare_shards(folder, str(shards), workers=args.workers, progress=False)
    sources = (("folder", folder), ("stream", shards))
    rates: dict[str, list[float]] = {name: [] for name, _ in sources}
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        # Rounds alternate between the sources, so a change in the machine's load
        # (other jobs) reaches both alike and the ratio stays side by side.
        for name, root in sources:
            log(f"b7 {name} round {r + 1}/{args.rounds}")
            loader = _loader(name, str(root), args)
            rates[name] += _images_per_s(loader, args.epochs, args.batch)
    load_after = os.getloadavg()[0]
    rows = [
        {"source": n, "images_per_s": round(median(rates[n]), 1), "all": rates[n]}
        for n, _ in sources
    ]
    by = {r["source"]: r["images_per_s"] for r in rows}
    ratio = by["stream"] / by["folder"] if by.get("folder") else None
    cores = os.cpu_count() or 1
    write_result(
        "b7_stream_loader",
        title="B7 loader alone: images/s, image folder vs local LitData shards",
        settings=vars(args),
        rows=rows,
        notes=[
            f"1-minute load average {load_before:.1f} before and {load_after:.1f} after, on "
            f"{cores} cores: other jobs shared the machine; the two sources were measured in "
            "alternating rounds, so the ratio is side by side, the absolute rates are not "
            "those of an idle machine."
        ],
        summary=[
            {
                "benchmark": "B7",
                "measure": "loader-alone images/s, local shards / folder (two views, workers)",
                "ratio": f"{ratio:.2f}" if ratio else "—",
                "goal": "≥ 1.0 (shards not slower locally)",
                "context": f"folder {by.get('folder')} images/s, shards {by.get('stream')} images/s "
                f"({args.image_size} px, {args.workers} workers, batch {args.batch})",
            }
        ],
    )
    table = "| source | images/s (median) |\n|---|---:|\n" + "".join(
        f"| {r['source']} | {r['images_per_s']} |\n" for r in rows
    )
    (RESULTS_DIR / "b7_stream_loader.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
