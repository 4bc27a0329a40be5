"""`evaluate_encoder`: features, probes, baselines, report and figures for one encoder.

Three steps, one module each: collect the features (`collect`), run the protocol
on them (`protocol`), assemble and write the report (`assemble`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch import nn

from simclr.evaluation.assemble import build_report, write_report
from simclr.evaluation.collect import collect_features
from simclr.evaluation.protocol import run_protocol
from simclr.evaluation.report_schema import Timing, load_report


def evaluate_encoder(
    encoder: nn.Module,
    cfg: DictConfig,
    out_dir: Path,
    *,
    checkpoint_path: Path | None = None,
    pretrain_seconds: float | None = None,
    command: str | None = None,
    cache_dir: Path | None = None,
    earlier_data: tuple[dict[str, Any], Path] | None = None,
) -> Path:
    """Run `cfg.eval` on the frozen encoder; write report.md/json and plots into out_dir;
    return the report.md path.

    `earlier_data` is `(report["data"], report.json path)` of an earlier evaluation:
    if it read the same source but saw other classes, the data changed under the
    same root, and the evaluation is refused before any work.

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
        cfg, collected, outcome, timing, checkpoint_path=checkpoint_path, command=command
    )
    return write_report(rep, collected, str(cfg.eval.embedding_method), out_dir, started)


def headline_metric(report_md: Path) -> float | None:
    """The headline accuracy of the report next to `report_md` (None if not evaluated);
    the value a Hydra sweeper (e.g. Optuna) maximises."""
    return load_report(Path(report_md).with_name("report.json")).headline.mean
