"""Worker: time our pretraining, end to end or model only; prints one JSON line.

    PYTHONPATH=benchmarks python benchmarks/harness/ours_train.py pretrain --out DIR \\
        [--budget-s S] -- OVERRIDES...
    PYTHONPATH=benchmarks python benchmarks/harness/ours_train.py model --steps N -- OVERRIDES...
    PYTHONPATH=benchmarks python benchmarks/harness/ours_train.py loader --steps N -- OVERRIDES...

`pretrain` runs `simclr.jobs.pretrain.pretrain_run(cfg, run)` itself, the code path of
`simclr-pretrain` (validation, DataModule, module, checkpointing, Trainer), with a
step timer (and, given --budget-s, Lightning's Timer) added to its callbacks.
`model` times the same SimCLRModule and optimizer on two views already in memory:
forward, NT-Xent, backward and optimizer step, nothing else. `loader` times our
train DataLoader alone (decode and two views in its workers), no model.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir

from harness.steptimer import StepTimer, TreeMemorySampler, emit, peak_rss_mib, tree_cpu_seconds

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def compose_config(overrides: list[str]) -> Any:
    """conf/config.yaml with `overrides`, as `simclr-pretrain` composes it."""
    from simclr.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=overrides)


def run_pretrain(cfg: Any, out: Path, warmup: int, budget_s: float | None) -> dict[str, Any]:
    import simclr.training.trainer as training
    from simclr.jobs.pretrain import pretrain_run
    from simclr.runs.rundir import RunDir

    timer = StepTimer(int(cfg.data.batch_size), warmup)
    extra: list[Any] = [timer]
    if budget_s:
        from pytorch_lightning.callbacks import Timer

        extra.append(Timer(duration=timedelta(seconds=budget_s), interval="step"))
    build_callbacks = training.build_callbacks

    def with_timers(*args: Any, **kwargs: Any) -> list[Any]:
        return [*build_callbacks(*args, **kwargs), *extra]

    training.build_callbacks = with_timers  # type: ignore[assignment]
    out.mkdir(parents=True, exist_ok=True)
    with TreeMemorySampler() as memory:
        started = time.perf_counter()
        pretrain_run(cfg, RunDir(out))
        wall = time.perf_counter() - started
    return {
        **timer.result(),
        "wall_seconds": round(wall, 2),
        "peak_tree_pss_mib": round(memory.peak_mib, 1),
        "checkpoint": str(RunDir(out).last_checkpoint),
    }


def run_model_only(cfg: Any, steps: int, warmup: int) -> dict[str, Any]:
    from simclr.training.module import SimCLRModule
    from simclr.training.optim import build_optimizer

    torch.manual_seed(0)
    module = SimCLRModule(cfg).train()
    model = torch.nn.ModuleDict({"encoder": module.encoder, "head": module.head})
    optimizer = build_optimizer(model, cfg.optim, int(cfg.data.batch_size))
    n, side = int(cfg.data.batch_size), int(cfg.data.image_size)
    batch = ((torch.randn(n, 3, side, side), torch.randn(n, 3, side, side)), torch.zeros(n))
    times = []
    cpu_start = 0.0
    with TreeMemorySampler() as memory:
        for step in range(warmup + steps):
            if step == warmup:
                cpu_start = tree_cpu_seconds()
            start = time.perf_counter()
            loss = module.training_step(batch, step)["loss"]  # type: ignore[index]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        cpu = tree_cpu_seconds() - cpu_start
    measured = times[warmup:]
    return {
        "images_per_s": n * len(measured) / sum(measured),
        "cpu_s_per_image": cpu / (n * len(measured)),
        "measured_steps": len(measured),
        "warmup_steps": warmup,
        "step_seconds": [round(t, 4) for t in times],
        "peak_tree_pss_mib": round(memory.peak_mib, 1),
    }


def run_loader(cfg: Any, steps: int, warmup: int) -> dict[str, Any]:
    """Decode + two augmented views through our train DataLoader, no model."""
    from simclr.data.datamodule import SimCLRDataModule

    loader = SimCLRDataModule(cfg.data, cfg.augment).train_dataloader()
    times: list[float] = []
    cpu_start = cpu_end = tree_cpu_seconds()
    with TreeMemorySampler() as memory:
        last = time.perf_counter()
        while len(times) < warmup + steps:
            for _ in loader:  # a new epoch re-enters the loader, as training does
                now = time.perf_counter()
                times.append(now - last)
                last = now
                if len(times) == warmup:
                    cpu_start = tree_cpu_seconds()
                if len(times) >= warmup + steps:
                    cpu_end = tree_cpu_seconds()
                    break
    measured = times[warmup:]
    images = int(cfg.data.batch_size) * len(measured)
    return {
        "images_per_s": images / sum(measured),
        "cpu_s_per_image": (cpu_end - cpu_start) / images,
        "measured_steps": len(measured),
        "warmup_steps": warmup,
        "step_seconds": [round(t, 4) for t in times],
        "peak_tree_pss_mib": round(memory.peak_mib, 1),
    }


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["pretrain", "model", "loader"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/.work/ours_run"))
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="model/loader modes: timed steps")
    parser.add_argument("--budget-s", type=float, default=None, help="stop after S seconds")
    args = parser.parse_args(argv)
    cfg = compose_config(overrides)
    if args.mode == "pretrain":
        result = run_pretrain(cfg, args.out.resolve(), args.warmup_steps, args.budget_s)
    elif args.mode == "model":
        result = run_model_only(cfg, args.steps, args.warmup_steps)
    else:
        result = run_loader(cfg, args.steps, args.warmup_steps)
    result.update(
        toolkit="ours",
        mode=args.mode,
        overrides=overrides,
        torch_threads=torch.get_num_threads(),
        **peak_rss_mib(),
    )
    emit(result)


if __name__ == "__main__":
    main()
