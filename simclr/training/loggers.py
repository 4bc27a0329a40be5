"""Experiment tracking for a pretraining run: CSV, TensorBoard, MLflow, W&B, or several.

`trainer.logger` names one logger or a list (`trainer.logger=[csv,mlflow]`); by
default each writes under the run directory and nothing leaves the machine:

- `csv`: `<run>/logs/metrics.csv` and `hparams.yaml`; a resumed run keeps its rows.
- `tensorboard`: event files in `<run>/logs/`.
- `mlflow`: a file store in `<run>/mlruns` (`mlflow ui --backend-store-uri <run>/mlruns`),
  experiment `trainer.mlflow_experiment`, or the server/store `trainer.mlflow_tracking_uri`
  names. MLflow 3 keeps file stores in maintenance mode behind MLFLOW_ALLOW_FILE_STORE,
  which is set for them; MLflow's usage telemetry is off unless MLFLOW_DISABLE_TELEMETRY
  says otherwise.
- `wandb`: offline (`<run>/wandb/offline-run-*`, uploaded later by `wandb sync` if the
  user wants) unless `trainer.wandb_mode=online`; project `trainer.wandb_project`.

Lightning logs the resolved run config as hyper-parameters (MLflow params
`config/data/name`, ...) and every training metric. After evaluation,
:func:`log_report` adds report.md, report.json and the figures as artifacts and the
headline accuracy as the metric `eval/headline` (with one `eval/<rep>/<evaluator>/<fraction>`
per result row) to MLflow and W&B; CSV and TensorBoard have the report beside them.
Each tracker's package is an optional extra; a missing one is a one-line error.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pytorch_lightning.loggers import Logger, MLFlowLogger, WandbLogger

from simclr.config.schema import RunConfig
from simclr.config.validate import logger_names
from simclr.errors import ConfigError
from simclr.runs.rundir import RunDir
from simclr.training.resume import ResumableCSVLogger

# logger -> (modules that provide it, the extra that installs one).
PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "mlflow": (("mlflow",), "mlflow"),
    "wandb": (("wandb",), "wandb"),
}
HEADLINE_METRIC = "eval/headline"


def check_packages(names: Sequence[str]) -> None:
    """A one-line ConfigError naming the extra to install for the first logger whose
    package is missing."""
    for name in names:
        modules, extra = PACKAGES.get(name, ((), ""))
        if modules and all(importlib.util.find_spec(m) is None for m in modules):
            raise ConfigError(
                f"trainer.logger={name} needs the {modules[0]} package; install it with "
                f"pip install 'simclr[{extra}]'"
            )


def run_name(run_dir: Path) -> str:
    """`2026-11-23/10-00-00` for outputs/2026-11-23/10-00-00 (a sweep job: `10-00-00/3`)."""
    return "/".join(run_dir.parts[-2:])


def is_file_store(uri: str) -> bool:
    """True for a local directory store (`file:` URI or a bare path)."""
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter


def _csv(cfg: RunConfig, run_dir: Path, resume_step: int) -> Logger:
    return ResumableCSVLogger(
        str(run_dir), keep_before_step=resume_step, name=RunDir(run_dir).logs.name, version=""
    )


def _tensorboard(cfg: RunConfig, run_dir: Path, resume_step: int) -> Logger:
    from pytorch_lightning.loggers import TensorBoardLogger

    return TensorBoardLogger(save_dir=str(run_dir), name=RunDir(run_dir).logs.name, version="")


def _mlflow(cfg: RunConfig, run_dir: Path, resume_step: int) -> Logger:
    uri = cfg.trainer.mlflow_tracking_uri or RunDir(run_dir).mlruns.resolve().as_uri()
    if is_file_store(str(uri)):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return MLFlowLogger(
        experiment_name=cfg.trainer.mlflow_experiment,
        run_name=run_name(run_dir),
        tracking_uri=str(uri),
        tags={"simclr.run_dir": str(run_dir.resolve())},
        log_model=False,  # checkpoints stay in <run>/checkpoints
    )


def _wandb(cfg: RunConfig, run_dir: Path, resume_step: int) -> Logger:
    # `mode` goes to wandb.init; WandbLogger's own `offline=True` would instead set
    # WANDB_MODE for the whole process.
    return WandbLogger(
        project=cfg.trainer.wandb_project,
        name=run_name(run_dir),
        save_dir=str(run_dir),
        log_model=False,
        mode=cfg.trainer.wandb_mode,
    )


BUILDERS: dict[str, Callable[[Any, Path, int], Logger]] = {
    "csv": _csv,
    "tensorboard": _tensorboard,
    "mlflow": _mlflow,
    "wandb": _wandb,
}


def make_loggers(cfg: RunConfig, run: RunDir, resume_step: int = 0) -> list[Logger]:
    """The loggers `cfg.trainer.logger` names, in its order ([] for none).

    A resumed run keeps the CSV rows logged before `resume_step`; MLflow and W&B
    start a new run of the same name.
    """
    names = logger_names(cfg.trainer.logger)
    check_packages(names)
    return [BUILDERS[name](cfg, run.path, resume_step) for name in names]


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The headline and every result row of a report.json as metrics."""
    metrics: dict[str, float] = {}
    headline = report.get("headline") or {}
    if headline.get("mean") is not None:
        metrics[HEADLINE_METRIC] = float(headline["mean"])
    for row in report.get("results") or []:
        key = f"eval/{row['representation']}/{row['evaluator']}/{float(row['fraction']):g}"
        metrics[key] = float(row["mean"])
    return metrics


def report_files(report_md: Path) -> list[Path]:
    """report.md, report.json and the figures beside them."""
    folder = report_md.parent
    candidates = [report_md, folder / "report.json", *sorted(folder.glob("*.png"))]
    return [p for p in candidates if p.is_file()]


def log_report(loggers: Sequence[Logger], report_md: Path, step: int) -> None:
    """Send the evaluation report to the trackers that keep files (MLflow, W&B):
    the files as artifacts, the accuracies as metrics at `step`. Closes the W&B run."""
    report_md = Path(report_md)
    try:
        report = json.loads((report_md.parent / "report.json").read_text())
    except (OSError, ValueError):
        report = {}
    metrics, files = report_metrics(report), report_files(report_md)
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            client, run_id = logger.experiment, logger.run_id
            for path in files:
                client.log_artifact(run_id, str(path), artifact_path="report")
            if metrics:
                logger.log_metrics(metrics, step=step)
        elif isinstance(logger, WandbLogger):
            run = logger.experiment
            for path in files:
                run.save(str(path), base_path=str(report_md.parent), policy="now")
            if metrics:
                logger.log_metrics(metrics, step=step)
            run.finish()
