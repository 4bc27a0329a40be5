"""Counting the host reads of device values in each training step, on the CPU.

On CUDA, `.item()`, `bool()` or `float()` of a tensor, a boolean mask index and
`nonzero` make the host wait for the device. On the CPU nothing waits, but the same
calls still reach the dispatcher: `.item()`, `bool()` and `float()` of a tensor all
dispatch to `aten._local_scalar_dense`, and a mask index to `aten.nonzero` or
`aten.index` with a boolean index. :class:`HostReads` (a TorchDispatchMode) records
these calls.

Not every such call would wait on CUDA: torch.optim keeps its step counters on the
CPU (`torch.tensor(0.0)`) and reads them with `.item()`, and kornia draws its random
parameters on the CPU and tests them there. So the mode tracks which tensors would
live on the device: at the start of each step it is told the batch, the module's
parameters, buffers and gradients and the optimizers' state (:meth:`HostReads.seed`),
and from then on everything computed from one of them (or written from one, in place)
is a device tensor too. A read of a device tensor is recorded; a read of any other
tensor (a factory's, torch.optim's counters, kornia's draws) is not.

What this cannot see on the CPU: copies from the device to the host (`.cpu()`,
`.tolist()` of a device tensor go through `_to_copy`, a no-op here) and a tensor
made on the device by a factory (`torch.tensor(..., device=x.device)`). The
`gpu`-marked test (tests/integration/test_gpu_syncs.py) catches those with
`torch.cuda.set_sync_debug_mode`.

`CpuReadWindows` (a Lightning callback) opens a counting window at
`on_train_batch_start` and closes it once Lightning has written the step's metrics
(`update_train_step_metrics`, the last thing a step does before the next batch is
fetched), recording whether Lightning logged at that step.
"""

from __future__ import annotations

import traceback
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.connectors.logger_connector.logger_connector import (
    _LoggerConnector,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

READS = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default"}


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def _is_read(name: str, args: tuple[Any, ...]) -> bool:
    if name in READS:
        return True
    if name.startswith("aten.index.Tensor") and len(args) > 1:  # x[mask]: a nonzero inside
        return any(i is not None and i.dtype == torch.bool for i in args[1])
    return False


class TensorSet:
    """A set of tensors by identity, not keeping them alive (a WeakSet compares with ==)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[torch.Tensor]] = {}

    def __contains__(self, t: torch.Tensor) -> bool:
        ref = self._refs.get(id(t))
        return ref is not None and ref() is t

    def add(self, t: torch.Tensor) -> None:
        if len(self._refs) > 100_000:  # forget the dead ones now and then
            self._refs = {k: r for k, r in self._refs.items() if r() is not None}
        self._refs[id(t)] = weakref.ref(t)


class HostReads(TorchDispatchMode):
    """Records reads of device tensors while `counting` (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.counting = False
        self.reads: list[tuple[str, str]] = []  # (op, where: the innermost frames)
        self._device = TensorSet()

    def seed(self, *trees: Any) -> None:
        """Mark the tensors in `trees` (nested lists, tuples, dicts) as device tensors."""
        for t in _tensors(trees):
            self._device.add(t)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = str(func)
        device = any(t in self._device for t in _tensors((args, kwargs)))
        if self.counting and device and _is_read(name, args):
            self.reads.append((name, "".join(traceback.format_stack(limit=12)[:-1])))
        out = func(*args, **kwargs)
        if device:  # outputs, and inputs written in place, now hold device values
            written = [
                a
                for a, schema in zip(args, func._schema.arguments, strict=False)
                if isinstance(a, torch.Tensor) and schema.alias_info is not None
                if schema.alias_info.is_write
            ]
            self.seed(out, written)
        return out


def device_state(trainer: pl.Trainer, module: pl.LightningModule) -> list[Any]:
    """What lives on the training device between steps: the module's parameters, buffers
    and gradients, the optimizers' state, and the modules and optimizers of callbacks
    (the online probe's classifier)."""
    modules = [module, *(v for c in trainer.callbacks for v in vars(c).values())]  # type: ignore[attr-defined]
    trees: list[Any] = []
    for m in modules:
        if isinstance(m, torch.nn.Module):
            params = list(m.parameters())
            trees += [params, [p.grad for p in params], list(m.buffers())]
        if isinstance(m, torch.optim.Optimizer):
            trees.append(list(m.state.values()))
    trees += [list(o.state.values()) for o in trainer.optimizers]
    return trees


@dataclass
class Step:
    """The host reads of one training step."""

    global_step: int  # optimizer steps done before it
    logged: bool  # Lightning wrote step metrics after it
    reads: list[tuple[str, str]] = field(default_factory=list)  # (what, where)


class StepWindows(pl.Callback):
    """Watch each step from `on_train_batch_start` to the end of the step's metric writing
    (Lightning's `update_train_step_metrics`); the steps are in :attr:`steps`. Use as a
    context manager around `fit` (it patches Lightning's connector for the window's end).
    Subclasses say how reads are seen: :meth:`_open` and :meth:`_close`."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._open_now = False
        self._original = _LoggerConnector.update_train_step_metrics

    def on_train_batch_start(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        logged = bool(trainer._logger_connector.should_update_logs)
        self.steps.append(Step(trainer.global_step, logged))
        self._open(trainer, module, batch)
        self._open_now = True

    def _open(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any) -> None:
        raise NotImplementedError

    def _close(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def _window_ends(self) -> None:
        if self._open_now:
            self._open_now = False
            self.steps[-1].reads = self._close()

    def __enter__(self) -> StepWindows:
        windows, original = self, self._original

        def update(connector: _LoggerConnector) -> None:
            original(connector)
            windows._window_ends()

        _LoggerConnector.update_train_step_metrics = update  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        _LoggerConnector.update_train_step_metrics = self._original  # type: ignore[method-assign]


class CpuReadWindows(StepWindows):
    """Reads of device tensors as :class:`HostReads` sees them on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = HostReads()

    def _open(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any) -> None:
        self.mode.seed(batch, *device_state(trainer, module))
        self.mode.reads = []
        self.mode.counting = True

    def _close(self) -> list[tuple[str, str]]:
        self.mode.counting = False
        return list(self.mode.reads)

    def __enter__(self) -> CpuReadWindows:
        super().__enter__()
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mode.__exit__(*exc)
        super().__exit__(*exc)


class CudaSyncWindows(StepWindows):
    """On CUDA, `torch.cuda.set_sync_debug_mode("warn")` reports every operation that
    makes the host wait (device-to-host copies and blocking host-to-device copies
    included); its warnings in a window are the step's reads."""

    def __init__(self) -> None:
        super().__init__()
        self._catcher = warnings.catch_warnings(record=True)
        self._caught: list[warnings.WarningMessage] = []

    def _open(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any) -> None:
        self._caught.clear()
        torch.cuda.set_sync_debug_mode("warn")

    def _close(self) -> list[tuple[str, str]]:
        torch.cuda.set_sync_debug_mode(0)
        return [(str(w.message).splitlines()[0], f"{w.filename}:{w.lineno}") for w in self._caught]

    def __enter__(self) -> CudaSyncWindows:
        caught = self._catcher.__enter__()
        assert caught is not None
        self._caught = caught
        warnings.simplefilter("always")  # every occurrence, not the first per place
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        torch.cuda.set_sync_debug_mode(0)
        super().__exit__(*exc)
        self._catcher.__exit__(*exc)


PINNED = ("trainer.log_every_n_steps", "trainer.enable_progress_bar", "trainer.precision")


def pretrain_counted(
    windows: StepWindows,
    data: Path,
    run: Path,
    capfd: Any,
    monkeypatch: Any,
    *,
    epochs: int,
    batches: int,
    every: int,
    overrides: tuple[str, ...] = (),
    callbacks: tuple[pl.Callback, ...] = (),
) -> list[Step]:
    """`simclr-pretrain` in this process on the default path (progress bar, CSV logger,
    online probe, monitors, a time budget, `auto` precision, memory format, views and
    compile) over `epochs` x `batches`, logging every `every` steps, `windows` watching."""
    import simclr.training.trainer as trainer_module
    from simclr.console import pretrain
    from tests.support.cli_harness import run_cli, tiny_run

    # tiny_run pins float32, contiguous memory, no bar and logging every step: undone here.
    base = [a for a in tiny_run(epochs, batches) if not a.startswith((*PINNED, "encoder.ch"))]
    argv = [
        *base,
        f"data.root={data}",
        f"hydra.run.dir={run}",
        "data.batch_size=4",
        f"trainer.log_every_n_steps={every}",
        "trainer.max_time=1h",  # the budget's Timer and schedule planner too
        *overrides,
    ]
    build = trainer_module.build_callbacks
    monkeypatch.setattr(
        trainer_module, "build_callbacks", lambda *a, **k: [windows, *build(*a, **k), *callbacks]
    )
    with windows:
        result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    return windows.steps


def unlogged_reads(steps: list[Step]) -> list[str]:
    """Each read of a step after which Lightning did not log, with where it happened."""
    return [
        f"step {s.global_step}: {op}\n{where}"
        for s in steps
        if not s.logged
        for op, where in s.reads
    ]
