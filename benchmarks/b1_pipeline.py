"""B1 pipeline efficiency: end-to-end pretraining images/s over model-only images/s.

    python benchmarks/b1_pipeline.py [--images 512] [--epochs 3] [--rounds 1]

End to end: `simclr.jobs.pretrain.pretrain_run` on a generated folder of 32-px JPEGs (decode,
two augmented views in the DataLoader workers, forward/backward, optimizer step,
checkpoint at each epoch end), several epochs so that epoch boundaries count.
Model only: the same SimCLRModule and optimizer on two views already in memory.
Loader only: our train DataLoader alone, for where the time goes. Each arm is a fresh
process; the arms alternate within a round; the ratio is of medians. Goal >= 0.90.
"""

from __future__ import annotations

import argparse
import os

from harness.bench_data import jpeg_folder
from harness.common import add_workload_args, fmt, median, spread, write_result
from harness.workers import ours_case, run_ours

NAME = "b1_pipeline"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    add_workload_args(p, rounds=1)
    args = p.parse_args()

    folder = jpeg_folder(args.images, args.image_size)
    case = ours_case(folder, args.image_size, args.batch, args.epochs, args.workers)
    steps = (args.images // args.batch) * args.epochs - args.warmup
    runs: dict[str, list[dict]] = {"end_to_end": [], "model_only": [], "loader_only": []}
    for r in range(args.rounds):
        runs["end_to_end"].append(run_ours("pretrain", case, name=f"b1_e2e{r}", warmup=args.warmup))
        runs["model_only"].append(
            run_ours("model", case, name=f"b1_model{r}", warmup=args.warmup, steps=steps)
        )
        runs["loader_only"].append(
            # More batches than the workers prefetch, so that their CPU time is counted.
            run_ours("loader", case, name=f"b1_loader{r}", warmup=args.warmup, steps=16)
        )
    errors = [f"{arm}: {x['error']}" for arm, xs in runs.items() for x in xs if "error" in x]
    ips = {
        arm: spread(x["images_per_s"] for x in xs if "error" not in x) for arm, xs in runs.items()
    }
    e2e, model = ips["end_to_end"]["median"], ips["model_only"]["median"]
    ratio = e2e / model if model else float("nan")
    pairs = [
        a["images_per_s"] / b["images_per_s"]
        for a, b in zip(runs["end_to_end"], runs["model_only"], strict=True)
        if "error" not in a and "error" not in b
    ]
    e2e_runs = [x for x in runs["end_to_end"] if "error" not in x]
    steady = median(x["steady_step_s"] for x in e2e_runs if x.get("steady_step_s"))
    boundary = median(x["boundary_step_s"] for x in e2e_runs if x.get("boundary_step_s"))
    memory = {
        arm: median(x["peak_tree_pss_mib"] for x in xs if "error" not in x)
        for arm, xs in runs.items()
    }
    loader = ips["loader_only"]["median"]
    # CPU seconds per image hardly move when other jobs share the cores, so their ratio
    # tells pipeline overhead from contention; cores used = CPU s/image x images/s.
    cpu = {
        arm: median(x["cpu_s_per_image"] for x in xs if x.get("cpu_s_per_image"))
        for arm, xs in runs.items()
    }
    cores = {
        arm: median(
            x["cpu_s_per_image"] * x["images_per_s"] for x in xs if x.get("cpu_s_per_image")
        )
        for arm, xs in runs.items()
    }
    cpu_ratio = cpu["model_only"] / cpu["end_to_end"] if cpu["end_to_end"] else float("nan")
    notes = [
        f"{args.images} JPEGs of {args.image_size} px, batch {args.batch}, {args.epochs} epochs "
        f"({steps} timed steps after {args.warmup} warm-up, {args.epochs - 1} epoch boundaries), "
        f"{args.workers} DataLoader workers, {os.cpu_count()} CPU cores.",
        f"Loader alone (decode + 2 views, {args.workers} workers) delivers {fmt(loader, 1)} img/s, "
        f"{fmt(loader / model if model else None, 0)}x what the model consumes: on shared "
        "cores its cost is the CPU time the workers take from the model's threads, about "
        f"{fmt(100 * model / loader if loader else None, 1)}% of it.",
        f"Median step: {fmt(steady)} s in an epoch, {fmt(boundary)} s at an epoch boundary.",
        f"CPU seconds per image: end to end {fmt(cpu['end_to_end'], 3)}, model only "
        f"{fmt(cpu['model_only'], 3)}, loader {fmt(cpu['loader_only'], 4)} (CPU efficiency "
        f"model/end-to-end {fmt(cpu_ratio)}); cores the run obtained: end to end "
        f"{fmt(cores['end_to_end'])}, model only {fmt(cores['model_only'])} of "
        f"{os.cpu_count()}.",
        *errors,
    ]
    write_result(
        NAME,
        title="B1 pipeline efficiency (end-to-end / model-only images/s)",
        settings=vars(args),
        figures={
            "images_per_s": ips,
            "peak_tree_pss_mib": memory,
            "cpu_s_per_image": cpu,
            "cores_obtained": cores,
            "steady_step_s": steady,
            "boundary_step_s": boundary,
        },
        rows=[{"arm": arm, **x} for arm, xs in runs.items() for x in xs],
        ratios={
            "end_to_end_over_model_only": ratio,
            "per_round": pairs,
            "cpu_efficiency_model_over_end_to_end": cpu_ratio,
        },
        summary=[
            {
                "benchmark": "B1",
                "measure": "end-to-end / model-only images/s (ResNet-18 CIFAR stem, "
                f"{args.image_size} px, batch {args.batch}, JPEG folder)",
                "ratio": fmt(ratio),
                "goal": "≥ 0.90",
                "context": f"{fmt(e2e, 1)} vs {fmt(model, 1)} img/s; loader alone "
                f"{fmt(loader, 0)} img/s; CPU s/image ratio {fmt(cpu_ratio)}; cores obtained "
                f"{fmt(cores['end_to_end'], 1)} vs {fmt(cores['model_only'], 1)}; peak "
                f"{fmt(memory['end_to_end'], 0)} MiB (PSS, main + workers)",
            }
        ],
        notes=notes,
    )


if __name__ == "__main__":
    main()
