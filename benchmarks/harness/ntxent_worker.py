"""Worker: forward+backward time and peak memory of one NT-Xent implementation.

    python benchmarks/harness/ntxent_worker.py --impl ours --dtype float32 --batches 256,1024
    benchmarks/.peers/bolts/bin/python benchmarks/harness/ntxent_worker.py --impl bolts ...

Implementations: `ours` (simclr.losses.ntxent.nt_xent), `reference` (the unfused formula below),
`bolts` (pl_bolts.losses.self_supervised_learning.nt_xent_loss, fed unit vectors: it
does not normalise its inputs, bolts' projection head does), `lightly`
(lightly.loss.NTXentLoss). Each gets raw projections and normalises them inside the
timed call, as each toolkit's training step does. Batch sizes run in increasing
order, so the process's peak RSS after a size is that size's peak (CPU); on CUDA the
peak is reset per size. With --check FILE.npz the loss on those fixed inputs is
reported too, for the value comparison. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent written out term by term: exp, mask, sum, log (nothing fused).

    For anchor i with positive p(i): -log(exp(s_ip/t) / sum_{k != i} exp(s_ik/t)),
    averaged over the 2N anchors, s the cosine similarity.
    """
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n2 = z.shape[0]
    rows = torch.arange(n2, device=z.device)
    exp = torch.exp(z @ z.T / temperature)
    others = exp.masked_fill(torch.eye(n2, dtype=torch.bool, device=z.device), 0.0).sum(dim=1)
    positive = exp[rows, (rows + n2 // 2) % n2]
    return -torch.log(positive / others).mean()


def load_impl(name: str, temperature: float) -> Loss:
    if name == "ours":
        from simclr.losses.ntxent import nt_xent

        return lambda a, b: nt_xent(a, b, temperature, gather=False)
    if name == "reference":
        return lambda a, b: reference_nt_xent(a, b, temperature)
    if name == "bolts":
        from pl_bolts.losses.self_supervised_learning import nt_xent_loss

        return lambda a, b: nt_xent_loss(F.normalize(a, dim=1), F.normalize(b, dim=1), temperature)
    if name == "lightly":
        from lightly.loss import NTXentLoss

        loss = NTXentLoss(temperature=temperature)
        return lambda a, b: loss(a, b)
    raise SystemExit(f"--impl {name!r}: expected ours, reference, bolts or lightly")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(
    loss_fn: Loss, batch: int, dim: int, dtype: torch.dtype, device: torch.device, repeats: int
) -> dict[str, Any]:
    g = torch.Generator().manual_seed(batch)
    z1 = torch.randn(batch, dim, generator=g).to(device, dtype).requires_grad_()
    z2 = torch.randn(batch, dim, generator=g).to(device, dtype).requires_grad_()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) / 2**20
    else:
        base = rss_mib()
    # One untimed call first, except for large sizes on the CPU: smaller sizes have
    # warmed the code paths, and the CPU allocator does not keep big blocks between
    # calls, so a second call costs what the first does.
    warmup = 0 if device.type == "cpu" and batch > 2048 else 1
    times = []
    for i in range(repeats + warmup):
        z1.grad = z2.grad = None
        sync()
        start = time.perf_counter()
        loss_fn(z1, z2).backward()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return {
        "batch": batch,
        "seconds": statistics.median(times),
        "warmup_calls": warmup,
        "all_seconds": [round(t, 5) for t in times],
        "peak_mib": round(peak_mib(device) - base, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--impl", required=True)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--batches", default="256,1024")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--check", default=None, help=".npz with z1, z2 for the value check")
    args = p.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    loss_fn = load_impl(args.impl, args.temperature)
    result: dict[str, Any] = {"impl": args.impl, "dtype": args.dtype, "device": str(device)}
    if args.check:
        with np.load(args.check) as z:
            a, b = (torch.from_numpy(z[k]).to(device, dtype) for k in ("z1", "z2"))
        with torch.no_grad():
            result["check_value"] = float(loss_fn(a, b).double())
    rows = []
    for batch in sorted(int(b) for b in args.batches.split(",")):
        # Many repeats where a call takes milliseconds (a shared core's scheduling noise
        # is of that order), fewer where one takes seconds.
        if batch <= 1024:
            repeats = max(args.repeats, 25)
        else:
            repeats = args.repeats if batch <= 2048 else max(2, args.repeats // 2)
        try:
            rows.append(measure(loss_fn, batch, args.dim, dtype, device, repeats))
        except (RuntimeError, MemoryError) as err:
            rows.append({"batch": batch, "error": str(err).splitlines()[0][:200]})
            break
    result["rows"] = rows
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    print(__import__("json").dumps(result), flush=True)


if __name__ == "__main__":
    main()
