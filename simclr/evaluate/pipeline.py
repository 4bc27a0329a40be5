"""`evaluate_encoder`: features, probes, baselines, report and figures for one encoder."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from simclr.errors import DataError, OutputError
from simclr.evaluate import plots, report
from simclr.evaluate.curves import draw_training_curves
from simclr.evaluate.features import (
    FeatureSet,
    RawPixels,
    cached_features,
    checkpoint_identity,
    weights_identity,
)
from simclr.evaluate.protocol import run_feature_probes, run_finetune, summarise
from simclr.evaluate.report_schema import SCHEMA_VERSION, DataInfo, Report, Timing, load_report

log = logging.getLogger(__name__)


def eval_data_config(cfg: DictConfig) -> Any:
    """`cfg.eval.data` when set, else the pretraining data `cfg.data`."""
    return cfg.eval.data if cfg.eval.get("data") is not None else cfg.data


def random_init_encoder(cfg: DictConfig) -> nn.Module:
    """The encoder architecture of `cfg`, initialised from `eval.random_init_seed`."""
    from simclr.models import build_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.eval.random_init_seed))
        return build_encoder(cfg.encoder)


def _representations(
    encoder: nn.Module, cfg: DictConfig, checkpoint_path: Path | None
) -> dict[str, tuple[nn.Module, str]]:
    """name -> (model mapping eval images to features, identity for the cache key)."""
    ev = cfg.eval
    simclr_id = (
        checkpoint_identity(checkpoint_path) if checkpoint_path else weights_identity(encoder)
    )
    reps = {"simclr": (encoder, simclr_id)}
    if "random_init" in ev.baselines:
        random = random_init_encoder(cfg)
        reps["random_init"] = (random, f"random_init:{weights_identity(random)}")
    if "raw_pixels" in ev.baselines:
        reps["raw_pixels"] = (
            RawPixels(int(ev.raw_pixels_size)),
            f"raw_pixels:{ev.raw_pixels_size}",
        )
    return reps


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
    from simclr.augment import build_eval_transform
    from simclr.data import build_datasets

    started = time.perf_counter()
    ev, data_cfg = cfg.eval, eval_data_config(cfg)
    splits = build_datasets(data_cfg)
    if splits.train is None or splits.test is None:
        raise DataError(
            f"{splits.source}: evaluation needs labeled train and test splits; "
            "pass labeled data with +eval/data=... (see conf/eval/data/)"
        )
    if earlier_data is not None:
        seen, report_path = earlier_data
        if seen.get("source") == splits.source and seen.get("classes") != list(splits.classes):
            raise DataError(
                f"{splits.source}: classes {list(splits.classes)} differ from "
                f"{seen.get('classes')} in {report_path} for the same data; "
                "did the files under data.root change?"
            )
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out_dir}: cannot create the report directory: {err}") from None
    image_size = int(data_cfg.image_size)
    transform = build_eval_transform(cfg.augment, image_size)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    reps = _representations(encoder, cfg, checkpoint_path)
    features: dict[str, FeatureSet] = {}
    for name, (model, model_id) in reps.items():
        home = next(model.parameters(), torch.empty(0)).device
        features[name] = cached_features(
            model,
            model_id,
            name,
            splits,
            data_cfg,
            transform,
            cache_dir or out_dir / "features",
            batch_size=int(ev.batch_size),
            device=device,
        )
        model.to(home)  # extraction may have moved it to the GPU
    features_seconds = time.perf_counter() - started

    feature_evals = [e for e in ev.evaluators if e != "finetune"]
    results = run_feature_probes(features, ev, feature_evals) if feature_evals else []
    notes: list[str] = []
    if "finetune" in ev.evaluators:
        tuned: dict[str, tuple[nn.Module, bool]] = {"simclr": (encoder, True)}
        if "supervised" in ev.baselines:
            tuned["supervised"] = (random_init_encoder(cfg), False)
        ys = features["simclr"]
        workers = int(getattr(data_cfg, "num_workers", 0))
        results += run_finetune(
            tuned, splits, ys.train_y, ys.test_y, ev, cfg.augment, image_size, transform, workers
        )
    elif "supervised" in ev.baselines:
        notes.append("supervised baseline skipped: it needs the finetune evaluator")
    probes_seconds = time.perf_counter() - started - features_seconds

    summaries = summarise(results)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    rep = Report(
        schema_version=SCHEMA_VERSION,
        created=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command or report.command_line(),
        config_hash=hashlib.sha256(OmegaConf.to_yaml(cfg, resolve=True).encode()).hexdigest(),
        preset=str(cfg.get("preset", "none")),
        checkpoint=str(checkpoint_path) if checkpoint_path else None,
        encoder=_describe_encoder(cfg),
        feature_dim=features["simclr"].dim,
        data=DataInfo(
            name=str(data_cfg.name),
            source=splits.source or str(data_cfg.name),
            n_train=len(features["simclr"].train_y),
            n_test=len(features["simclr"].test_y),
            classes=[str(c) for c in splits.classes],
        ),
        versions=report.versions(),
        machine=report.machine(),
        timing=Timing(
            pretrain_seconds, features_seconds, probes_seconds, time.perf_counter() - started
        ),
        headline=report.headline(
            summaries, str(ev.headline_evaluator), float(ev.headline_fraction)
        ),
        results=report.rows(summaries),
        runs=report.runs(results),
        notes=notes,
        config=resolved,  # type: ignore[arg-type]
    )
    _write_figures(rep, features, splits.classes, str(ev.embedding_method), out_dir)
    rep.timing.eval_seconds = time.perf_counter() - started
    report.write_json(rep, out_dir / "report.json")
    report.write_markdown(rep, out_dir / "report.md")
    log.info("report: %s", out_dir / "report.md")
    return out_dir / "report.md"


def _describe_encoder(cfg: DictConfig) -> str:
    enc = cfg.encoder
    if enc.arch == "timm":
        return f"timm {enc.timm_name}"
    return f"{enc.arch} ({enc.stem} stem)"


def _write_figures(
    rep: Report, features: dict[str, FeatureSet], classes: list[str], method: str, out_dir: Path
) -> None:
    if rep.results:
        plots.label_efficiency(rep.results, out_dir / "label_efficiency.png")
    maps = {k: (f.test_x, f.test_y) for k, f in features.items() if k in ("simclr", "random_init")}
    names = classes or [str(c) for c in np.unique(features["simclr"].test_y)]
    plots.embedding(maps, names, out_dir / "embedding.png", method)
    draw_training_curves(out_dir, rep.checkpoint)  # training_curves.png, from logs/metrics.csv


def headline_metric(report_md: Path) -> float | None:
    """The headline accuracy of the report next to `report_md` (None if not evaluated);
    the value a Hydra sweeper (e.g. Optuna) maximises."""
    return load_report(Path(report_md).with_name("report.json")).headline.mean
