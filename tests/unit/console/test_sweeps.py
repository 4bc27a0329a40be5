"""Sweeps through Hydra's plugins: Optuna maximising the probe accuracy, joblib in parallel.

Both run the console script on the tiny generated folder (about 20 s per job on two
CPU cores); the SLURM launcher is only composed here (there is no cluster).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from simclr.config import register_configs
from simclr.errors import ConfigError
from simclr.training.launch import check_launcher_supports
from tests.conftest import CONF_DIR
from tests.integration.test_pretrain_e2e import SCRIPT, TINY

# The smallest evaluation that still yields a headline: one linear probe on all labels.
TINY_EVAL = [
    "eval=default",
    "eval.evaluators=[linear]",
    "eval.fractions=[1.0]",
    "eval.seeds_full=1",
    "eval.baselines=[]",
    "eval.headline_fraction=1.0",
    "eval.linear.Cs=[1.0]",
    "eval.linear.cv_folds=2",
]


def sweep(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "-m", *overrides], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_optuna_sweep_maximises_the_headline_probe_accuracy(labeled_folder, tmp_path):
    out = tmp_path / "optuna"
    tiny = [o for o in TINY if o != "eval=none"]
    result = sweep(
        tmp_path,
        "hydra/sweeper=simclr_optuna",
        "hydra.sweeper.n_trials=2",
        *tiny,
        *TINY_EVAL,
        f"data.root={labeled_folder}",
        f"hydra.sweep.dir={out}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"optim.lr", "loss.temperature", "augment.jitter_strength"}
    headlines = [json.loads((out / j / "report.json").read_text())["headline"] for j in "01"]
    assert best["best_value"] == pytest.approx(max(h["mean"] for h in headlines))
    overrides = [yaml.safe_load((out / j / ".hydra" / "overrides.yaml").read_text()) for j in "01"]
    assert overrides[0] != overrides[1], "the two trials should try different parameters"


def test_joblib_sweep_runs_jobs_in_parallel_workers(labeled_folder, tmp_path):
    out = tmp_path / "joblib"
    result = sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *TINY,
        f"data.root={labeled_folder}",
        f"hydra.sweep.dir={out}",
        "loss.temperature=0.2,0.5",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job, temperature in (("0", 0.2), ("1", 0.5)):
        assert (out / job / "checkpoints" / "last.ckpt").is_file()
        config = yaml.safe_load((out / job / ".hydra" / "config.yaml").read_text())
        assert config["loss"]["temperature"] == temperature


def compose_with_hydra(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_slurm_launcher_asks_for_one_task_per_gpu_on_every_node():
    cfg = compose_with_hydra(
        "hydra/launcher=simclr_slurm", "trainer.devices=4", "trainer.num_nodes=2"
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)


def test_joblib_refuses_jobs_of_several_processes():
    cfg = compose_with_hydra("hydra/launcher=joblib")
    HydraConfig.instance().set_config(cfg)
    try:
        check_launcher_supports(1)
        with pytest.raises(ConfigError, match="joblib"):
            check_launcher_supports(2)
    finally:
        HydraConfig.instance().cfg = None  # type: ignore[assignment]
