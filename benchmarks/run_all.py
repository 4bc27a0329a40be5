"""Run the benchmarks, then regenerate the table in benchmarks/README.md.

    python benchmarks/run_all.py            # `make bench`: ours only (B1, B3, B4, scaling)
    python benchmarks/run_all.py --peers    # `make bench-peers`: also B2 and the peers' rows
    python benchmarks/run_all.py --only b1_pipeline,b3_ntxent

Each benchmark is its own process: one that fails is reported and the rest go on.
B5 (GPU) runs when CUDA is available and benchmarks/b5_gpu.py exists.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from harness.common import BENCH_DIR, OUR_PYTHON, REPO, log

OURS = ["b1_pipeline", "b3_ntxent", "scaling", "b4_time_to_accuracy"]
WITH_PEERS = ["b1_pipeline", "b2_peers", "b3_ntxent", "scaling", "b4_time_to_accuracy"]
TAKES_PEERS = {"b3_ntxent", "b4_time_to_accuracy"}


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--peers", action="store_true", help="include lightning-bolts and lightly")
    p.add_argument("--only", default=None, help="comma-separated benchmark names")
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(WITH_PEERS if args.peers else OURS)
    if not args.only and cuda_available() and (BENCH_DIR / "b5_gpu.py").is_file():
        names.append("b5_gpu")
    failed = []
    for name in names:
        script = BENCH_DIR / f"{name}.py"
        argv = [str(OUR_PYTHON), str(script)]
        if args.peers and name in TAKES_PEERS:
            argv.append("--peers")
        log(f"=== {name}: {' '.join(argv[1:])}")
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=REPO, env=None)
        log(f"=== {name}: exit {done.returncode} after {time.perf_counter() - started:.0f} s")
        if done.returncode:
            failed.append(name)
    subprocess.run([str(OUR_PYTHON), str(BENCH_DIR / "make_table.py")], cwd=REPO, check=False)
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
