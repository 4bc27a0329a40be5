"""B8 progressive resizing: what a SimCLR step costs at each view size, in float32.

    python benchmarks/b8_resolution_step.py [--sizes 8,12,16] [--batch 128] [--rounds 5]
    python benchmarks/b8_resolution_step.py --sizes 16,24,32        # small_images at 32 px

The model step as `SimCLRModule` takes it (both views in one pass through a
CIFAR-stem ResNet-18 and the v2 head, NT-Xent, backward, LARS step), float32 pinned
(`trainer.precision=32-true`, the precision of CPUs without bf16), channels_last on
(the CPU's `auto`). Sizes are alternated within each round, so a busier machine
slows every size alike; the median round is reported, with each size's cost relative
to the largest. Progressive resizing (`data.start_size`, simclr/data/resolution.py)
saves what the early, smaller sizes save over the full one: this table says how much
on the machine it ran on (the pixels' share is the most it can save; fixed costs per
step, the optimizer and the smallest feature maps, take the rest). Writes
benchmarks/results/b8_resolution_step[_TAG].json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from harness.common import RESULTS_DIR, fmt, log, median, write_result

from simclr.config.schema import EncoderConfig, HeadConfig, OptimConfig
from simclr.losses.ntxent import NTXentLoss
from simclr.models.encoder import build_encoder, feature_dim
from simclr.models.head import build_head
from simclr.training.optim import build_optimizer


def _step_fn(size: int, batch: int) -> Any:
    encoder = build_encoder(EncoderConfig(arch="resnet18", stem="cifar"))
    head = build_head(HeadConfig(version="v2"), feature_dim(encoder))
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head})
    model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, OptimConfig(name="lars", lr=1.0), batch)
    loss_fn = NTXentLoss(0.2)
    views = torch.randn(2 * batch, 3, size, size).contiguous(memory_format=torch.channels_last)

    def step() -> None:
        z1, z2 = head(encoder(views)).chunk(2)
        optimizer.zero_grad(set_to_none=True)
        loss_fn(z1, z2).backward()
        optimizer.step()

    return step


def measure(sizes: list[int], batch: int, rounds: int) -> dict[int, list[float]]:
    """Seconds per step of each size, `rounds` times, sizes alternated within a round."""
    steps = {size: _step_fn(size, batch) for size in sizes}
    for step in steps.values():
        step()  # oneDNN picks its kernels on the first call
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    for r in range(rounds):
        for size in sizes if r % 2 == 0 else reversed(sizes):
            start = time.perf_counter()
            steps[size]()
            seconds[size].append(time.perf_counter() - start)
        log(
            f"round {r + 1}/{rounds}: " + ", ".join(f"{s} px {seconds[s][-1]:.2f} s" for s in sizes)
        )
    return seconds


def summary(rows: list[dict[str, Any]], cpu: str) -> list[dict[str, Any]]:
    """The headline: a step at the smallest size against one at the full size."""
    small, full = rows[0], rows[-1]
    return [
        {
            "benchmark": "B8",
            "measure": (
                f"SimCLR model step, s at {small['size']} px / s at {full['size']} px "
                f"(float32, channels_last, CPU {cpu})"
            ),
            "ratio": fmt(small["relative_cost"]),
            "goal": f"— (the pixels' share, {fmt(small['pixels_share'])}, is the floor)",
            "context": ", ".join(f"{r['size']} px {fmt(r['seconds_per_step'])} s" for r in rows),
        }
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,12,16")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tag", default="", help="result name suffix: b8_resolution_step_TAG")
    args = parser.parse_args(argv)
    name = "b8_resolution_step" + (f"_{args.tag}" if args.tag else "")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    torch.manual_seed(0)
    seconds = measure(sizes, args.batch, args.rounds)
    full = median(seconds[sizes[-1]])
    rows = [
        {
            "size": size,
            "seconds_per_step": median(seconds[size]),
            "images_per_second": args.batch / median(seconds[size]),
            "relative_cost": median(seconds[size]) / full,
            "pixels_share": (size / sizes[-1]) ** 2,
            "seconds": seconds[size],
        }
        for size in sizes
    ]
    cpu = torch.backends.cpu.get_cpu_capability()
    path = write_result(
        name,
        title="B8: a SimCLR step's cost by view size (float32, channels_last)",
        rows=rows,
        summary=summary(rows, cpu),
        settings={
            "sizes": sizes,
            "batch": args.batch,
            "rounds": args.rounds,
            "cpu_capability": cpu,
        },
        notes=[
            "model step only: CIFAR-stem ResNet-18 + v2 head, NT-Xent, LARS; 2 x batch views",
            f"torch.backends.cpu.get_cpu_capability() = {cpu}",
        ],
    )
    table = [
        f"# B8: a SimCLR step's cost by view size (float32, channels_last; CPU capability {cpu})",
        "",
        f"Command: `python benchmarks/b8_resolution_step.py --sizes {args.sizes} "
        f"--batch {args.batch} --rounds {args.rounds}"
        + (f" --tag {args.tag}" if args.tag else "")
        + f"`. Median of {args.rounds} rounds.",
        "",
        "| view size | s/step | images/s | cost vs full size | pixels' share |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['size']} px | {fmt(r['seconds_per_step'])} | {fmt(r['images_per_second'], 1)} "
            f"| {fmt(r['relative_cost'])} | {fmt(r['pixels_share'])} |"
            for r in rows
        ),
    ]
    (RESULTS_DIR / f"{name}.md").write_text("\n".join(table) + "\n")
    log(f"wrote {path}")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
