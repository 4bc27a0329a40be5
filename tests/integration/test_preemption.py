"""Pre-emption: a real `simclr-pretrain` stopped by a signal mid-epoch saves `last.ckpt`
after the step, exits 128 + signal with one line, and `resume=auto` then ends with
the weights of an uninterrupted run.

Signals: SIGTERM (what Kubernetes and most schedulers send), SIGINT (Ctrl-C), and
SLURM's SIGUSR1 warning with the SLURM environment variables set and a fake
`scontrol` on PATH that records the requeue and, as SLURM does when it requeues a
job, ends it with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import write_labeled_folder
from tests.unit.training.test_resume import BATCHES, ENV, REPO, RUN, _weights

# This checkout's entry point (the installed console script may belong to another one).
COMMAND = [sys.executable, "-m", "simclr.console.pretrain"]
PYTHONPATH = os.pathsep.join(p for p in (str(REPO), ENV.get("PYTHONPATH", "")) if p)

pytestmark = pytest.mark.slow

STOP_AT_STEP = BATCHES + 1  # the second batch of the second epoch
# Loaded by the signalled process only (as sitecustomize): at one training step it
# says so in a file and waits until Lightning has seen a stop signal, so the signal
# lands mid-epoch, mid-step, on any machine. The step then finishes as usual.
HOLD_HOOK = """
import os, time
from pathlib import Path
from simclr.training.module import SimCLRModule

_step = int(os.environ["SIMCLR_TEST_HOLD_AT_STEP"])
_original = SimCLRModule.training_step


def training_step(self, batch, batch_idx):
    if self.global_step == _step:
        Path(os.environ["SIMCLR_TEST_HOLD_MARKER"]).write_text(f"{self.current_epoch} {batch_idx}")
        deadline = time.monotonic() + 300
        while not self.trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)
    return _original(self, batch, batch_idx)


SimCLRModule.training_step = training_step
"""
FAKE_SCONTROL = """#!/bin/sh
# SLURM's requeue, simulated: note the call, then end the job as SLURM would.
echo "$@" >> "$SIMCLR_TEST_SCONTROL_LOG"
kill -TERM "$PPID"
"""
SLURM_ENV = {
    "SLURM_JOB_ID": "4242",
    "SLURM_NTASKS": "1",
    "SLURM_JOB_NAME": "simclr",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}


def _start(
    run_dir: Path,
    data: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    run: list[str] = RUN,
) -> subprocess.Popen[str]:
    args = [*COMMAND, *run, f"data.root={data}", f"hydra.run.dir={run_dir}", *extra]
    env = env or {**ENV, "PYTHONPATH": PYTHONPATH}
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labeled folder shared by this module's tests."""
    return write_labeled_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def uninterrupted(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    process = _start(run_dir, data)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return _weights(run_dir)


def _hold_env(tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path]:
    hook, marker = tmp_path / "hook", tmp_path / "held"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_HOOK)
    env = {
        **ENV,
        "PYTHONPATH": os.pathsep.join([str(hook), PYTHONPATH]),
        "SIMCLR_TEST_HOLD_AT_STEP": str(STOP_AT_STEP),
        "SIMCLR_TEST_HOLD_MARKER": str(marker),
        **extra,
    }
    return env, marker


def _stop(
    data: Path, tmp_path: Path, signum: int, env: dict[str, str], marker: Path, run: list[str] = RUN
) -> tuple[Path, int, str]:
    """Start a run held mid-epoch, send it `signum`, wait for it to end."""
    run_dir = tmp_path / "run"
    victim = _start(run_dir, data, env=env, run=run)
    deadline = time.monotonic() + 300
    while not marker.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "1 1", "not held in the second batch of the second epoch"
    victim.send_signal(signum)
    _, err = victim.communicate(timeout=300)
    return run_dir, victim.returncode, err


def _check_stopped_checkpoint(run_dir: Path) -> None:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    # Saved after the held step finished: epoch 1, its second batch done.
    assert (ckpt["epoch"], ckpt["global_step"]) == (1, STOP_AT_STEP + 1)
    assert all(
        torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point()
    )


def _resume_and_compare(
    run_dir: Path, data: Path, expected: dict[str, torch.Tensor], run: list[str] = RUN
) -> None:
    process = _start(run_dir, data, "resume=auto", run=run)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    resumed = _weights(run_dir)
    differing = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert not differing, (
        f"{len(differing)} of {len(expected)} tensors differ, e.g. {differing[:3]}"
    )


def _one_line(err: str, signame: str, run_dir: Path) -> None:
    lines = [line for line in err.splitlines() if line.startswith("simclr-pretrain: stopped by")]
    assert len(lines) == 1, err[-3000:]
    assert f"stopped by {signame} after global step {STOP_AT_STEP + 1} (epoch 1" in lines[0]
    assert f"resume=auto hydra.run.dir={run_dir}" in lines[0]
    assert "Traceback" not in err, err[-3000:]


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_signal_saves_last_ckpt_after_the_step_and_resumes_to_the_same_weights(
    data, uninterrupted, tmp_path, signum, status
):
    env, marker = _hold_env(tmp_path)
    run_dir, code, err = _stop(data, tmp_path, signum, env, marker)
    assert code == status, err[-3000:]
    _one_line(err, signal.Signals(signum).name, run_dir)
    _check_stopped_checkpoint(run_dir)
    _resume_and_compare(run_dir, data, uninterrupted)


def test_slurm_sigusr1_requeues_saves_and_resumes_to_the_same_weights(
    data, uninterrupted, tmp_path
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(FAKE_SCONTROL)
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "scontrol.log"
    env, marker = _hold_env(
        tmp_path,
        **SLURM_ENV,
        PATH=os.pathsep.join([str(bin_dir), ENV.get("PATH", "")]),
        SIMCLR_TEST_SCONTROL_LOG=str(calls),
    )
    run_dir, code, err = _stop(data, tmp_path, signal.SIGUSR1, env, marker)
    assert calls.read_text().split() == ["requeue", "4242"]  # Lightning asked for the requeue
    assert code == 143, err[-3000:]  # ... and SLURM's SIGTERM ended the job
    _one_line(err, "SIGTERM", run_dir)
    assert list(run_dir.glob("hpc_ckpt_*.ckpt")), "Lightning's own SLURM checkpoint"
    _check_stopped_checkpoint(run_dir)
    # The requeued job: same job id, same directory, resume=auto.
    _resume_and_compare(run_dir, data, uninterrupted)
