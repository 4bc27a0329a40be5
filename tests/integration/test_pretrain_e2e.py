"""End to end through the console script: a tiny run on generated JPEG/PNG images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

SCRIPT = Path(sys.executable).with_name("simclr-pretrain")

TINY = [
    "experiment=none",
    "data=folder",
    "data.image_size=16",
    "data.batch_size=8",
    "data.num_workers=0",
    "encoder=resnet18",
    "encoder.stem=cifar",
    "head.hidden_dim=64",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.precision=32-true",  # the bit-exact path; auto is tested in test_hardware.py
    "encoder.channels_last=false",
    "eval=none",
]


def run_pretrain(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *overrides], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_tiny_pretraining_writes_a_loadable_checkpoint(labeled_folder, tmp_path):
    run_dir = tmp_path / "run"
    result = run_pretrain(*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    keys = ckpt["state_dict"].keys()
    assert "encoder.conv1.weight" in keys and "encoder.fc.weight" not in keys
    assert any(k.startswith("head.net.") for k in keys)
    assert ckpt["hyper_parameters"]["config"]["encoder"]["arch"] == "resnet18"
    assert (run_dir / "logs" / "metrics.csv").exists()
    assert (run_dir / ".hydra" / "config.yaml").exists()


def test_a_finished_run_is_never_overwritten(labeled_folder, tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run_dir}"]
    assert run_pretrain(*args).returncode == 0
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    again = run_pretrain(*args)
    assert again.returncode == 2
    assert "finished run" in again.stderr and str(run_dir) in again.stderr
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before


@pytest.mark.parametrize(
    "override,named",
    [("loss.temperature=0", "loss.temperature"), ("data.root=/no/such/dir", "/no/such/dir")],
)
def test_bad_input_exits_2_with_one_line_before_compute(labeled_folder, tmp_path, override, named):
    args = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={tmp_path / 'run'}", override]
    result = run_pretrain(*args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("simclr-pretrain: error:") and named in lines[-1]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cfg_job_prints_the_composed_config():
    result = run_pretrain("--cfg", "job")
    assert result.returncode == 0
    assert "temperature:" in result.stdout and "arch: resnet18" in result.stdout
