"""`simclr-eval`: evaluate a trained encoder (run dir, .ckpt or .safetensors).

    simclr-eval checkpoint=outputs/2026-11-23/10-00-00
    simclr-eval checkpoint=PATH data=folder data.root=DIR eval.fractions=[0.01,0.1,1.0] eval.seeds=10

The encoder, its eval normalisation and (unless `data` is given on the command
line) the evaluation data come from the checkpoint's training config; `eval.*`
comes from this command. The report goes to this command's Hydra output dir; the
feature cache goes to the training run's `features/`, so evaluating the same
checkpoint again skips extraction.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from simclr.config import register_configs
from simclr.config.validate import validate_data, validate_eval
from simclr.errors import ConfigError, SimclrError
from simclr.pretrain import CONF_DIR, report_user_error, run_directory

DATA_KEYS = ("data", "experiment")


def data_overridden(overrides: Sequence[str]) -> bool:
    """Whether the command line chose the data (`data=...`, `data.root=...`, a preset)."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if any(key == k or key.startswith(f"{k}.") for k in DATA_KEYS):
            return True
    return False


def effective_config(
    cli_cfg: DictConfig, trained: dict[str, Any], use_cli_data: bool
) -> DictConfig:
    """The training config with this command's `eval`, `seed` and, if asked, `data`."""
    from simclr.hub.weights import merged_config

    cfg = merged_config(trained)
    cfg.eval = cli_cfg.eval
    cfg.seed = cli_cfg.seed
    cfg.checkpoint = cli_cfg.checkpoint
    if use_cli_data:
        cfg.data = cli_cfg.data
    return cfg  # type: ignore[no-any-return]


def _pretrain_seconds(run_dir: Path | None) -> float | None:
    """The training run's pretraining wall time, when its directory records it."""
    if run_dir is None:
        return None
    try:
        if (run_dir / "report.json").is_file():
            value = json.loads((run_dir / "report.json").read_text())["timing"]["pretrain_seconds"]
            return None if value is None else float(value)
        if (run_dir / "pretrain_done").is_file():
            return float((run_dir / "pretrain_done").read_text().strip())
    except (OSError, KeyError, TypeError, ValueError):
        pass
    return None


def earlier_data(run_dir: Path | None) -> tuple[dict[str, Any], Path] | None:
    """What the training run's own report saw of its evaluation data, if it has one."""
    report = run_dir / "report.json" if run_dir else None
    if report is None or not report.is_file():
        return None
    try:
        data = json.loads(report.read_text())["data"]
        return (data, report) if isinstance(data, dict) else None
    except (OSError, KeyError, TypeError, ValueError):
        return None


def run_eval(cfg: DictConfig, overrides: Sequence[str], out_dir: Path) -> Path:
    """Load `cfg.checkpoint`, evaluate it as `cfg.eval` says, write the report into out_dir."""
    from simclr.evaluate.pipeline import eval_data_config, evaluate_encoder
    from simclr.hub.classifier import load_encoder_with_head
    from simclr.hub.sources import run_dir_of

    if not cfg.checkpoint:
        raise ConfigError(
            "checkpoint is not set: pass checkpoint=PATH (a simclr-pretrain run directory, "
            "a .ckpt or a .safetensors file)"
        )
    validate_eval(cfg.eval)
    encoder = load_encoder_with_head(str(cfg.checkpoint))  # the head: eval.finetune.from_head_layer
    meta: dict[str, Any] = getattr(encoder, "meta", {})
    source = Path(meta["source"])
    run_cfg = effective_config(cfg, meta["config"], data_overridden(overrides))
    validate_data(eval_data_config(run_cfg), key="eval.data" if cfg.eval.data else "data")
    run_dir = run_dir_of(source)
    cache = run_dir / "features" if run_dir and os.access(run_dir, os.W_OK) else None
    report = evaluate_encoder(
        encoder,
        run_cfg,
        out_dir,
        checkpoint_path=source,
        pretrain_seconds=_pretrain_seconds(run_dir),
        command=" ".join(["simclr-eval", *overrides]),
        cache_dir=cache,
        earlier_data=earlier_data(run_dir),
    )
    OmegaConf.save(run_cfg, out_dir / "eval_config.yaml", resolve=True)
    return report


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> Any:
    overrides = list(HydraConfig.get().overrides.task)
    try:
        report = run_eval(cfg, overrides, run_directory())
    except SimclrError as err:
        report_user_error(err, "simclr-eval")
        if HydraConfig.get().mode == hydra.types.RunMode.MULTIRUN:
            return None
        sys.exit(2)
    print(f"report: {report}")
    from simclr.evaluate.pipeline import headline_metric

    return headline_metric(report)


def cli() -> None:
    """Console entry point of `simclr-eval`."""
    from simclr.cli import run_app

    register_configs()
    run_app("simclr-eval", _main, CONF_DIR)  # bad overrides: one line, exit 2


if __name__ == "__main__":
    cli()
