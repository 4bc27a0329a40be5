"""resume=auto after `kill -9`: the final weights equal those of an uninterrupted run.

The end-to-end test kills a real `simclr-pretrain` process in the middle of its
second epoch (after the first checkpoint), resumes it in the same run directory
and compares every tensor of the final checkpoint with an uninterrupted run of
the same command. The unit tests pin the pieces that make this hold: data order
and views fixed by (seed, epoch, index), and the CSV log kept across the restart.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from simclr.data.epochs import EpochSeededDataset, EpochShuffleSampler
from simclr.errors import CheckpointError
from simclr.training.resume import ResumableCSVLogger, check_resumable
from tests.conftest import REPO
from tests.support.cli_harness import tiny_run

SCRIPT = Path(sys.executable).with_name("simclr-pretrain")
# The same threads in every process: float sums must run in the same order.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
EPOCHS, BATCHES = 3, 3
AUTO_KEYS = ("trainer.precision=", "encoder.channels_last=")
KILL_AT_STEP = BATCHES + 1  # the second batch of the second epoch
# The hardware's own precision and memory format (auto), as a user's run has them:
# trainer.deterministic=true keeps them bit-reproducible (simclr/config/hardware.py).
RUN = [
    *(a for a in tiny_run(EPOCHS, BATCHES) if not a.startswith(AUTO_KEYS)),
    "trainer.deterministic=true",
]
# Loaded by the killed process only (as sitecustomize): at one training step it says
# so in a file and waits to be killed, so the kill lands mid-epoch on any machine.
HOLD_HOOK = """
import os, time
from pathlib import Path
from simclr.training.module import SimCLRModule

_step = int(os.environ["SIMCLR_TEST_HOLD_AT_STEP"])
_original = SimCLRModule.training_step


def training_step(self, batch, batch_idx):
    if self.global_step == _step:
        Path(os.environ["SIMCLR_TEST_HOLD_MARKER"]).write_text(f"{self.current_epoch} {batch_idx}")
        time.sleep(600)
    return _original(self, batch, batch_idx)


SimCLRModule.training_step = training_step
"""


def _start(
    run_dir: Path, data: Path, *extra: str, env: dict[str, str] = ENV
) -> subprocess.Popen[str]:
    args = [str(SCRIPT), *RUN, f"data.root={data}", f"hydra.run.dir={run_dir}", *extra]
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str]) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (ckpt["epoch"], ckpt["global_step"]) == (EPOCHS - 1, EPOCHS * BATCHES)
    return ckpt["state_dict"]


def _logged_losses(run_dir: Path) -> list[tuple[str, str]]:
    with (run_dir / "logs" / "metrics.csv").open(newline="") as f:
        return [
            (r["step"], r["train/loss_step"]) for r in csv.DictReader(f) if r["train/loss_step"]
        ]


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(labeled_folder, tmp_path):
    reference = _start(tmp_path / "uninterrupted", labeled_folder)
    hook, marker = tmp_path / "hook", tmp_path / "held"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_HOOK)
    held = {
        **ENV,
        "PYTHONPATH": os.pathsep.join([str(hook), ENV.get("PYTHONPATH", "")]),
        "SIMCLR_TEST_HOLD_AT_STEP": str(KILL_AT_STEP),
        "SIMCLR_TEST_HOLD_MARKER": str(marker),
    }
    victim_dir = tmp_path / "killed"
    victim = _start(victim_dir, labeled_folder, env=held)
    deadline = time.monotonic() + 300
    while not marker.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "1 1", "not held in the second batch of the second epoch"
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    at_kill = torch.load(victim_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (at_kill["epoch"], at_kill["global_step"]) == (0, BATCHES)

    _finish(_start(victim_dir, labeled_folder, "resume=auto"))
    _finish(reference)
    expected, resumed = _weights(tmp_path / "uninterrupted"), _weights(victim_dir)
    assert expected.keys() == resumed.keys()
    differing = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert not differing, (
        f"{len(differing)} of {len(expected)} tensors differ, e.g. {differing[:3]}"
    )
    # The log lists each step once, with the losses of the uninterrupted run.
    assert _logged_losses(victim_dir) == _logged_losses(tmp_path / "uninterrupted")


# --- the pieces ---------------------------------------------------------------------------


class _Noise:
    """A transform whose output is nothing but draws from the global generator."""

    def __call__(self, image: object) -> torch.Tensor:
        return torch.rand(3)


def _epoch(loader: DataLoader, epoch: int) -> list[tuple[int, torch.Tensor]]:
    loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
    return [(int(i), x) for xs, ys in loader for i, x in zip(ys, xs, strict=True)]


def _loader(workers: int, start_epoch: int = 0) -> DataLoader:
    base = [(None, i) for i in range(10)]  # the label is the index, to see the order
    return DataLoader(
        EpochSeededDataset(base, _Noise(), seed=7),
        batch_size=4,
        sampler=EpochShuffleSampler(10, seed=7, start_epoch=start_epoch),
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def test_order_and_views_depend_on_seed_epoch_index_only():
    torch.manual_seed(0)
    plain = [_epoch(_loader(0), e) for e in range(3)]
    torch.manual_seed(123)  # another global state: same epochs
    again = [_epoch(_loader(0), e) for e in range(3)]
    workers = _loader(2)  # persistent workers, created once, as in training
    with_workers = [_epoch(workers, e) for e in range(3)]
    resumed = _epoch(_loader(2, start_epoch=2), 2)  # fresh workers at epoch 2
    for runs in (again, with_workers):
        for a, b in zip(plain, runs, strict=True):
            assert [i for i, _ in a] == [i for i, _ in b]
            assert all(torch.equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    assert [i for i, _ in resumed] == [i for i, _ in plain[2]]
    assert all(torch.equal(x, y) for (_, x), (_, y) in zip(resumed, plain[2], strict=True))
    # Different epochs: another order and other views of the same image.
    assert [i for i, _ in plain[0]] != [i for i, _ in plain[1]]
    views = {e: dict(plain[e]) for e in range(2)}
    assert not torch.equal(views[0][3], views[1][3])
    assert sorted(i for i, _ in plain[0]) == list(range(10))


def test_global_generator_is_left_alone_by_seeded_items():
    dataset = EpochSeededDataset([(None, 0)], _Noise(), seed=1)
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    dataset[(0, 0)]
    assert torch.equal(torch.rand(2), expected)


def test_csv_log_keeps_rows_before_the_resumed_step(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    rows = [{"step": s, "train/loss_step": 1.0 / (s + 1), "epoch": s // 3} for s in range(6)]
    with (logs / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "step", "train/loss_step"])
        writer.writeheader()
        writer.writerows(rows)
    logger = ResumableCSVLogger(str(tmp_path), keep_before_step=3, name="logs", version="")
    logger.log_metrics({"train/loss_step": 0.5, "lr": 0.1}, step=3)
    logger.save()
    with (logs / "metrics.csv").open(newline="") as f:
        kept = list(csv.DictReader(f))
    assert [r["step"] for r in kept] == ["0", "1", "2", "3"]
    assert kept[-1]["lr"] == "0.1" and kept[0]["epoch"] == "0"
    fresh = ResumableCSVLogger(str(tmp_path), keep_before_step=0, name="logs", version="")
    fresh.experiment  # noqa: B018  (creating the writer clears a stale log)
    assert not (logs / "metrics.csv").exists()


def _checkpoint(path: Path, compose_config, *overrides: str) -> Path:
    cfg = OmegaConf.to_container(compose_config(*overrides), resolve=True, enum_to_str=True)
    torch.save(
        {
            "state_dict": {},
            "hyper_parameters": {"config": cfg},
            "loops": {},
            "epoch": 4,
            "global_step": 50,
        },
        path,
    )
    return path


def test_check_resumable_warns_on_changed_training_and_refuses_another_model(
    compose_config, tmp_path
):
    path = _checkpoint(tmp_path / "last.ckpt", compose_config, "optim.lr=0.3")
    point = check_resumable(path, compose_config("optim.lr=0.3", "trainer.max_epochs=500"))
    assert (point.epoch, point.global_step) == (5, 50)  # extending a run is silent
    with pytest.warns(UserWarning, match=r"optim\.lr=0\.3 there, 0\.1 now"):
        check_resumable(path, compose_config("optim.lr=0.1"))
    with pytest.raises(CheckpointError, match=r"head\.output_dim=128 there, 64 now"):
        check_resumable(path, compose_config("optim.lr=0.3", "head.output_dim=64"))
    # Switching non-finite skipping on to get past a divergence is not a change of run.
    check_resumable(path, compose_config("optim.lr=0.3", "loss.skip_nonfinite=true"))


def test_resume_refuses_a_file_without_training_state(tmp_path, compose_config):
    path = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        check_resumable(path, compose_config())
    assert path.exists()  # refused, not removed
