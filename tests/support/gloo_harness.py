"""Run one check on every rank of a spawned gloo process group; return rank 0's results.

Starting processes costs seconds, so each distributed test module spawns once and
its tests compare rank 0's results with a single-process computation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

RankCheck = Callable[[int], dict]


def _rank(rank: int, check: RankCheck, world: int, folder: str) -> None:
    # A file store, not TCP: with TCP rank 0 hosts the store, and when it exits
    # first the other rank's store thread can abort that process during teardown.
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world
    )
    try:
        results = check(rank)
        if rank == 0:
            torch.save(results, f"{folder}/rank0.pt")
        dist.barrier()  # neither rank tears down while the other still talks to it
        Path(f"{folder}/done{rank}").touch()
    finally:
        dist.destroy_process_group()


def run_on_gloo_ranks(check: RankCheck, world: int, folder: Path) -> dict:
    """``check(rank)`` on ``world`` spawned processes; rank 0's returned dict.

    ``check`` must be a module-level function (spawn pickles it by name).
    """
    try:
        mp.start_processes(
            _rank, args=(check, world, str(folder)), nprocs=world, join=True, start_method="spawn"
        )
    except mp.ProcessExitedException:
        # gloo can still abort a process inside destroy_process_group (seen once in CI
        # under load); that is teardown, not the code under test. Accept it only when
        # every rank finished its check, which the markers written before teardown prove.
        if not all((folder / f"done{rank}").exists() for rank in range(world)):
            raise
    return torch.load(folder / "rank0.pt", weights_only=False)
