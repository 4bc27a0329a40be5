"""Step 1 of an evaluation: the labeled data, checked, and every representation's features.

Everything that can refuse the evaluation (no labeled splits, data changed under
the same root, an unwritable report directory) is checked here, before any
feature is extracted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simclr.config.hardware import HardwareChoice, choose_for
from simclr.config.schema import DataConfig, RunConfig
from simclr.data.splits import DataSplits
from simclr.errors import DataError, OutputError
from simclr.evaluation.features import (
    FeatureSet,
    cached_features,
    data_fingerprint,
    representations,
)
from simclr.models.inference import model_device


@dataclass
class Collected:
    """The evaluation data and the features of every representation on it."""

    data_cfg: DataConfig  # the `data` node the splits were read with
    splits: DataSplits
    transform: Any  # the eval transform the features were extracted under
    features: dict[str, FeatureSet]  # "simclr" first, then the baselines
    # Precision and memory format the SimCLR features were extracted with (simclr/config/hardware.py)
    hardware: HardwareChoice | None = None

    @property
    def image_size(self) -> int:
        return int(self.data_cfg.image_size)


def eval_data_config(cfg: RunConfig) -> Any:
    """`cfg.eval.data` when set, else the pretraining data `cfg.data`."""
    return cfg.eval.data if cfg.eval.data is not None else cfg.data


def check_evaluable(splits: DataSplits) -> None:
    """DataError unless `splits` has labeled train and test splits of two classes or more."""
    if splits.train is None or splits.test is None:
        raise DataError(
            f"{splits.source}: evaluation needs labeled train/ and test/ splits; pass "
            "labeled data with +eval/data=... (see conf/eval/data/), or eval=none to pretrain only"
        )
    if len(splits.classes) < 2:
        raise DataError(
            f"{splits.source}: {len(splits.classes)} class ({', '.join(map(str, splits.classes))}); "
            "evaluation needs two or more, or pass eval=none to pretrain only"
        )


def load_eval_data(
    cfg: RunConfig, earlier_data: tuple[dict[str, Any], Path] | None = None
) -> DataSplits:
    """The labeled splits of the evaluation data; refused if unlabeled or changed.

    `earlier_data` is `(report["data"], report.json path)` of an earlier evaluation:
    if it read the same source but saw other classes, the data changed under the
    same root.
    """
    from simclr.data import build_datasets

    splits = build_datasets(eval_data_config(cfg))
    check_evaluable(splits)
    if earlier_data is not None:
        seen, report_path = earlier_data
        if seen.get("source") == splits.source and seen.get("classes") != list(splits.classes):
            raise DataError(
                f"{splits.source}: classes {list(splits.classes)} differ from "
                f"{seen.get('classes')} in {report_path} for the same data; "
                "did the files under data.root change?"
            )
    return splits


def make_report_dir(out_dir: Path) -> None:
    """Create `out_dir` (and parents), or raise OutputError naming it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out_dir}: cannot create the report directory: {err}") from None


def collect_features(
    encoder: nn.Module,
    cfg: RunConfig,
    out_dir: Path,
    *,
    checkpoint_path: Path | None = None,
    cache_dir: Path | None = None,
    earlier_data: tuple[dict[str, Any], Path] | None = None,
) -> Collected:
    """Load and check the evaluation data, create `out_dir`, then extract (or read
    from `cache_dir`, default `out_dir/features`) the features of the encoder and
    of the baselines `cfg.eval.baselines` names. Each model is left on its device."""
    from simclr.data.views import build_eval_transform

    splits = load_eval_data(cfg, earlier_data)
    make_report_dir(out_dir)
    data_cfg = eval_data_config(cfg)
    transform = build_eval_transform(cfg.augment, int(data_cfg.image_size))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fingerprint = data_fingerprint(splits, data_cfg)  # once: every representation reads it
    features: dict[str, FeatureSet] = {}
    chosen: dict[str, HardwareChoice] = {}
    for name, (model, model_id) in representations(encoder, cfg, checkpoint_path).items():
        home = model_device(model)
        # Training's fast path (bf16 autocast, NHWC) where this device has it.
        chosen[name] = choose_for(cfg, model, device)
        features[name] = cached_features(
            model,
            model_id,
            name,
            splits,
            data_cfg,
            transform,
            cache_dir or out_dir / "features",
            batch_size=cfg.eval.batch_size,
            device=device,
            hardware=chosen[name],
            fingerprint=fingerprint,
        )
        model.to(home)  # extraction may have moved it to the GPU
    return Collected(data_cfg, splits, transform, features, chosen.get("simclr"))
