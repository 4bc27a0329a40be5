"""`data=stream` resumed: after SIGTERM mid-epoch (LitData's loader state in the
checkpoint) and after `kill -9` (the last end-of-epoch checkpoint), `resume=auto`
ends with the weights of an uninterrupted `data=stream` run.

The runs train 3 epochs of 3 batches from 4 available (`trainer.limit_train_batches`),
so every epoch ends before LitData's does: the case in which LitData alone would
resume inside its old epoch (simclr.data.stream.ResumableStreamLoader).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from simclr.data.prepare import prepare_shards
from tests.integration.test_preemption import (
    RUN,
    STOP_AT_STEP,
    _check_stopped_checkpoint,
    _hold_env,
    _one_line,
    _resume_and_compare,
    _start,
    _stop,
)
from tests.unit.training.test_resume import BATCHES, _weights

pytestmark = pytest.mark.slow

STREAM_RUN = ["data=stream" if arg == "data=folder" else arg for arg in RUN]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np

    from tests.conftest import write_image

    rng = np.random.default_rng(0)
    src = tmp_path_factory.mktemp("images")
    for split, count in (("train", 12), ("test", 4)):
        for c in ("cat", "dog", "fox"):
            for i in range(count):
                write_image(src / split / c / f"{i}{'.jpg' if i % 2 else '.png'}", rng)
    dest = tmp_path_factory.mktemp("shards") / "dest"
    prepare_shards(src, str(dest), workers=2, progress=False)
    return dest


@pytest.fixture(scope="module")
def uninterrupted(
    shards: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, torch.Tensor]:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    process = _start(run_dir, shards, run=STREAM_RUN)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return _weights(run_dir)


def test_sigterm_mid_epoch_then_resume_continues_the_stream(shards, uninterrupted, tmp_path):
    env, marker = _hold_env(tmp_path)
    run_dir, code, err = _stop(shards, tmp_path, signal.SIGTERM, env, marker, run=STREAM_RUN)
    assert code == 143, err[-3000:]
    _one_line(err, "SIGTERM", run_dir)
    _check_stopped_checkpoint(run_dir)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    state = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert state["num_samples_yielded"] == 2 * 8  # two batches of 8 into LitData's epoch 2
    _resume_and_compare(run_dir, shards, uninterrupted, run=STREAM_RUN)


def test_sigkill_then_resume_from_the_epoch_checkpoint(shards, uninterrupted, tmp_path):
    env, marker = _hold_env(tmp_path)
    run_dir, code, _ = _stop(shards, tmp_path, signal.SIGKILL, env, marker, run=STREAM_RUN)
    assert code == -signal.SIGKILL
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (ckpt["epoch"], ckpt["global_step"]) == (0, BATCHES)
    assert STOP_AT_STEP == BATCHES + 1
    _resume_and_compare(run_dir, shards, uninterrupted, run=STREAM_RUN)
