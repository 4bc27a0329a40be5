"""Hydra and DDP together: one output directory per run, written by rank 0 only.

Three ways start the ranks of a run, and each needs Hydra told something:

* Lightning's own launcher (``trainer.devices=N`` on one machine): rank 0 is the
  process the user started; Lightning re-runs the command line for ranks 1..N-1,
  appending ``hydra.run.dir=<rank 0's dir> hydra.output_subdir=null``. That is
  right for a single run, but under ``-m`` the re-run command would be the whole
  sweep. :func:`ddp_job_scope` hands Lightning the command of
  this one job instead, and afterwards takes down the process group and the
  environment variables Lightning set, so the next job of the sweep launches its
  own ranks afresh.
* ``torchrun`` and SLURM (``srun``) start every rank themselves, each running
  ``simclr-pretrain``. :func:`external_launch_overrides` makes them agree on one
  output directory (named after the launch, not the clock, which differs between
  nodes); the ``${simclr_rank_zero:...}`` resolver keeps ranks > 0 from writing
  Hydra's ``.hydra/`` files, also in SLURM jobs that hydra-submitit starts.
* Checkpoints, logs, reports and the ``pretrain_done`` marker are written by
  Lightning's rank-zero-only callbacks and loggers and by ``pretrain()`` on global
  rank 0 only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import cast

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict, read_write

from simclr.config.resolvers import external_rank
from simclr.errors import ConfigError

# What Lightning's subprocess launcher writes into the launching process's environment.
LIGHTNING_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra command-line flags that take a value and must reach the children unchanged.
CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
# Hydra overrides that belong to the sweep as a whole, not to one of its jobs.
SWEEP_ONLY = (
    "hydra.mode",
    "hydra/launcher",
    "hydra/sweeper",
    "hydra.launcher",
    "hydra.sweeper",
    "hydra.sweep",
    "hydra.run.dir",
    "hydra.job.num",
    "hydra.job.id",
)


def launch_tag(env: Mapping[str, str] = os.environ) -> str:
    """A name every rank of one torchrun/SLURM launch computes alike."""
    if "TORCHELASTIC_RUN_ID" in env and "RANK" in env:
        run_id = env["TORCHELASTIC_RUN_ID"]
        if run_id in ("", "none"):
            raise ConfigError(
                "torchrun without --rdzv-id (or --standalone): pass hydra.run.dir=<a directory "
                "all nodes share> (hydra.sweep.dir with -m) so that all ranks write to one run"
            )
        return f"torchrun-{run_id}"
    return f"slurm-{env.get('SLURM_JOB_ID', 'job')}.{env.get('SLURM_STEP_ID', '0')}"


def _given(argv: Sequence[str], key: str) -> bool:
    return any(a.lstrip("+~").startswith(f"{key}=") for a in argv)


def external_launch_overrides(
    argv: Sequence[str], env: Mapping[str, str] = os.environ
) -> list[str]:
    """Hydra overrides to append for a rank that torchrun/SLURM started ([] otherwise).

    Every rank gets the same ``hydra.run.dir`` (``hydra.sweep.dir`` under ``-m``)
    unless the user gave one; ranks > 0 also get a job name of their own, so that
    their log file is not rank 0's (:func:`rank_zero_only` keeps ``.hydra/`` to rank 0).
    """
    rank = external_rank(env)
    if rank is None:
        return []
    multirun = "-m" in argv or "--multirun" in argv
    key, top = ("hydra.sweep.dir", "multirun") if multirun else ("hydra.run.dir", "outputs")
    extra = [] if _given(argv, key) else [f"{key}={top}/{launch_tag(env)}"]
    if rank > 0:
        extra.append(f"hydra.job.name=pretrain_rank{rank}")
    return extra


def _config_flags(argv: Sequence[str]) -> list[str]:
    """The config path/name/dir flags of a command line, with their values."""
    kept: list[str] = []
    for i, arg in enumerate(argv):
        if arg in CONFIG_FLAGS and i + 1 < len(argv):
            kept += [arg, argv[i + 1]]
        elif arg.split("=", 1)[0] in CONFIG_FLAGS and "=" in arg:
            kept.append(arg)
    return kept


def job_command_line(argv: Sequence[str], task: Sequence[str], hydra: Sequence[str]) -> list[str]:
    """The single-run command line of one sweep job: program, config flags, its overrides."""
    own_hydra = [o for o in hydra if not o.lstrip("+~").startswith(SWEEP_ONLY)]
    return [argv[0], *_config_flags(argv[1:]), *own_hydra, *task]


@contextmanager
def ddp_job_scope() -> Iterator[None]:
    """Around ``trainer.fit``: the ranks Lightning starts run this job; afterwards, clean up.

    In a Hydra sweep, the process that launches ranks hands Lightning this job's
    own command line (and run directory). On leaving, the process group is taken
    down on every rank: its other members are gone once fit returns, so rank 0's
    evaluation must not use it, and the next job of a sweep starts a new one. The
    launching process also gets back the environment it had before Lightning set
    ``LOCAL_RANK`` and friends (with them set, the next job would wait for ranks
    that nobody starts).
    """
    launching = "LOCAL_RANK" not in os.environ and external_rank() is None
    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    saved_env = {key: os.environ.get(key) for key in LIGHTNING_LAUNCH_ENV}
    saved_argv = list(sys.argv)
    saved_run_dir = None
    if launching and in_sweep:
        hydra_cfg = HydraConfig.get()
        saved_run_dir = hydra_cfg.run.dir
        sys.argv = job_command_line(sys.argv, hydra_cfg.overrides.task, hydra_cfg.overrides.hydra)
        _set_run_dir(hydra_cfg.runtime.output_dir)
    try:
        yield
    finally:
        if saved_run_dir is not None:
            sys.argv = saved_argv
            _set_run_dir(saved_run_dir)
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        if launching:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _set_run_dir(path: str) -> None:
    # Lightning passes `hydra.run.dir=<HydraConfig run.dir>` to its children.
    node = cast(DictConfig, HydraConfig.get())  # a DictConfig at run time, typed as its schema
    with read_write(node), open_dict(node):
        node.run.dir = path


def check_launcher_supports(world_size: int) -> None:
    """Refuse a multi-process job under Hydra's joblib launcher, before any rank starts.

    Its jobs run in loky worker processes, whose command line is loky's: Lightning
    cannot re-run our entry point from there, and parallel jobs would share GPUs.
    """
    if world_size <= 1 or not HydraConfig.initialized():
        return
    if "joblib" in str(HydraConfig.get().launcher.get("_target_", "")):
        raise ConfigError(
            f"hydra/launcher=joblib with {world_size} processes per job: joblib workers cannot "
            "start DDP ranks; use trainer.devices=1 per job, or the basic or submitit_slurm launcher"
        )
