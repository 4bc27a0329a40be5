"""Step 3 of an evaluation: the report (its rows, setup and timing) and its files."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

import simclr.evaluation.plots as plots
import simclr.evaluation.report as report
from simclr.config.validate import headline_choice
from simclr.evaluation.collect import Collected
from simclr.evaluation.protocol import ProtocolResult
from simclr.evaluation.report_schema import SCHEMA_VERSION, DataInfo, Report, Timing

log = logging.getLogger(__name__)


def describe_encoder(cfg: DictConfig) -> str:
    """The encoder of `cfg` in a few words, e.g. `resnet18 (cifar stem)`."""
    enc = cfg.encoder
    if enc.arch == "timm":
        return f"timm {enc.timm_name}"
    return f"{enc.arch} ({enc.stem} stem)"


def build_report(
    cfg: DictConfig,
    collected: Collected,
    outcome: ProtocolResult,
    timing: Timing,
    *,
    checkpoint_path: Path | None = None,
    command: str | None = None,
) -> Report:
    """The report of one evaluation: the protocol's rows, the data, the setup."""
    ev, splits, simclr = cfg.eval, collected.splits, collected.features["simclr"]
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    return Report(
        schema_version=SCHEMA_VERSION,
        created=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command or report.command_line(),
        config_hash=hashlib.sha256(OmegaConf.to_yaml(cfg, resolve=True).encode()).hexdigest(),
        preset=str(cfg.get("preset", "none")),
        checkpoint=str(checkpoint_path) if checkpoint_path else None,
        encoder=describe_encoder(cfg),
        feature_dim=simclr.dim,
        data=DataInfo(
            name=str(collected.data_cfg.name),
            source=splits.source or str(collected.data_cfg.name),
            n_train=len(simclr.train_y),
            n_test=len(simclr.test_y),
            classes=[str(c) for c in splits.classes],
        ),
        versions=report.versions(),
        machine=report.machine(),
        timing=timing,
        headline=report.headline(outcome.results, *headline_choice(ev)),
        results=outcome.results,
        runs=outcome.runs,
        notes=outcome.notes,
        config=resolved,  # type: ignore[arg-type]
    )


def write_figures(rep: Report, collected: Collected, method: str, out_dir: Path) -> None:
    """label_efficiency.png (if any row) and embedding.png (SimCLR beside random init)."""
    if rep.results:
        plots.label_efficiency(rep.results, out_dir / "label_efficiency.png")
    features = collected.features
    maps = {k: (f.test_x, f.test_y) for k, f in features.items() if k in ("simclr", "random_init")}
    classes = collected.splits.classes
    names = classes or [str(c) for c in np.unique(features["simclr"].test_y)]
    plots.embedding(maps, names, out_dir / "embedding.png", method)


def write_report(
    rep: Report, collected: Collected, method: str, out_dir: Path, started: float
) -> Path:
    """Figures, then report.json and report.md into `out_dir`; returns report.md's path.

    `rep.timing.eval_seconds` is set to the time since `started` (a
    `time.perf_counter()` reading), figures included.
    """
    write_figures(rep, collected, method, out_dir)
    rep.timing.eval_seconds = time.perf_counter() - started
    report.write_json(rep, out_dir / "report.json")
    report.write_markdown(rep, out_dir / "report.md")
    return out_dir / "report.md"
