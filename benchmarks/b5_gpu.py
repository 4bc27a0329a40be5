"""B5 (GPU): ResNet-50, 224 px, bf16-mixed, channels_last, batch 256: end to end vs model only.

    python benchmarks/b5_gpu.py [--compile] [--images 8192] [--steps 60]
    python benchmarks/b5_gpu.py --quick --device cpu --arch timm:test_resnet \
        --precision 32-true --compile --compile-backend aot_eager   # the script on a CPU

End to end: Lightning's Trainer as `simclr.training.trainer.build_trainer` assembles it, our
SimCLRDataModule on a folder of generated ImageNet-sized JPEGs (about 500 x 375),
`augment.backend=gpu`: loader workers (cores - 1) decode, random-resized-crop and
flip to uint8; kornia applies colour jitter, grayscale and blur on the GPU; then
forward, NT-Xent, backward, LARS step. Model only: the same module and optimizer on
views already on the GPU. Loader only: the DataLoader alone (CPU side). Also end to
end with `augment.backend=cpu` (the whole view pipeline in the workers) for contrast.

Compiled arms (`--compile`): `encoder.compile=true`, the step's forward (encoder, head,
NT-Xent) compiled as `SimCLRModule.compile_step` does (simclr/config/step.py); on CUDA
`end_to_end_compiled` is the default path (compile, views and decode all `auto`). The
first step's time (compiling included) is reported apart (`first_step_s`,
`compile_seconds`). With GPU views on CUDA the folder's JPEGs are decoded by nvJPEG too
(`augment.decode=auto`).

Rates are given in encoder images/s ("views": two per source image, what a ResNet-50
training benchmark counts) and in source images/s. Results in results/b5_gpu.json,
rewritten after every measurement so that a run cut short still leaves figures.
"""

from __future__ import annotations

import argparse
import os
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import torch
from harness.common import WORK_DIR, fmt, log, write_result
from harness.steptimer import StepTimer
from PIL import Image

NAME = "b5_gpu"
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def _write_jpeg(args: tuple[Path, int]) -> None:
    path, seed = args
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(400, 600)), int(rng.integers(300, 450))
    coarse = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    field = np.asarray(coarse.resize((w, h), Image.BICUBIC), np.int16)
    noise = rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
    Image.fromarray(np.clip(field + noise, 0, 255).astype(np.uint8)).save(path, quality=90)


def jpeg_folder(count: int, workers: int) -> Path:
    """A flat folder of `count` photo-like JPEGs of ImageNet's typical size, made once."""
    root = WORK_DIR / f"b5_jpeg_{count}"
    if (root / ".complete").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with Pool(workers) as pool:
        pool.map(_write_jpeg, [(root / f"{i:06d}.jpg", i) for i in range(count)], chunksize=64)
    (root / ".complete").write_text(f"{count}\n")
    return root


def compose(args: argparse.Namespace, root: Path, backend: str, compile_: bool) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from simclr.config import register_configs

    kind, _, timm_name = args.arch.partition(":")  # resnet50, or timm:<name>
    encoder = [f"encoder={kind}", *([f"encoder.timm_name={timm_name}"] if timm_name else [])]
    overrides = [
        "experiment=none", "data=folder", f"data.root={root}", f"data.image_size={args.size}",
        f"data.batch_size={args.batch}", f"data.num_workers={args.workers}", *encoder,
        "encoder.channels_last=true", f"encoder.compile={'true' if compile_ else 'false'}",
        "augment=imagenet", f"augment.backend={backend}", "eval=none", "trainer.logger=none",
        f"trainer.precision={args.precision}", "online_probe.enabled=false",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}", "trainer.devices=1",
        "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def model_only(cfg: Any, args: argparse.Namespace, uint8_views: bool) -> dict[str, Any]:
    """Training steps on views already on the device (uint8 crops: GPU views included)."""
    from simclr.training.module import SimCLRModule
    from simclr.training.optim import build_optimizer

    torch.manual_seed(0)
    module = SimCLRModule(cfg).to(args.device).train()
    module.compile_backend = args.compile_backend
    if module.step_choice.compile:
        module.compile_step()  # what fit does (on_fit_start); compiling happens in step 0
    model = torch.nn.ModuleDict({"encoder": module.encoder, "head": module.head})
    optimizer = build_optimizer(model, cfg.optim, args.batch)
    shape = (args.batch, 3, args.size, args.size)
    if uint8_views:
        views = [torch.randint(0, 256, shape, dtype=torch.uint8, device=args.device)] * 2
    else:
        views = [torch.randn(shape, device=args.device) for _ in range(2)]
    batch = ((views[0], views[1]), torch.zeros(args.batch, dtype=torch.long, device=args.device))
    bf16 = args.precision.startswith("bf16")

    def step(i: int) -> None:
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=bf16):
            loss = module.training_step(batch, i)["loss"]  # type: ignore[index]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    started = time.perf_counter()
    step(0)
    sync(args.device)
    first = time.perf_counter() - started  # compiling, cuDNN's kernel choice
    for i in range(1, args.warmup):
        step(i)
    sync(args.device)
    started = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync(args.device)
    seconds = time.perf_counter() - started
    return {**rates(args.batch * args.steps / seconds, args.steps), "first_step_s": round(first, 2)}


def loader_only(cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The train DataLoader alone: decode, crop, flip in the workers; no device work."""
    from simclr.data.datamodule import SimCLRDataModule

    loader = SimCLRDataModule(cfg.data, cfg.augment).train_dataloader()
    seen, started = 0, 0.0
    while seen < args.warmup + args.steps:
        for _ in loader:
            seen += 1
            if seen == args.warmup:
                started = time.perf_counter()
            if seen >= args.warmup + args.steps:
                break
    return rates(args.batch * args.steps / (time.perf_counter() - started), args.steps)


def end_to_end(cfg: Any, args: argparse.Namespace, steps: int) -> dict[str, Any]:
    """`trainer.fit` with our DataModule and module, Trainer as simclr.training.trainer builds it."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    from simclr.data.datamodule import SimCLRDataModule
    from simclr.runs.rundir import RunDir
    from simclr.training.module import SimCLRModule
    from simclr.training.trainer import build_trainer

    torch.manual_seed(0)
    module = SimCLRModule(cfg)
    module.compile_backend = args.compile_backend  # fit compiles it (on_fit_start)
    timer = StepTimer(args.batch, args.warmup)
    with_steps = cfg.copy()
    with_steps.trainer.max_steps = args.warmup + steps
    trainer = build_trainer(with_steps, RunDir(WORK_DIR / "b5_run"), [timer])
    # No checkpoint writes at the epoch ends of a 2-epoch benchmark (a real epoch is
    # thousands of steps, where one write does not show).
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, ModelCheckpoint)]
    trainer.fit(module, datamodule=SimCLRDataModule(cfg.data, cfg.augment))
    result = timer.result()
    out = rates(result["images_per_s"], result["measured_steps"])
    out["epoch_boundaries_measured"] = result["epoch_boundaries_measured"]
    out["steady_step_s"] = result["steady_step_s"]
    out["first_step_s"] = result["step_seconds"][0] if result["step_seconds"] else None
    out["compile_seconds"] = module.compile_seconds
    out["step_choice"] = module.step_choice.describe()
    return out


def rates(images_per_s: float, steps: int) -> dict[str, Any]:
    memory = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    return {
        "views_per_s": round(2 * images_per_s, 1),
        "images_per_s": round(images_per_s, 1),
        "measured_steps": steps,
        "peak_gpu_mib": round(memory, 0) if memory else None,
    }


def report(args: argparse.Namespace, rows: dict[str, dict[str, Any]]) -> None:
    e2e, model = rows.get("end_to_end", {}), rows.get("model_only", {})
    ratio = e2e["views_per_s"] / model["views_per_s"] if e2e and model else None
    views = e2e.get("views_per_s")
    write_result(
        NAME,
        title=f"B5 GPU: {args.arch} {args.size} px {args.precision} channels_last, batch "
        f"{args.batch}, end to end vs model only",
        settings=vars(args),
        figures={"end_to_end_over_model_only": ratio, **{k: v for k, v in rows.items()}},
        rows=[{"arm": k, **v} for k, v in rows.items()],
        ratios={"end_to_end_over_model_only": ratio},
        summary=[
            {
                "benchmark": "B5",
                "measure": f"end-to-end / model-only encoder images/s ({args.arch}, "
                f"{args.size} px, {args.precision}, channels_last, batch {args.batch}, GPU views)",
                "ratio": fmt(ratio),
                "goal": "≥ 0.90, and ≥ 5,000 img/s end to end per H100",
                "context": f"{fmt(views, 0)} vs {fmt(model.get('views_per_s'), 0)} encoder "
                f"img/s ({fmt(e2e.get('images_per_s'), 0)} source img/s)",
            }
        ],
        notes=[
            "views_per_s counts encoder inputs (two views per source image); "
            "images_per_s counts source images.",
            "JPEGs are generated (smooth colour fields plus noise, ~500x375, quality 90).",
        ],
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--images", type=int, default=8192)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    p.add_argument("--compile-backend", default="inductor", help="aot_eager: a CPU dry run")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to test the script")
    args = p.parse_args()
    if args.quick:  # tiny sizes where not given
        quick = {"arch": "resnet18", "size": 32, "batch": 8, "images": 64, "steps": 3}
        quick |= {"warmup": 2, "workers": 1}
        for name, value in quick.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    torch.backends.cudnn.benchmark = True
    root = jpeg_folder(args.images, max(1, args.workers))
    rows: dict[str, dict[str, Any]] = {}
    # The headline arms first: a session cut short keeps them.
    arms = [("loader_only", "gpu", False), ("model_only", "gpu", False)]
    arms += [("end_to_end", "gpu", False), ("end_to_end_cpu_views", "cpu", False)]
    if args.compile:
        arms += [("model_only_compiled", "gpu", True), ("end_to_end_compiled", "gpu", True)]
    arms += [("model_only_gpu_views", "gpu", False)]
    for arm, backend, compiled in arms:
        cfg = compose(args, root, backend, compiled)
        log(f"B5 {arm} ...")
        if arm == "loader_only":
            rows[arm] = loader_only(cfg, args)
        elif arm.startswith("model_only"):
            rows[arm] = model_only(cfg, args, uint8_views=arm == "model_only_gpu_views")
        else:
            # CPU views are slow by design: fewer steps, still after the same warm-up.
            rows[arm] = end_to_end(
                cfg, args, args.steps if backend == "gpu" else min(10, args.steps)
            )
        log(f"B5 {arm}: {rows[arm]}")
        report(args, rows)


if __name__ == "__main__":
    main()
