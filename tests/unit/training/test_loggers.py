"""Experiment trackers: each writes its local store, nothing goes over the network.

MLflow's file store is read back with MLflow's own client; W&B's offline run
directory is checked on disk. A guard refuses every socket connection that is not
local, so a tracker that tried to phone home would fail the test.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from simclr.config import validate_config
from simclr.errors import ConfigError
from simclr.runs.rundir import RunDir
from simclr.training.loggers import HEADLINE_METRIC, log_report, make_loggers, report_metrics

OFFLINE_ENV = {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Tracker settings kept under tmp_path, and a record of refused connections."""
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    # Set by simclr.training.loggers for its file store; recorded as absent so the test undoes it.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    for key in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "wandb-home" / key.lower()))
    refused: list[Any] = []
    real_connect = socket.socket.connect

    def local_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if sock.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
            return real_connect(sock, address)
        refused.append(address)
        raise OSError(f"test guard: no network ({address})")

    monkeypatch.setattr(socket.socket, "connect", local_only)
    return refused


def _cfg(compose_config: Any, *overrides: str) -> Any:
    cfg = compose_config(*overrides)
    validate_config(cfg)
    return cfg


# The parts of a report.json the trackers read.
REPORT = {
    "headline": {"representation": "simclr", "evaluator": "linear", "fraction": 0.1, "mean": 0.75},
    "results": [
        {"representation": "simclr", "evaluator": "linear", "fraction": 0.1, "mean": 0.75},
        {"representation": "raw_pixels", "evaluator": "knn", "fraction": 1.0, "mean": 0.5},
    ],
}


def _fake_report(folder: Path) -> Path:
    """report.md/json and a figure, as the evaluation writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(REPORT))
    (folder / "report.md").write_text("# report\n")
    (folder / "embedding.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder / "report.md"


@pytest.mark.parametrize(
    "override,names",
    [
        ("trainer.logger=csv", ["csv"]),
        ("trainer.logger=none", []),
        ("trainer.logger=[csv,mlflow]", ["csv", "mlflow"]),
        ("trainer.logger=[tensorboard,wandb]", ["tensorboard", "wandb"]),
        ("trainer.logger=[]", []),
    ],
)
def test_logger_is_a_name_or_a_list(compose_config, tmp_path, override, names):
    from simclr.config.validate import logger_names

    cfg = _cfg(compose_config, override)
    assert logger_names(cfg.trainer.logger) == names


@pytest.mark.parametrize(
    "override,named",
    [
        ("trainer.logger=comet", "trainer.logger='comet' is not one of"),
        ("trainer.logger=[csv,none]", "none cannot be combined"),
        ("trainer.logger=[csv,csv]", "names a logger twice"),
        ("trainer.wandb_mode=cloud", "trainer.wandb_mode='cloud'"),
    ],
)
def test_bad_logger_settings_are_one_line(compose_config, override, named):
    with pytest.raises(ConfigError) as err:
        _cfg(compose_config, override)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_missing_package_names_the_extra(compose_config, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    cfg = _cfg(compose_config, "trainer.logger=[csv,wandb]")
    with pytest.raises(ConfigError) as err:
        make_loggers(cfg, RunDir(tmp_path))
    assert str(err.value) == (
        "trainer.logger=wandb needs the wandb package; install it with pip install 'simclr[wandb]'"
    )


def test_csv_and_tensorboard_write_under_the_run_dir(compose_config, tmp_path):
    cfg = _cfg(compose_config, "trainer.logger=[csv,tensorboard]")
    csv, tensorboard = make_loggers(cfg, RunDir(tmp_path))
    for logger in (csv, tensorboard):
        logger.log_hyperparams({"config": {"seed": 0}})
        logger.log_metrics({"train/loss": 1.5}, step=0)
        logger.finalize("success")
    assert "train/loss" in (tmp_path / "logs" / "metrics.csv").read_text()
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_report_metrics_are_the_headline_and_each_row():
    assert report_metrics(REPORT) == {
        HEADLINE_METRIC: 0.75,
        "eval/simclr/linear/0.1": 0.75,
        "eval/raw_pixels/knn/1": 0.5,
    }


def test_mlflow_writes_a_file_store_under_the_run_dir(compose_config, tmp_path, offline):
    MlflowClient = pytest.importorskip("mlflow.tracking").MlflowClient

    run_dir = tmp_path / "2026-11-23" / "10-00-00"
    cfg = _cfg(compose_config, "trainer.logger=mlflow")
    (logger,) = make_loggers(cfg, RunDir(run_dir))
    config = OmegaConf.to_container(cfg, resolve=True)
    logger.log_hyperparams({"config": config})  # what Lightning does at fit start
    logger.log_metrics({"train/loss": 2.0}, step=3)
    logger.finalize("success")
    log_report([logger], _fake_report(run_dir), step=3)

    client = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("simclr")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "2026-11-23/10-00-00"
    assert run.data.params["config/encoder/arch"] == "resnet18"  # the digits preset
    assert run.data.params["config/trainer/logger"] == "mlflow"
    assert run.data.metrics["train/loss"] == 2.0
    assert run.data.metrics[HEADLINE_METRIC] == 0.75
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert artifacts == {"report/report.md", "report/report.json", "report/embedding.png"}
    assert offline == []


def test_wandb_stays_offline_in_the_run_dir(compose_config, tmp_path, offline):
    pytest.importorskip("wandb")
    run_dir = tmp_path / "run"
    cfg = _cfg(compose_config, "trainer.logger=wandb")
    (logger,) = make_loggers(cfg, RunDir(run_dir))
    logger.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True)})
    logger.log_metrics({"train/loss": 2.0}, step=1)
    assert logger.experiment.settings.mode == "offline"
    log_report([logger], _fake_report(run_dir), step=1)  # also finishes the run

    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    (record,) = offline_run.glob("run-*.wandb")  # what `wandb sync` would upload
    assert HEADLINE_METRIC.encode() in record.read_bytes()
    assert b"train/loss" in record.read_bytes()
    for name in ("report.md", "report.json", "embedding.png"):
        assert (offline_run / "files" / name).exists()
    assert offline == []


@pytest.mark.slow
def test_pretraining_logs_config_metrics_and_report_to_every_tracker(
    labeled_folder, tmp_path, capfd, offline
):
    MlflowClient = pytest.importorskip("mlflow.tracking").MlflowClient
    pytest.importorskip("wandb")

    from simclr.console import pretrain
    from tests.support.cli_harness import run_cli, tiny_run
    from tests.unit.console.test_sweeps import TINY_EVAL

    run_dir = tmp_path / "run"
    argv = [
        *tiny_run(),
        *TINY_EVAL,
        "trainer.logger=[csv,mlflow,wandb]",
        f"data.root={labeled_folder}",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    headline = json.loads((run_dir / "report.json").read_text())["headline"]["mean"]

    assert (run_dir / "logs" / "metrics.csv").exists()
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("simclr").experiment_id])
    assert run.data.params["config/encoder/timm_name"] == "test_resnet"
    assert "train/loss_step" in run.data.metrics
    assert run.data.metrics[HEADLINE_METRIC] == pytest.approx(headline)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.md", "report/report.json", "report/embedding.png"} <= artifacts

    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert (offline_run / "files" / "report.json").exists()
    assert offline == []
