"""B6 gradient caching: peak memory against batch size, with and without `loss.chunk_size`.

    python benchmarks/b6_chunk_memory.py [--batches 8,16,32,64,128] [--chunk 16]
        [--arch resnet18 --stem cifar --image-size 16]      # CPU defaults
    python benchmarks/b6_chunk_memory.py --arch resnet50 --stem imagenet --image-size 224 \\
        --batches 64,128,256,512 --chunk 64                  # on a GPU

Three measurements per batch size B (2B views), each in a fresh process so that one
point's allocations cannot hide another's:

* `loss`: the NT-Xent's own memory: projections (2B x 128) -> loss -> their gradient,
  what the full-batch loss of a chunked step costs on top of one chunk;
* `step`: one training step of the encoder and head as `SimCLRModule` takes it
  (both views in one pass, loss, backward);
* `chunked`: the same step with gradient caching (`simclr.losses.gradcache`), `--chunk`
  views per pass.

Memory is the growth of the peak over the process's memory just before the measured
call: `torch.cuda.max_memory_allocated` on a GPU; on the CPU, where torch keeps no
allocator statistics, the peak resident set (`getrusage` max RSS) over the resident
set before. Writes benchmarks/results/b6_chunk_memory.json and .md.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from typing import Any

from harness.common import (
    BENCH_DIR,
    OUR_PYTHON,
    REPO,
    RESULTS_DIR,
    current_rss_mib,
    log,
    run_worker,
)
from harness.common import write_result as _write_result

NAME = "b6_chunk_memory"


def _worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from omegaconf import OmegaConf

    from simclr.config.schema import EncoderConfig, HeadConfig
    from simclr.losses.gradcache import gradcache_backward
    from simclr.losses.ntxent import nt_xent
    from simclr.models import build_encoder, build_head, feature_dim

    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    views = 2 * args.batch

    def loss_fn(z: torch.Tensor) -> torch.Tensor:
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, 0.5, gather=False)

    if args.part == "loss":
        z = torch.randn(views, 128, device=device)
        run = lambda: torch.autograd.grad(loss_fn(z.requires_grad_()), z)  # noqa: E731
    else:
        enc_cfg = OmegaConf.structured(EncoderConfig(arch=args.arch, stem=args.stem))
        encoder = build_encoder(enc_cfg)
        head = build_head(OmegaConf.structured(HeadConfig()), feature_dim(encoder))
        model = torch.nn.Sequential(encoder, head).to(device).train()
        images = torch.randn(views, 3, args.image_size, args.image_size, device=device)
        for p in model.parameters():  # gradients allocated before measuring, as after step 1
            p.grad = torch.zeros_like(p)

        def run() -> Any:
            if args.part == "step":
                loss_fn(model(images)).backward()
            else:
                gradcache_backward(model, images, loss_fn, args.chunk, norm_modules=[model])

    gc.collect()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
    else:
        before = current_rss_mib()
    run()
    if cuda:
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"part": args.part, "batch": args.batch, "peak_mib": round(peak - before, 1)}


def _table(rows: list[dict[str, Any]], chunk: int, label: str) -> str:
    lines = [
        f"B6: peak memory (MiB) of one step vs batch size, `loss.chunk_size={chunk}` ({label})",
        "",
        "| batch (images) | views | NT-Xent alone | step, one pass | step, chunks of "
        f"{chunk} | chunked / one pass |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        measured = all(isinstance(r.get(k), float) for k in ("step", "chunked"))
        ratio = f"{r['chunked'] / r['step']:.2f}" if measured else "—"
        lines.append(
            f"| {r['batch']} | {2 * r['batch']} | {r.get('loss', '—')} | {r.get('step', '—')} "
            f"| {r.get('chunked', '—')} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batches", default="8,16,32,64,128")
    p.add_argument("--chunk", type=int, default=16, help="views per pass (loss.chunk_size)")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--stem", default="cifar")
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cuda when available, else cpu")
    p.add_argument("--part", choices=["loss", "step", "chunked"], help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.part:  # a worker: one measurement, one JSON line
        print(json.dumps(_worker(args)), flush=True)
        return
    rows = []
    for batch in sorted(int(b) for b in args.batches.split(",")):
        row: dict[str, Any] = {"batch": batch}
        for part in ("loss", "step", "chunked"):
            log(f"b6 batch {batch} {part}")
            argv: list[Any] = [OUR_PYTHON, BENCH_DIR / "b6_chunk_memory.py", "--part", part]
            argv += ["--batch", batch, "--chunk", args.chunk, "--arch", args.arch]
            argv += ["--stem", args.stem, "--image-size", args.image_size, "--device", args.device]
            # This checkout's simclr, also where another one is installed in the venv.
            result = run_worker(argv, timeout=1800, env={"PYTHONPATH": f"{BENCH_DIR}:{REPO}"})
            row[part] = result.get("peak_mib", result.get("error"))
        rows.append(row)
    from harness.common import machine

    label = machine()["label"]
    settings = {k: v for k, v in vars(args).items() if k not in ("part", "batch")}
    first, last = rows[0], rows[-1]
    summary = []
    if all(isinstance(r.get(k), float) for r in (first, last) for k in ("step", "chunked")):
        growth = lambda k: last[k] / first[k]  # noqa: E731
        summary.append(
            {
                "benchmark": "B6",
                "measure": f"step peak memory growth, batch {first['batch']} -> {last['batch']}: "
                f"chunks of {args.chunk} | one pass",
                "ratio": f"{growth('chunked'):.2f} | {growth('step'):.2f}",
                "goal": "chunked ≈ flat (NT-Xent's own memory aside)",
                "context": f"batch {last['batch']}: one pass {last['step']} MiB, chunked "
                f"{last['chunked']} MiB, NT-Xent alone {last['loss']} MiB "
                f"({args.arch}, {args.image_size} px)",
            }
        )
    _write_result(
        NAME,
        title="B6 gradient caching: peak memory vs batch size",
        settings=settings,
        rows=rows,
        summary=summary,
        notes=[
            "peak_mib: growth of the peak over the memory before the call (CPU: max RSS; "
            "CUDA: max_memory_allocated); parameter gradients were allocated before.",
        ],
    )
    table = _table(rows, args.chunk, label)
    (RESULTS_DIR / f"{NAME}.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
