"""B4 time to accuracy: the same wall-clock budget for each toolkit, then the same probe.

    python benchmarks/b4_time_to_accuracy.py [--peers] [--budget-s 180]
    BENCH_DATA=DIR python benchmarks/b4_time_to_accuracy.py --image-size 32   # DIR/train + DIR/test

Each toolkit pretrains a ResNet-18 (CIFAR stem) on the train split at the settings its
own documentation gives for CIFAR-like data (ours: the digits preset on digits, the
small_images preset on any other folder; bolts: its CIFAR-10 recipe; lightly: its
SimCLR CIFAR-10 recipe; see the workers' docstrings), each peer also in bf16 through
its own Trainer (ours chooses its precision itself: bf16 where the CPU runs it).
Every toolkit gets the same wall-clock budget and uses it as its own users
would: ours through `trainer.max_time` (it measures its step rate while it runs and
plans warm-up and cosine decay to end at the budget); each peer, which has no such
option, through the epochs its own short calibration run says fit in the budget
(warm-up 1/6 of them where the recipe has one). Lightning's Timer stops any run at
the budget. Then our evaluator scores every encoder the same way: frozen features of the same
images (each toolkit's own normalisation), our linear probe (scikit-learn logistic
regression, C by cross-validation inside the labeled subset) at 1% and 10% of the
labels, the same nested subsets for every encoder, mean over seeds. Random init and
raw pixels are the floors. Last, our default evaluation (`simclr-eval`, every probe,
fraction and seed) runs on our encoder and is timed: evaluation seconds / pretraining
seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from harness.bench_data import digits_folder, labeled_counts
from harness.common import (
    OUR_PYTHON,
    PEER_ARMS,
    command_line,
    fmt,
    log,
    peer_version,
    write_result,
)
from harness.steptimer import MEMORY_SAMPLING_ENV
from harness.workers import fresh_dir, run_ours, run_peer
from omegaconf import OmegaConf

NAME = "b4_time_to_accuracy"
CIFAR10_MEAN = [125.3 / 255, 123.0 / 255, 113.9 / 255]
CIFAR10_STD = [63.0 / 255, 62.1 / 255, 66.7 / 255]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
DIGITS_MEAN = DIGITS_STD = [0.5, 0.5, 0.5]
EVAL_COST_GOAL = "≤ 0.20 after 20 minutes of pretraining (README)"
OURS = ("ours", "ours_cifar_views")  # our arms: the budget through trainer.max_time


def ours_overrides(data: Path, digits: bool, args: argparse.Namespace, views: str) -> list[str]:
    """Our documented presets: `experiment=digits` on the digits files, else `small_images`."""
    preset = ["experiment=digits", "data=folder", f"augment={views}"]
    return [
        *(preset if digits else ["experiment=small_images"]),
        f"data.root={data}",
        f"data.image_size={args.image_size}",
        f"data.batch_size={args.batch}",
        f"data.num_workers={args.workers}",
        "online_probe.enabled=false",
        "eval=none",
        "trainer.enable_progress_bar=false",
        f"seed={args.seed}",
    ]


def _run(
    toolkit: str, name: str, data: Path, digits: bool, args: argparse.Namespace, **how: Any
) -> dict[str, Any]:
    """One pretraining run of `toolkit` for the budget (ours: `trainer.max_time`); for a
    peer, `how` holds max_steps (calibration) or epochs and budget_s, and warmup steps."""
    if toolkit in OURS:
        views = "cifar" if toolkit == "ours_cifar_views" else "digits"
        # The budget as our users give it: the schedule is planned to end there. The
        # preset's max_epochs stays the ceiling, and its warm-up share (10%) applies.
        case = [*ours_overrides(data, digits, args, views), f"trainer.max_time={args.budget_s:g}s"]
        return run_ours("pretrain", case, name=name, warmup=how.get("warmup", 1))
    peer, precision = PEER_ARMS[toolkit]
    return run_peer(
        peer,
        data=data,
        name=name,
        image_size=args.image_size,
        batch=args.batch,
        epochs=how.get("epochs", 1),
        workers=args.workers,
        warmup=how.get("warmup", 1),
        max_steps=how.get("max_steps", -1),
        budget_s=how.get("budget_s"),
        precision=precision,
        save_encoder=peer == "lightly",
    )


def peer_epochs(
    toolkit: str, data: Path, digits: bool, args: argparse.Namespace
) -> tuple[int | None, dict[str, Any]]:
    """The epochs a short calibration run of `toolkit` says fit in the budget."""
    probe = _run(toolkit, f"b4_{toolkit}_cal", data, digits, args, max_steps=6, warmup=2)
    if "error" in probe:
        return None, probe
    # A step inside an epoch: the first steps of a run pay for starting the workers.
    steady = probe.get("steady_step_s")
    speed = args.batch / steady if steady else probe["images_per_s"]
    epoch_images = (labeled_counts(data)["train"] // args.batch) * args.batch
    epochs = max(1, round(args.budget_s * speed / epoch_images))
    log(f"{toolkit}: calibrated {speed:.1f} img/s -> {epochs} epochs in the budget")
    return epochs, {"calibration_images_per_s": speed}


def train_all(
    toolkits: list[str], data: Path, digits: bool, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Pretrain each toolkit for the budget, each planning its schedule its own way."""
    runs = {}
    for t in toolkits:
        if t in OURS:
            runs[t] = _run(t, f"b4_{t}", data, digits, args)
            continue
        epochs, calibration = peer_epochs(t, data, digits, args)
        if epochs is None:
            runs[t] = calibration
            continue
        run = _run(t, f"b4_{t}", data, digits, args, epochs=epochs, budget_s=args.budget_s)
        runs[t] = {**run, **calibration, "planned_epochs": epochs}
    return runs


def load_trained(toolkit: str, run: dict[str, Any]) -> torch.nn.Module:
    """The pretrained encoder: our hub loader for ours and bolts, torchvision for lightly."""
    if PEER_ARMS.get(toolkit, (toolkit,))[0] == "lightly":
        from simclr.models.encoder import build_resnet

        encoder = build_resnet("resnet18", "cifar")
        encoder.load_state_dict(torch.load(run["encoder"], map_location="cpu", weights_only=True))
        return encoder.eval()
    from simclr.hub import load_encoder

    return load_encoder(run["checkpoint"], arch="resnet18", stem="cifar")


def eval_transform(mean: list[float], std: list[float], size: int) -> Any:
    from simclr.config.schema import AugmentConfig
    from simclr.data.views import build_eval_transform

    return build_eval_transform(AugmentConfig(mean=mean, std=std), size)


def probe_all(
    encoders: dict[str, tuple[torch.nn.Module, Any]], data: Path, args: argparse.Namespace
) -> list[Any]:
    """Features of every encoder, then the same linear probe on the same label subsets."""
    from simclr.config.schema import EvalConfig
    from simclr.data.folder import folder_splits
    from simclr.evaluation.features import FeatureSet, extract
    from simclr.evaluation.protocol import run_feature_probes, summarise

    splits = folder_splits(str(data))
    features = {}
    for name, (model, transform) in encoders.items():
        log(f"features: {name}")
        got = [
            extract(model, split, transform, batch_size=256)
            for split in (splits.train, splits.test)
            if split is not None
        ]
        features[name] = FeatureSet(got[0][0], got[0][1], got[1][0], got[1][1])
    fractions = [float(f) for f in args.fractions.split(",")]
    ev = OmegaConf.structured(
        EvalConfig(evaluators=["linear"], fractions=fractions, seeds=args.seeds)
    )
    log("linear probes")
    return summarise(run_feature_probes(features, ev, ["linear"]))


def eval_cost(run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Wall seconds of our default evaluation of our encoder (simclr-eval, eval=default)."""
    if "error" in run:
        return {"error": run["error"]}
    out = fresh_dir("b4_ours_eval")  # removed, so simclr-eval finds it new
    command = [str(Path(OUR_PYTHON).parent / "simclr-eval"), f"checkpoint={run['checkpoint']}",
               "eval=default", f"hydra.run.dir={out}"]  # fmt: skip
    log("ours default evaluation: " + " ".join(command[1:]))
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": f"simclr-eval exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return {"eval_seconds": seconds, "eval_over_pretrain": seconds / run["train_seconds"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--peers", action="store_true")
    p.add_argument("--budget-s", type=float, default=float(os.environ.get("BENCH_B4_BUDGET", 180)))
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--fractions", default="0.01,0.1")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    os.environ[MEMORY_SAMPLING_ENV] = "off"  # B4 reports accuracy, not memory: inherited by workers
    data = Path(os.environ["BENCH_DATA"]).resolve() if os.environ.get("BENCH_DATA") else None
    digits = data is None
    data = data or digits_folder()
    toolkits = ["ours", *(["ours_cifar_views"] if args.peers and digits else []),
                *(PEER_ARMS if args.peers else [])]  # fmt: skip
    runs = train_all(toolkits, data, digits, args)
    cost = eval_cost(runs["ours"], args)

    from simclr.evaluation.features import RawPixels
    from simclr.models.encoder import build_resnet

    norms = {"ours": (DIGITS_MEAN, DIGITS_STD) if digits else (CIFAR10_MEAN, CIFAR10_STD),
             "bolts": (CIFAR10_MEAN, CIFAR10_STD), "lightly": (IMAGENET_MEAN, IMAGENET_STD)}  # fmt: skip
    norms["ours_cifar_views"] = norms["ours"]
    norms |= {arm: norms[peer] for arm, (peer, _) in PEER_ARMS.items()}
    encoders = {
        t: (load_trained(t, run), eval_transform(*norms[t], args.image_size))
        for t, run in runs.items()
        if "error" not in run
    }
    torch.manual_seed(0)
    floor_transform = eval_transform(*norms["ours"], args.image_size)
    encoders["random_init"] = (build_resnet("resnet18", "cifar"), floor_transform)
    encoders["raw_pixels"] = (RawPixels(args.image_size), floor_transform)
    summaries = probe_all(encoders, data, args)
    write(runs, summaries, cost, data, digits, args)


def write(
    runs: dict, summaries: list[Any], cost: dict[str, Any], data: Path, digits: bool, args: Any
) -> None:
    acc = {(s.representation, s.fraction): s for s in summaries}
    fractions = sorted({s.fraction for s in summaries})
    rows = [
        {
            "encoder": s.representation,
            "fraction": s.fraction,
            "n_labels": s.n_labels,
            "accuracy_mean": s.mean,
            "accuracy_std": s.std,
            "seeds": s.n_seeds,
        }
        for s in summaries
    ]
    train = {
        t: {k: r.get(k) for k in ("planned_epochs", "epochs", "steps", "train_seconds",
                                  "images_per_s", "calibration_images_per_s", "error")}
        for t, r in runs.items()
    }  # fmt: skip
    ratios, summary = {}, []

    def cell(name: str, f: float) -> str:
        s = acc.get((name, f))
        return f"{100 * s.mean:.1f}±{100 * s.std:.1f}%" if s else "—"

    floors = ", ".join(
        f"{n} {cell(n, f)}" for n in ("random_init", "raw_pixels") for f in fractions[-1:]
    )
    for t in runs:
        if t == "ours":
            continue
        parts, context = [], []
        for f in fractions:
            mine, theirs = acc.get(("ours", f)), acc.get((t, f))
            if mine and theirs:
                ratios[f"ours_over_{t}_accuracy_at_{f:g}"] = mine.mean / theirs.mean
                parts.append(fmt(mine.mean / theirs.mean))
            context.append(f"{f:.0%}: ours {cell('ours', f)} vs {cell(t, f)}")
        summary.append(
            {
                "benchmark": "B4",
                "measure": f"linear-probe accuracy after {args.budget_s:.0f} s of pretraining, "
                f"ours / {t}, at {' | '.join(f'{f:.0%}' for f in fractions)} labels",
                "ratio": " | ".join(parts) if parts else "—",
                "goal": "≥ 1.0",
                "context": "; ".join(context)
                + (f" ({runs[t]['error']})" if "error" in runs[t] else ""),
            }
        )
    summary.insert(
        0,
        {
            "benchmark": "B4",
            "measure": f"ours, linear-probe accuracy after {args.budget_s:.0f} s (1 | 10% labels)"
            if len(fractions) == 2
            else f"ours, linear-probe accuracy after {args.budget_s:.0f} s",
            "ratio": " | ".join(cell("ours", f) for f in fractions),
            "goal": "above the floors",
            "context": f"floors at {fractions[-1]:.0%}: {floors}; {train['ours'].get('epochs')} "
            f"epochs in {fmt(train['ours'].get('train_seconds'), 0)} s",
        },
    )
    summary.append(
        {
            "benchmark": "B4",
            "measure": "our default evaluation seconds / pretraining seconds (simclr-eval: "
            "linear, kNN, MLP at 1, 10, 100% labels, every seed, both floors)",
            "ratio": fmt(cost.get("eval_over_pretrain")),
            # The goal is set at a 20-minute pretraining; evaluation's cost is fixed by the
            # data, so a shorter budget reads higher.
            "goal": EVAL_COST_GOAL,
            "context": cost.get("error")
            or f"{fmt(cost['eval_seconds'], 0)} s of evaluation after "
            f"{fmt(train['ours'].get('train_seconds'), 0)} s of pretraining",
        }
    )
    name = NAME if digits else f"{NAME}_folder"  # a folder's result keeps digits' result
    command = command_line() if digits else f"BENCH_DATA={data} {command_line()}"
    write_result(
        name if args.peers else f"{name}_ours",  # ours-only keeps the side-by-side file
        command=command,
        title="B4 time to accuracy: same wall-clock budget, same linear probe",
        settings={
            **vars(args),
            "data": "digits (sklearn, written as PNG files)" if digits else str(data),
        },
        figures={"training": train, "evaluation": cost},
        rows=rows,
        ratios=ratios,
        summary=summary,
        notes=[
            "Accuracy: mean ± std over seeds of our linear probe on frozen features, test split.",
            *[f"{t}: {r['error']}" for t, r in runs.items() if "error" in r],
        ],
        extra_versions={
            "lightning-bolts (bolts env)": peer_version("bolts", "lightning-bolts"),
            "lightly (lightly env)": peer_version("lightly", "lightly"),
        },
    )


if __name__ == "__main__":
    main()
