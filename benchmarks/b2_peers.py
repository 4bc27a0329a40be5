"""B2 ours vs peers, same work: images/s and peak memory of the whole pretraining run.

    python benchmarks/b2_peers.py [--images 512] [--epochs 3] [--rounds 2]

Same JPEG folder, network (ResNet-18 CIFAR stem, 512-512-128 head), batch size,
two views with the same augmentations (crop 0.08-1, flip, jitter s=0.5 p=0.8,
grayscale 0.2, no blur), same number of DataLoader workers and epochs. Each toolkit
keeps its own recipe for the rest (optimizer, Lightning defaults, loader options).
Arms: ours at its defaults (trainer.precision=auto, encoder.channels_last=auto: bf16 +
channels_last on a CPU with native bf16), ours pinned to float32, each peer at its
documented precision (float32) and each peer in bf16 through its own Trainer. Runs
alternate within each round; warm-up steps are excluded; the rates include the epoch
boundaries. Ratio = ours images/s / peer images/s.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.bench_data import jpeg_folder
from harness.common import (
    HARNESS_DIR,
    OUR_PYTHON,
    PEER_ARMS,
    PEERS,
    add_workload_args,
    fmt,
    median,
    peer_python,
    peer_state,
    peer_version,
    run_worker,
    write_result,
)
from harness.workers import ours_case, run_ours, run_peer

NAME = "b2_peers"
FLOAT32 = ["trainer.precision=32-true", "encoder.channels_last=false"]


def view_cost(toolkit: str, folder: Path) -> dict[str, Any]:
    """CPU ms per image of `toolkit`'s decode + two views (harness/views_worker.py, one thread)."""
    python = OUR_PYTHON if toolkit == "ours" else peer_python(toolkit)
    if python is None:
        return {"error": peer_state(toolkit)}
    argv: list[Any] = [
        python,
        HARNESS_DIR / "views_worker.py",
        "--toolkit",
        toolkit,
        "--data",
        folder,
    ]
    return run_worker(argv, timeout=600)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    add_workload_args(p, rounds=2)
    args = p.parse_args()

    folder = jpeg_folder(args.images, args.image_size)
    case = ours_case(folder, args.image_size, args.batch, args.epochs, args.workers)
    # Ours with its defaults (precision and memory format chosen for the hardware) and
    # pinned to float32, so the table shows what is the toolkit and what is the precision;
    # each peer at its documented precision (float32) and in bf16 through its own Trainer.
    ours_arms = {"ours": case, "ours_fp32": [*case, *FLOAT32]}
    peer_arms = PEER_ARMS
    runs: dict[str, list[dict]] = {arm: [] for arm in [*ours_arms, *peer_arms]}
    for r in range(args.rounds):
        for arm, overrides in ours_arms.items():
            runs[arm].append(
                run_ours("pretrain", overrides, name=f"b2_{arm}{r}", warmup=args.warmup)
            )
        for arm, (peer, precision) in peer_arms.items():
            runs[arm].append(
                run_peer(
                    peer,
                    data=folder,
                    name=f"b2_{arm}{r}",
                    image_size=args.image_size,
                    batch=args.batch,
                    epochs=args.epochs,
                    workers=args.workers,
                    warmup=args.warmup,
                    precision=precision,
                )
            )

    views = {t: view_cost(t, folder) for t in ("ours", *PEERS)}
    views |= {"ours_fp32": views["ours"]} | {f"{p}_bf16": views[p] for p in PEERS}

    def stat(toolkit: str, key: str) -> float:
        return median(x[key] for x in runs[toolkit] if "error" not in x and x.get(key))

    table: dict[str, dict[str, Any]] = {
        t: {
            "images_per_s": stat(t, "images_per_s"),
            "peak_tree_pss_mib": stat(t, "peak_tree_pss_mib"),
            "peak_rss_main_mib": stat(t, "peak_rss_main_mib"),
            "steady_step_s": stat(t, "steady_step_s"),
            "boundary_step_s": stat(t, "boundary_step_s"),
            "cpu_s_per_image": stat(t, "cpu_s_per_image"),
            "views_ms_per_image": views[t].get("ms_per_image"),
            "state": "measured" if any("error" not in x for x in runs[t]) else runs[t][0]["error"],
        }
        for t in runs
    }
    ratios, summary, notes = {}, [], []
    # (ours arm, peer arm, goal): the headline is ours at its defaults against each peer
    # at its documented settings; the bf16 rows separate the toolkit from the precision.
    pairs = [("ours", peer, "≥ 2.0") for peer in PEERS]
    pairs += [("ours", f"{peer}_bf16", "≥ 1.0") for peer in PEERS]
    pairs += [("ours_fp32", peer, "≥ 1.0") for peer in PEERS]
    for mine, other, goal in pairs:
        ours, row = table[mine], table[other]
        label = f"pretraining images/s, {mine} / {other}"
        if row["state"] != "measured" or ours["state"] != "measured":
            state = row["state"] if row["state"] != "measured" else ours["state"]
            summary.append(
                {"benchmark": "B2", "measure": label, "ratio": "—", "goal": goal, "context": state}
            )
            continue
        speed = ours["images_per_s"] / row["images_per_s"]
        memory = ours["peak_tree_pss_mib"] / row["peak_tree_pss_mib"]
        ratios[f"{mine}_over_{other}_images_per_s"] = speed
        ratios[f"{mine}_over_{other}_peak_memory"] = memory
        # CPU seconds per image barely move with other jobs on the machine: the
        # contention-free view of the same comparison (peer CPU / ours CPU).
        cpu = row["cpu_s_per_image"] / ours["cpu_s_per_image"] if ours["cpu_s_per_image"] else None
        ratios[f"{other}_over_{mine}_cpu_s_per_image"] = cpu
        summary.append(
            {
                "benchmark": "B2",
                "measure": f"{label} (same work: ResNet-18 CIFAR stem, {args.image_size} px, "
                f"batch {args.batch}, {args.epochs} epochs)",
                "ratio": fmt(speed),
                "goal": goal,
                "context": f"{fmt(ours['images_per_s'], 1)} vs {fmt(row['images_per_s'], 1)} "
                f"img/s; peak memory {mine}/{other} {fmt(memory)} "
                f"({fmt(ours['peak_tree_pss_mib'], 0)} vs {fmt(row['peak_tree_pss_mib'], 0)} MiB);"
                f" CPU s/image {other}/{mine} {fmt(cpu)}",
            }
        )
    for peer in PEERS:
        row, ours = table[peer], table["ours"]
        notes.append(
            f"{peer}: decode + two views {fmt(row['views_ms_per_image'])} ms/image on one core vs "
            f"ours {fmt(ours['views_ms_per_image'])} ms; step in an epoch "
            f"{fmt(row['steady_step_s'])} s vs ours {fmt(ours['steady_step_s'])} s; first step "
            f"of an epoch {fmt(row['boundary_step_s'])} s vs ours {fmt(ours['boundary_step_s'])} s."
        )
    for t, xs in runs.items():
        notes += [f"{t} round {i}: {x['error']}" for i, x in enumerate(xs) if "error" in x]
    write_result(
        NAME,
        title="B2 ours vs lightning-bolts and lightly, same work, float32 and bf16",
        settings=vars(args),
        figures=table,
        rows=[{"toolkit": t, "round": i, **x} for t, xs in runs.items() for i, x in enumerate(xs)],
        ratios=ratios,
        summary=summary,
        notes=notes,
        extra_versions={
            "lightning-bolts (bolts env)": peer_version("bolts", "lightning-bolts"),
            "pytorch-lightning (bolts env)": peer_version("bolts", "pytorch-lightning"),
            "lightly (lightly env)": peer_version("lightly", "lightly"),
            "pytorch-lightning (lightly env)": peer_version("lightly", "pytorch-lightning"),
            "peer states": {peer: peer_state(peer) for peer in PEERS},
        },
    )


if __name__ == "__main__":
    main()
