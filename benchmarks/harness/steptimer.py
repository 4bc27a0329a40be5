"""Step timing and memory sampling shared by every training worker (ours and the peers').

Runs unchanged under Lightning 1.9 (bolts' env) and 2.x (ours, lightly's): it uses only
``pytorch_lightning.Callback`` hooks that both have, and the standard library.

A step's time is the wall clock between consecutive ``on_train_batch_end`` calls (the
first from ``on_train_start``), so it includes fetching the batch from the loader,
the forward/backward/optimizer step, and whatever happens at an epoch boundary
(checkpoint, loader restart) before the next batch: that lands in the first step of
the next epoch. The first `warmup_steps` steps are excluded from the rate.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


def _pss_kib(pid: int) -> int:
    """Proportional set size of a process (shared pages split among sharers), KiB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                continue
            found += kids
            todo += kids
    return found


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its loader workers.

    Live descendants are read from /proc; finished, reaped ones from RUSAGE_CHILDREN.
    Unlike wall time, this hardly changes when other jobs share the cores.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in [os.getpid(), *_descendants(os.getpid())]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + reaped.ru_utime + reaped.ru_stime


MEMORY_SAMPLING_ENV = "BENCH_MEMORY_SAMPLING"  # "off": no sampling thread


class TreeMemorySampler:
    """Peak memory of this process plus its loader workers, sampled every `period` s.

    PSS rather than RSS, so pages that forked workers share with the main process
    are counted once.
    """

    def __init__(self, period: float = 0.25) -> None:
        self.period = period
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = sum(_pss_kib(p) for p in [me, *_descendants(me)])
            self.peak_kib = max(self.peak_kib, total)
            self._stop.wait(self.period)

    def __enter__(self) -> TreeMemorySampler:
        # Reading a multi-GB process's PSS takes the kernel's memory-map lock 4x a second:
        # benchmarks that do not report memory (B4) turn it off for every worker.
        if os.environ.get(MEMORY_SAMPLING_ENV) != "off":
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024.0


class StepTimer(pl.Callback):
    """Wall-clock time of every training step, data loading and epoch boundaries included."""

    def __init__(self, batch_size: int, warmup_steps: int = 2) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.warmup_steps = warmup_steps
        self.step_seconds: list[float] = []
        self.epoch_first_step: list[int] = []  # index of each epoch's first step
        self._last = 0.0
        self._started = 0.0
        self._cpu_start: float | None = None  # CPU seconds when the timed steps begin
        self._cpu_last = 0.0
        self.train_seconds = 0.0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._started = self._last = time.perf_counter()
        if self.warmup_steps == 0:
            self._cpu_start = tree_cpu_seconds()

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.epoch_first_step.append(len(self.step_seconds))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        self.step_seconds.append(now - self._last)
        self._last = now
        if len(self.step_seconds) == self.warmup_steps:
            self._cpu_start = tree_cpu_seconds()
        elif len(self.step_seconds) > self.warmup_steps:
            self._cpu_last = tree_cpu_seconds()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        now = time.perf_counter()
        # On CUDA, steps that do not wait for the GPU end on the host before their kernels
        # do: the last step takes the wait for the device's queue to drain.
        if _wait_for_device(pl_module) and len(self.step_seconds) > self.warmup_steps:
            waited = time.perf_counter()
            self.step_seconds[-1] += waited - now
            now = waited
        self.train_seconds = now - self._started

    def result(self) -> dict[str, Any]:
        """Images/s over the steps after warm-up, and the raw step times."""
        measured = self.step_seconds[self.warmup_steps :]
        seconds = sum(measured)
        boundaries = [i for i in self.epoch_first_step[1:] if i >= self.warmup_steps]
        steady = [
            s
            for i, s in enumerate(self.step_seconds[self.warmup_steps :], self.warmup_steps)
            if i not in boundaries
        ]
        cpu = self._cpu_last - self._cpu_start if self._cpu_start is not None else None
        return {
            "images_per_s": self.batch_size * len(measured) / seconds if seconds else None,
            "cpu_s_per_image": cpu / (self.batch_size * len(measured))
            if cpu and measured
            else None,
            "steps": len(self.step_seconds),
            "measured_steps": len(measured),
            "warmup_steps": self.warmup_steps,
            "epochs": len(self.epoch_first_step),
            "epoch_boundaries_measured": len(boundaries),
            "steady_step_s": _median(steady),
            "boundary_step_s": _median([self.step_seconds[i] for i in boundaries]),
            "step_seconds": [round(s, 4) for s in self.step_seconds],
            "train_seconds": round(self.train_seconds, 3),
        }


def _wait_for_device(module: Any) -> bool:
    """Wait for the CUDA queue of `module`'s device; False (nothing done) elsewhere."""
    device = getattr(module, "device", None)
    if getattr(device, "type", None) != "cuda":
        return False
    import torch

    torch.cuda.synchronize(device)
    return True


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def peak_rss_mib() -> dict[str, float]:
    """Peak RSS of this process and of its finished children (loader workers), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"peak_rss_main_mib": round(own, 1), "peak_rss_child_mib": round(kids, 1)}


def emit(result: dict[str, Any], path: str | Path | None = None) -> None:
    """Print `result` as one JSON line (the worker protocol); also write it to `path`."""
    line = json.dumps(result, default=str)
    if path:
        Path(path).write_text(line + "\n")
    print(line, flush=True)
