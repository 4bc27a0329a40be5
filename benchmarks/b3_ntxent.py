"""B3 NT-Xent: forward+backward time and peak memory, ours vs an unfused reference and peers.

    python benchmarks/b3_ntxent.py [--peers] [--batches 256,...,8192] [--dtypes float32,bfloat16]

Every implementation runs in its own process (ours and the reference in our venv,
bolts' `nt_xent_loss` and lightly's `NTXentLoss` in theirs) on the same seeded
projections (dimension 128, temperature 0.5), batch sizes in increasing order.
The value check feeds all of them the same fixed 256 x 128 pair and compares with
the reference formula evaluated in float64 here.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from harness.common import (
    HARNESS_DIR,
    OUR_PYTHON,
    WORK_DIR,
    fmt,
    log,
    peer_python,
    peer_state,
    peer_version,
    run_worker,
    write_result,
)
from harness.ntxent_worker import reference_nt_xent

NAME = "b3_ntxent"
PEER_IMPLS = {"bolts": "bolts", "lightly": "lightly"}


def check_inputs(n: int = 256, dim: int = 128) -> tuple[str, float]:
    """Write the fixed value-check pair; return its path and the float64 reference loss."""
    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((n, dim)).astype(np.float32)
    z2 = (z1 + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)  # correlated views
    path = WORK_DIR / "ntxent_check.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, z1=z1, z2=z2)
    value = reference_nt_xent(torch.from_numpy(z1).double(), torch.from_numpy(z2).double(), 0.5)
    return str(path), float(value)


def run_impl(impl: str, dtype: str, batches: str, repeats: int, check: str) -> dict:
    python = OUR_PYTHON if impl in ("ours", "reference") else peer_python(impl)
    if python is None:
        return {"impl": impl, "dtype": dtype, "error": peer_state(impl)}
    argv: list[Any] = [python, HARNESS_DIR / "ntxent_worker.py", "--impl", impl, "--dtype", dtype]
    argv += ["--batches", batches, "--repeats", str(repeats), "--check", check]
    log(f"nt-xent {impl} {dtype}")
    result = run_worker(argv, timeout=1800)
    result.setdefault("impl", impl)
    result.setdefault("dtype", dtype)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--peers", action="store_true", help="also bolts' and lightly's losses")
    p.add_argument("--batches", default="256,512,1024,2048,4096,8192")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--repeats", type=int, default=4)
    args = p.parse_args()

    check, ref64 = check_inputs()
    impls = ["ours", "reference", *(PEER_IMPLS if args.peers else [])]
    results = [
        run_impl(impl, dtype, args.batches, args.repeats, check)
        for dtype in args.dtypes.split(",")
        for impl in impls
    ]
    by = {(r["impl"], r["dtype"]): r for r in results}
    rows, notes, summary, ratios = [], [], [], {}
    for r in results:
        if "error" in r:
            notes.append(f"{r['impl']} {r['dtype']}: {r['error']}")
            continue
        ours = {x["batch"]: x for x in by.get(("ours", r["dtype"]), {}).get("rows", [])}
        for x in r["rows"]:
            mine = ours.get(x["batch"], {})
            rows.append(
                {
                    "impl": r["impl"],
                    "dtype": r["dtype"],
                    **x,
                    "time_vs_ours": x["seconds"] / mine["seconds"]
                    if "seconds" in x and "seconds" in mine
                    else None,
                    "memory_vs_ours": x["peak_mib"] / mine["peak_mib"]
                    if "peak_mib" in x and mine.get("peak_mib")
                    else None,
                }
            )
    values = {
        f"{r['impl']} {r['dtype']}": {
            "value": r.get("check_value"),
            "abs_diff_vs_float64_reference": abs(r["check_value"] - ref64)
            if "check_value" in r
            else None,
        }
        for r in results
    }
    sizes = [int(b) for b in args.batches.split(",")]
    for impl in impls[1:]:
        for dtype in args.dtypes.split(","):
            cells = {x["batch"]: x for x in rows if x["impl"] == impl and x["dtype"] == dtype}
            for b in (sizes[0], sizes[-1]):
                cell = cells.get(b, {})
                ratios[f"{impl}/{dtype}/{b}/time"] = cell.get("time_vs_ours")
                ratios[f"{impl}/{dtype}/{b}/memory"] = cell.get("memory_vs_ours")
            big = cells.get(sizes[-1], {})
            small = cells.get(sizes[0], {})
            mine_big = next(
                (
                    x
                    for x in rows
                    if (x["impl"], x["dtype"], x["batch"]) == ("ours", dtype, sizes[-1])
                ),
                {},
            )
            summary.append(
                {
                    "benchmark": "B3",
                    "measure": f"NT-Xent fwd+bwd time, {impl} / ours, {dtype}, "
                    f"batch {sizes[0]} | {sizes[-1]} (dim 128)",
                    "ratio": f"{fmt(small.get('time_vs_ours'))} | {fmt(big.get('time_vs_ours'))}",
                    "goal": "≥ 1.0 (ours not slower)",
                    "context": f"batch {sizes[-1]}: ours {fmt(mine_big.get('seconds'), 3)} s, "
                    f"{fmt(mine_big.get('peak_mib'), 0)} MiB; {impl} "
                    f"{fmt(big.get('seconds'), 3)} s, {fmt(big.get('peak_mib'), 0)} MiB "
                    f"(memory {impl}/ours {fmt(big.get('memory_vs_ours'))})",
                }
            )
    worst = max(
        (
            v["abs_diff_vs_float64_reference"]
            for k, v in values.items()
            if "float32" in k and v["abs_diff_vs_float64_reference"] is not None
        ),
        default=None,
    )
    summary.append(
        {
            "benchmark": "B3",
            "measure": "NT-Xent value agreement, float32, all implementations vs float64 reference",
            "ratio": f"max |Δ| {worst:.1e}" if worst is not None else "—",
            "goal": "same value",
            "context": f"reference loss {ref64:.6f} on a fixed 256 x 128 pair",
        }
    )
    versions = (
        {
            f"{peer} {pkg}": peer_version(peer, pkg)
            for peer, pkg in (("bolts", "lightning-bolts"), ("lightly", "lightly"))
        }
        if args.peers
        else {}
    )
    write_result(
        NAME if args.peers else f"{NAME}_ours",  # ours-only keeps the side-by-side file
        title="B3 NT-Xent forward+backward: time and peak memory vs batch size",
        settings={**vars(args), "dim": 128, "temperature": 0.5},
        figures={"check_reference_float64": ref64, "values": values},
        rows=rows,
        ratios=ratios,
        summary=summary,
        notes=[
            "time_vs_ours and memory_vs_ours above 1 mean the other implementation is slower / "
            "uses more; memory is the peak RSS growth of the worker process on the CPU "
            "(max_memory_allocated on CUDA).",
            *notes,
        ],
        extra_versions=versions,
    )


if __name__ == "__main__":
    main()
