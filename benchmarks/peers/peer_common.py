"""What the peer training workers share: arguments, an image-file dataset, the Trainer.

Imported by ``bolts_train.py`` (Lightning 1.9, bolts' env) and ``lightly_train.py``
(Lightning 2, lightly's env); it never imports our toolkit, only ``harness.steptimer``
(benchmarks/ is on PYTHONPATH: ``harness.common.run_worker`` puts it there). The worker
protocol is ours: one JSON line on stdout with the step timer's figures and peak memory.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from harness.steptimer import StepTimer, TreeMemorySampler, emit, peak_rss_mib
from PIL import Image
from torch.utils.data import DataLoader, Dataset

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def parse_args(description: str) -> argparse.Namespace:
    """Arguments every peer worker takes (same names as ours_train.py where they overlap)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, required=True, help="image folder (DIR/train if labeled)")
    p.add_argument("--out", type=Path, required=True, help="checkpoints and logs go here")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--warmup-steps", type=int, default=2, help="steps left out of the rate")
    p.add_argument("--budget-s", type=float, default=None, help="stop after S seconds")
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--precision", default="32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-encoder", type=Path, default=None, help="torchvision-layout .pt")
    return p.parse_args()


def image_root(data: Path) -> Path:
    """`DATA/train` for a labeled folder, else `DATA` itself."""
    return data / "train" if (data / "train").is_dir() else data


def training_loader(dataset: Dataset, args: argparse.Namespace) -> DataLoader:
    """The same DataLoader settings for every peer: shuffled, full batches only."""
    return DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=torch.cuda.is_available(),
    )


def image_files(root: Path) -> list[Path]:
    """Image files under `root`, recursively, sorted (the layout our folder source reads)."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


class ImageFiles(Dataset):
    """Image files decoded to RGB with PIL, then `transform`; the label is always 0."""

    def __init__(self, root: Path, transform: Any) -> None:
        self.files = image_files(root)
        if not self.files:
            raise SystemExit(f"{root}: no images")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        with Image.open(self.files[index]) as img:
            return self.transform(img.convert("RGB")), 0


def build_trainer(args: argparse.Namespace, timer: StepTimer) -> pl.Trainer:
    """Lightning's Trainer with its defaults (checkpoint each epoch, default logger)."""
    callbacks: list[Any] = [timer]
    if args.budget_s:
        from pytorch_lightning.callbacks import Timer

        callbacks.append(Timer(duration=timedelta(seconds=args.budget_s), interval="step"))
    return pl.Trainer(
        accelerator=args.accelerator,
        devices=1,
        precision=args.precision if not args.precision.isdigit() else int(args.precision),
        max_epochs=args.epochs,
        max_steps=args.max_steps,
        callbacks=callbacks,
        default_root_dir=str(args.out),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def fit_and_report(
    toolkit: str, args: argparse.Namespace, module: pl.LightningModule, loader: Any
) -> pl.Trainer:
    """Fit with the step timer and memory sampler, then print the worker's JSON line."""
    args.out.mkdir(parents=True, exist_ok=True)
    timer = StepTimer(args.batch_size, args.warmup_steps)
    trainer = build_trainer(args, timer)
    with TreeMemorySampler() as memory:
        started = time.perf_counter()
        trainer.fit(module, loader)
        wall = time.perf_counter() - started
    checkpoint = args.out / "last.ckpt"
    trainer.save_checkpoint(str(checkpoint))
    emit(
        {
            **timer.result(),
            "wall_seconds": round(wall, 2),
            "peak_tree_pss_mib": round(memory.peak_mib, 1),
            "checkpoint": str(checkpoint),
            "toolkit": toolkit,
            "torch_threads": torch.get_num_threads(),
            "global_step": int(trainer.global_step),
            **peak_rss_mib(),
        }
    )
    return trainer
