"""`evaluate_encoder`: features, probes, baselines, report and figures for one encoder.

Three steps: collect the features (:mod:`simclr.evaluation.collect`), run the
protocol on them (:mod:`simclr.evaluation.protocol`), then assemble the report (its
rows, setup and timing) and write its files, here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from torch import nn

import simclr.evaluation.plots as plots
import simclr.evaluation.report as report
from simclr.config.schema import RunConfig
from simclr.config.validate import headline_choice
from simclr.evaluation.collect import Collected, collect_features
from simclr.evaluation.plots import draw_training_curves
from simclr.evaluation.protocol import ProtocolResult, run_protocol
from simclr.evaluation.report_schema import (
    SCHEMA_VERSION,
    DataInfo,
    Hardware,
    Report,
    Timing,
    Training,
    as_training,
    load_report,
)
from simclr.evaluation.wording import class_counts
from simclr.runs.rundir import RunDir

log = logging.getLogger(__name__)


def describe_encoder(cfg: RunConfig) -> str:
    """The encoder of `cfg` in a few words, e.g. `resnet18 (cifar stem)`."""
    enc = cfg.encoder
    if enc.arch == "timm":
        return f"timm {enc.timm_name}"
    return f"{enc.arch} ({enc.stem} stem)"


def build_report(
    cfg: RunConfig,
    collected: Collected,
    outcome: ProtocolResult,
    timing: Timing,
    *,
    checkpoint_path: Path | None = None,
    command: str | None = None,
    training: Training | None = None,
) -> Report:
    """The report of one evaluation: the protocol's rows, the data, the setup.

    `training` describes the pretraining that produced the encoder, when this run did it.
    """
    ev, splits, simclr = cfg.eval, collected.splits, collected.features["simclr"]
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(resolved, dict)
    return Report(
        schema_version=SCHEMA_VERSION,
        created=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command or report.command_line(),
        config_hash=hashlib.sha256(OmegaConf.to_yaml(cfg, resolve=True).encode()).hexdigest(),
        preset=cfg.preset,
        checkpoint=str(checkpoint_path) if checkpoint_path else None,
        encoder=describe_encoder(cfg),
        feature_dim=simclr.dim,
        data=DataInfo(
            name=str(collected.data_cfg.name),
            source=splits.source or str(collected.data_cfg.name),
            n_train=len(simclr.train_y),
            n_test=len(simclr.test_y),
            classes=[str(c) for c in splits.classes],
            train_counts=class_counts(simclr.train_y, len(splits.classes)),
            test_counts=class_counts(simclr.test_y, len(splits.classes)),
        ),
        versions=report.versions(),
        machine=report.machine(),
        timing=timing,
        training=training,
        features_hardware=(
            Hardware(**dataclasses.asdict(collected.hardware)) if collected.hardware else None
        ),
        headline=report.headline(outcome.results, *headline_choice(ev)),
        results=outcome.results,
        runs=outcome.runs,
        notes=outcome.notes,
        config=resolved,  # type: ignore[arg-type]
    )


def write_figures(rep: Report, collected: Collected, method: str, out_dir: Path) -> dict[str, str]:
    """label_efficiency.png (if any row) and embedding.png (SimCLR beside random init);
    returns figure -> file name, for report.md."""
    out = RunDir(out_dir)
    written: dict[str, str] = {}
    if rep.results:
        plots.label_efficiency(rep, out.label_efficiency_png)
        written["label_efficiency"] = out.label_efficiency_png.name
    features = collected.features
    maps = {k: (f.test_x, f.test_y) for k, f in features.items() if k in ("simclr", "random_init")}
    classes = collected.splits.classes
    names = classes or [str(c) for c in np.unique(features["simclr"].test_y)]
    plots.embedding(maps, names, out.embedding_png, method, data=rep.data, split="test")
    written["embedding"] = out.embedding_png.name
    draw_training_curves(out_dir, rep.checkpoint)  # training_curves.png, from logs/metrics.csv
    return written


def write_report(
    rep: Report, collected: Collected, method: str, out_dir: Path, started: float
) -> Path:
    """Figures, then report.json and report.md into `out_dir`; returns report.md's path.

    `rep.timing.eval_seconds` is set to the time since `started` (a
    `time.perf_counter()` reading), figures included.
    """
    figures = write_figures(rep, collected, method, out_dir)
    rep.timing.eval_seconds = time.perf_counter() - started
    out = RunDir(out_dir)
    report.write_json(rep, out.report_json)
    report.write_markdown(rep, out.report_md, figures)
    return out.report_md


def evaluate_encoder(
    encoder: nn.Module,
    cfg: RunConfig,
    out_dir: Path,
    *,
    checkpoint_path: Path | None = None,
    pretrain_seconds: float | None = None,
    command: str | None = None,
    cache_dir: Path | None = None,
    earlier_data: tuple[dict[str, Any], Path] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Run `cfg.eval` on the frozen encoder; write report.md/json and plots into out_dir;
    return the report.md path.

    `earlier_data` is `(report["data"], report.json path)` of an earlier evaluation:
    if it read the same source but saw other classes, the data changed under the
    same root, and the evaluation is refused before any work.

    `training` says how this run pretrained the encoder (`simclr.training.trainer.training_summary`;
    the report's `training`).

    `cfg` is the full run config. Features are cached under `cache_dir` (default
    `out_dir/features`). The encoder is not modified (it is put in eval mode only
    while features are extracted, and fine-tuning works on copies).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    collected = collect_features(
        encoder,
        cfg,
        out_dir,
        checkpoint_path=checkpoint_path,
        cache_dir=cache_dir,
        earlier_data=earlier_data,
    )
    features_seconds = time.perf_counter() - started
    outcome = run_protocol(encoder, cfg, collected)
    probes_seconds = time.perf_counter() - started - features_seconds
    timing = Timing(
        pretrain_seconds, features_seconds, probes_seconds, time.perf_counter() - started
    )
    rep = build_report(
        cfg,
        collected,
        outcome,
        timing,
        checkpoint_path=checkpoint_path,
        command=command,
        training=as_training(training) if training is not None else None,
    )
    return write_report(rep, collected, str(cfg.eval.embedding_method), out_dir, started)


def headline_metric(report_md: Path) -> float | None:
    """The headline accuracy of the report next to `report_md` (None if not evaluated);
    the value a Hydra sweeper (e.g. Optuna) maximises."""
    return load_report(Path(report_md).with_name("report.json")).headline.mean
