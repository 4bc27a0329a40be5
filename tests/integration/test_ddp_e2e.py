"""Two-process DDP (gloo on CPU) through the console script, as a user would run it.

Lightning's own launcher starts rank 1 by re-running the command; these tests check
that the run finishes, that its checkpoint loads, that the learning rate is scaled
for the global batch, and that rank 1 writes nothing of its own: no second Hydra
directory, no `.hydra/`, no checkpoints or logs outside the one run directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.integration.test_pretrain_e2e import SCRIPT, TINY
from tests.unit.console.test_sweeps import TINY_EVAL

pytestmark = pytest.mark.distributed

DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
RUN_FILES = {".hydra", "checkpoints", "logs", "pretrain.log", "pretrain_done"}
RANK1_LOG = "train_ddp_process_1.log"  # Lightning names rank 1's Hydra job so


def run(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *overrides], cwd=cwd, capture_output=True, text=True, timeout=400
    )


def load_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_two_process_run_writes_one_directory_from_rank_zero(labeled_folder, tmp_path):
    work = tmp_path / "work"  # the working directory: rank 1 must not create anything here
    work.mkdir()
    run_dir = tmp_path / "run"
    args = [*TINY, *TINY_EVAL, *DDP, "optim.lr=0.3"]  # eval after TINY's eval=none wins
    result = run(work, *args, f"data.root={labeled_folder}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]

    ckpt = load_checkpoint(run_dir)
    assert "encoder.conv1.weight" in ckpt["state_dict"]
    assert not any("SyncBatchNorm" in k or k.startswith("gpu_augment") for k in ckpt["state_dict"])
    assert ckpt["hyper_parameters"]["config"]["trainer"]["devices"] == 2
    # Global batch: 8 images per rank x 2 ranks; linear scaling 0.3 * 16 / 256 (the
    # schedule's peak, which LambdaLR keeps as `initial_lr`).
    groups = ckpt["optimizer_states"][0]["param_groups"]
    assert all(g["initial_lr"] == pytest.approx(0.3 * 16 / 256) for g in groups)

    # The online probe ran under DDP; the evaluation ran once, on rank 0, after training.
    assert "online_probe/val_acc" in (run_dir / "logs" / "metrics.csv").read_text()
    assert json.loads((run_dir / "report.json").read_text())["headline"]["mean"] is not None
    evaluated = {"report.json", "report.md", "features", "embedding.png", "label_efficiency.png"}
    evaluated |= {"training_curves.png"}
    written = RUN_FILES - {"pretrain_done"} | evaluated | {RANK1_LOG}
    assert {p.name for p in run_dir.iterdir()} == written
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
    ]
    assert list(work.iterdir()) == [], "rank 1 wrote into the working directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "run", "work"]


@pytest.mark.slow  # two DDP launches: ~40 s on an idle 2-core machine
def test_multirun_sweep_under_ddp_runs_each_job_on_both_ranks(labeled_folder, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    sweep = tmp_path / "sweep"
    # Jobs differ in the batch size: a rank 1 running another job's config would
    # gather projections of the wrong shape and fail the job.
    args = [*TINY, *DDP, f"data.root={labeled_folder}", f"hydra.sweep.dir={sweep}"]
    result = run(work, "-m", *args, "data.batch_size=4,8")
    assert result.returncode == 0, result.stderr[-3000:]

    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    for job, batch in (("0", 4), ("1", 8)):
        job_dir = sweep / job
        config = load_checkpoint(job_dir)["hyper_parameters"]["config"]
        assert config["data"]["batch_size"] == batch
        assert {p.name for p in job_dir.iterdir()} == RUN_FILES | {RANK1_LOG}
    assert list(work.iterdir()) == []


@pytest.mark.slow  # ~20-40 s: two processes started by torchrun
def test_torchrun_ranks_share_one_directory_named_after_the_launch(labeled_folder, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "simclr.console.pretrain"]
    command += [*TINY, *DDP, f"data.root={labeled_folder}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "outputs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("torchrun-")
    assert {p.name for p in runs[0].iterdir()} == RUN_FILES | {"pretrain_rank1.log"}
    assert "encoder.conv1.weight" in load_checkpoint(runs[0])["state_dict"]


def test_evaluation_gets_a_plain_encoder_without_syncbatchnorm(compose_config):
    from simclr.jobs.pretrain import plain_encoder
    from simclr.models import build_encoder

    cfg = compose_config("encoder=resnet18", "encoder.stem=cifar")
    trained = torch.nn.SyncBatchNorm.convert_sync_batchnorm(build_encoder(cfg.encoder))
    plain = plain_encoder(trained, cfg)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in plain.modules())
    for key, value in trained.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key
