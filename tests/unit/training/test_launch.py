"""Hydra + DDP helpers: who is rank 0, what each launcher's ranks are told, clean-up."""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.distributed as dist

from simclr.config import resolvers
from simclr.errors import ConfigError
from simclr.training import launch

TORCHRUN = {"TORCHELASTIC_RUN_ID": "abc123", "RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}
SLURM = {"SLURM_NTASKS": "8", "SLURM_PROCID": "3", "SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0"}


@pytest.mark.parametrize(
    "env,rank",
    [
        ({}, None),
        (TORCHRUN, 1),
        (SLURM, 3),
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, None),  # one task: Lightning launches
        ({"LOCAL_RANK": "1"}, None),  # a child of Lightning's own launcher
    ],
)
def test_external_rank(env, rank):
    assert resolvers.external_rank(env) == rank


@pytest.mark.parametrize(
    "env,zero",
    [
        ({}, True),
        ({"LOCAL_RANK": "0"}, True),
        ({"LOCAL_RANK": "1"}, False),
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),
        ({**TORCHRUN, "RANK": "0", "LOCAL_RANK": "0"}, True),
        (TORCHRUN, False),
        (SLURM, False),
        ({**SLURM, "SLURM_PROCID": "0"}, True),
    ],
)
def test_launched_as_rank_zero(env, zero):
    assert resolvers.launched_as_rank_zero(env) is zero


def test_rank_zero_resolver_blanks_the_value_on_other_ranks(monkeypatch):
    from omegaconf import OmegaConf

    resolvers.register_resolvers()
    node = OmegaConf.create({"subdir": "${simclr_rank_zero:.hydra}"})
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("NODE_RANK", raising=False)
    assert node.subdir == ".hydra"
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert node.subdir is None


def test_torchrun_and_slurm_ranks_agree_on_one_directory():
    rank0 = launch.external_launch_overrides([], {**TORCHRUN, "RANK": "0", "LOCAL_RANK": "0"})
    rank1 = launch.external_launch_overrides([], TORCHRUN)
    assert rank0 == ["hydra.run.dir=outputs/torchrun-abc123"]
    assert rank1 == ["hydra.run.dir=outputs/torchrun-abc123", "hydra.job.name=pretrain_rank1"]
    sweep = launch.external_launch_overrides(["-m", "optim.lr=0.1,0.2"], TORCHRUN)
    assert sweep[0] == "hydra.sweep.dir=multirun/torchrun-abc123"
    slurm = launch.external_launch_overrides(["optim.lr=0.1"], SLURM)
    assert slurm[0] == "hydra.run.dir=outputs/slurm-42.0"


def test_a_given_directory_is_kept_and_plain_runs_get_nothing():
    assert launch.external_launch_overrides(["hydra.run.dir=/shared/run"], TORCHRUN) == [
        "hydra.job.name=pretrain_rank1"
    ]
    assert launch.external_launch_overrides(["hydra.run.dir=x"], {}) == []


def test_torchrun_without_a_run_id_asks_for_a_run_dir():
    env = {**TORCHRUN, "TORCHELASTIC_RUN_ID": "none"}
    with pytest.raises(ConfigError, match=r"hydra\.run\.dir"):
        launch.external_launch_overrides([], env)
    assert launch.external_launch_overrides(["hydra.run.dir=/shared"], env) == [
        "hydra.job.name=pretrain_rank1"
    ]


def test_job_command_line_keeps_this_jobs_overrides_and_config_flags():
    argv = ["/bin/simclr-pretrain", "-m", "--config-name", "other", "optim.lr=0.1,0.2", "-cd=/c"]
    task = ["optim.lr=0.2", "data=folder"]
    hydra = ["hydra.sweep.dir=/s", "hydra/launcher=joblib", "hydra.job.chdir=false"]
    hydra += ["hydra.mode=MULTIRUN", "hydra.sweeper.n_trials=3"]
    line = launch.job_command_line(argv, task, hydra)
    assert line == [
        "/bin/simclr-pretrain",
        "--config-name",
        "other",
        "-cd=/c",
        "hydra.job.chdir=false",
        "optim.lr=0.2",
        "data=folder",
    ]


def test_ddp_job_scope_takes_down_the_group_and_lightnings_variables(monkeypatch, tmp_path):
    for key in launch.LIGHTNING_LAUNCH_ENV:
        monkeypatch.delenv(key, raising=False)
    argv = list(sys.argv)
    with launch.ddp_job_scope():
        # What Lightning's launcher leaves behind in the launching process.
        os.environ.update(
            {"MASTER_ADDR": "127.0.0.1", "LOCAL_RANK": "0", "NODE_RANK": "0", "WORLD_SIZE": "1"}
        )
        os.environ["MASTER_PORT"] = "0"
        dist.init_process_group(
            "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
        )
        assert dist.is_initialized()
    assert not dist.is_initialized()
    assert not any(key in os.environ for key in launch.LIGHTNING_LAUNCH_ENV)
    assert sys.argv == argv
    assert torch.ones(1).sum() == 1  # the process is still usable


def test_ddp_job_scope_keeps_the_environment_of_an_externally_started_rank(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with launch.ddp_job_scope():
        pass
    assert os.environ["LOCAL_RANK"] == "0" and os.environ["RANK"] == "0"


def test_fsdp_is_refused_with_the_reason(compose_config):
    from simclr.config import validate_config

    cfg = compose_config("trainer.strategy=fsdp")
    with pytest.raises(ConfigError, match=r"trainer\.strategy=fsdp.*ddp"):
        validate_config(cfg)
