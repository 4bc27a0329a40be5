"""On CUDA, no training step of the default path makes the host wait, except at logging steps.

The CUDA counterpart of tests/unit/training/test_host_syncs.py: the same in-process
`simclr-pretrain` run, now on the GPU with everything `auto` (bf16, channels_last, GPU
views, nvJPEG decoding of the folder's JPEGs, compiled or not), watched by
`torch.cuda.set_sync_debug_mode("warn")`, which also reports the device-to-host copies
and blocking host-to-device copies the CPU test cannot see. Skipped without CUDA.
"""

from __future__ import annotations

import pytest
import torch

from tests.support.host_syncs import CudaSyncWindows, pretrain_counted, unlogged_reads

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

EVERY = 3


@pytest.mark.parametrize("compile_", ["false", "auto"])  # auto: compiled, on CUDA
def test_no_step_waits_for_the_gpu_between_logging_steps(
    labeled_folder, tmp_path, capfd, monkeypatch, compile_
):
    steps = pretrain_counted(
        CudaSyncWindows(),
        labeled_folder,
        tmp_path / "run",
        capfd,
        monkeypatch,
        epochs=2,
        batches=4,
        every=EVERY,
        overrides=(f"encoder.compile={compile_}", "trainer.accelerator=gpu", "trainer.devices=1"),
    )
    assert len(steps) == 8
    # The first step of a process chooses kernels (cuDNN autotuning) and compiles: left out.
    problems = unlogged_reads(steps[1:])
    assert not problems, "\n".join(problems)
