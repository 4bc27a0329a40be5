"""Scaling: images/s and peak memory of our training step vs batch size.

    python benchmarks/scaling.py [--batches 32,64,128,256] [--steps 2]

Model-only (the B1 arm: the CIFAR-case SimCLRModule and optimizer on two views in
memory), one fresh process per batch size, so each peak is that size's own. Shows how
the cost of a step grows with the work: images/s should stay flat once the batch
fills the cores, and memory should grow about linearly (activations) on top of a
constant (weights, optimizer state, the framework). NT-Xent's own growth with the
batch (quadratic) is B3's subject. Scaling with processes is measured on GPU
machines (B5); on two CPU cores a second process would only split the same cores.
"""

from __future__ import annotations

import argparse

from harness.bench_data import jpeg_folder
from harness.common import fmt, write_result
from harness.workers import ours_case, run_ours

NAME = "scaling"


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys on xs."""
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batches", default="32,64,128,256")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()

    folder = jpeg_folder(64, args.image_size)  # the config needs a root; the model never reads it
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        case = ours_case(folder, args.image_size, batch, 1, 0)
        got = run_ours("model", case, name=f"scaling_{batch}", warmup=args.warmup, steps=args.steps)
        rows.append({"batch": batch, **got})
    ok = [r for r in rows if "error" not in r]
    first = ok[0] if ok else {}
    for r in ok:
        r["images_per_s_vs_smallest"] = r["images_per_s"] / first["images_per_s"]
    mib_per_image = slope(
        [float(r["batch"]) for r in ok], [float(r["peak_tree_pss_mib"]) for r in ok]
    )
    last = ok[-1] if ok else {}
    summary = [
        {
            "benchmark": "Scaling",
            "measure": f"model-only images/s at batch {last.get('batch')} / at batch "
            f"{first.get('batch')} (ResNet-18 CIFAR stem, {args.image_size} px)",
            "ratio": fmt(last.get("images_per_s_vs_smallest")),
            "goal": "≈ 1 or above (no loss of throughput with batch)",
            "context": ", ".join(
                f"B={r['batch']}: {fmt(r['images_per_s'], 1)} img/s, {fmt(r['peak_tree_pss_mib'], 0)} MiB"
                for r in ok
            )
            + f"; memory grows {fmt(mib_per_image)} MiB per image in the batch",
        },
        {
            "benchmark": "Scaling",
            "measure": "images/s vs number of processes",
            "ratio": "not measured",
            "goal": "—",
            "context": "2 CPU cores here: a second process would split the same cores; "
            "measured on GPU machines by B5",
        },
    ]
    write_result(
        NAME,
        title="Scaling: images/s and peak memory vs batch size (model only)",
        settings=vars(args),
        figures={"mib_per_image": mib_per_image},
        rows=rows,
        ratios={"images_per_s_largest_over_smallest": last.get("images_per_s_vs_smallest")},
        summary=summary,
        notes=[f"batch {r['batch']}: {r['error']}" for r in rows if "error" in r],
    )


if __name__ == "__main__":
    main()
