"""Continuing a run after a crash or `kill -9` (`resume=auto`), to the same result.

Lightning restores the model, optimizer, learning-rate schedule, loop counters
and callback states from `last.ckpt`. What it does not cover is here:

* :func:`check_resumable` reads the checkpoint first (weights only, one-line
  errors for a damaged file) and refuses to continue it with settings that would
  change the model or the training it describes (another architecture, another
  learning rate...), naming the first key that differs;
* :class:`EpochSeeding` reseeds the global generators at the start of every
  epoch from (seed, epoch, rank), and :mod:`simclr.data.epochs` fixes data order
  and augmentations per (seed, epoch, index), so epoch k+1 of a resumed run is
  epoch k+1 of the uninterrupted one;
* :class:`ResumableCSVLogger` keeps the metrics logged before the checkpoint
  (Lightning's CSV logger deletes `metrics.csv` when it finds one) and drops the
  rows of steps that will be trained again.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
from lightning_fabric.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from simclr.config.schema import RunConfig
from simclr.data.epochs import reseed_globals
from simclr.errors import CheckpointError
from simclr.runs.rundir import CHECKPOINT_SUFFIX, LAST

# Config keys that must be equal to resume: they shape the weights and optimizer
# state in the checkpoint, which would not load into anything else.
MUST_MATCH = ("encoder", "head", "loss.name", "optim.name", "optim.exclude_bn_bias")
# Keys whose change is allowed (to recover from a divergence, say, or data moved to
# another disk) with a warning: the result then differs from an uninterrupted run.
# Everything else (max_epochs, devices, num_workers, logging, evaluation) may change
# silently.
SHOULD_MATCH = (
    "loss",
    "optim",
    "augment",
    "seed",
    "data.name",
    "data.root",
    "data.image_size",
    "data.batch_size",
    "data.drop_last",
    "trainer.accumulate_grad_batches",
    "trainer.precision",
)
# The memory format and compiling change no weight (and `auto` is resolved per machine);
# the decoders (augment.decode, also `auto`) differ by rounding only.
NEVER_COMPARED = (
    "loss.skip_nonfinite",
    "encoder.channels_last",
    "encoder.compile",
    "augment.decode",
)


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}"))
        return flat
    return {prefix: node}


def _select(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], keys: tuple[str, ...] = MUST_MATCH
) -> list[str]:
    """`key=<saved> there, <current> now` for every leaf under `keys` that differs."""
    differences = []
    for key in keys:
        old = _flatten(_select(saved, key), key)
        new = _flatten(_select(current, key), key)
        for leaf in sorted(set(old) | set(new)):
            if leaf not in NEVER_COMPARED and old.get(leaf) != new.get(leaf):
                differences.append(f"{leaf}={old.get(leaf)!r} there, {new.get(leaf)!r} now")
    return differences


def _container(node: Any) -> dict[str, Any]:
    container = (
        OmegaConf.to_container(node, resolve=True, enum_to_str=True)
        if isinstance(node, DictConfig)
        else node
    )
    return {str(k): v for k, v in container.items()} if isinstance(container, dict) else {}


class ResumePoint(NamedTuple):
    """Where a resumed run starts: its epoch, the optimizer steps already taken, and
    the batches of that epoch already trained (> 0 after a stop mid-epoch)."""

    epoch: int
    global_step: int
    batches_done: int = 0


def _resume_point(ckpt: dict[str, Any]) -> ResumePoint:
    """Read where training stood from Lightning's loop state in a checkpoint.

    End-of-epoch checkpoints are taken in ``on_train_epoch_end``, after the loop
    counted the epoch processed (or after its last batch); one taken mid-epoch
    (simclr.training.preemption) is in an epoch started but not processed, some batches into it.
    """
    fit = (ckpt.get("loops") or {}).get("fit_loop") or {}
    epochs = (fit.get("epoch_progress") or {}).get("total") or {}
    batches = fit.get("epoch_loop.batch_progress") or {}
    step, epoch = int(ckpt.get("global_step", 0)), int(ckpt.get("epoch", -1))
    unfinished = int(epochs.get("processed", 0)) < int(epochs.get("started", 0))
    if unfinished and not batches.get("is_last_batch", False):
        done = int((batches.get("current") or {}).get("completed", 0))
        return ResumePoint(epoch, step, done)
    return ResumePoint(epoch + 1, step)


def check_resumable(path: Path, cfg: RunConfig) -> ResumePoint:
    """Validate `path` for resuming the run `cfg` describes; return where it resumes.

    Raises:
        CheckpointError: the file is damaged, needs code to unpickle, was not written
            by simclr-pretrain, or holds another model (a MUST_MATCH key differs). A
            difference in a SHOULD_MATCH key only warns.
    """
    from simclr.runs.checkpoints import read_training_checkpoint

    ckpt = read_training_checkpoint(path)
    saved = (ckpt.get("hyper_parameters") or {}).get("config")
    if not isinstance(saved, dict) or "loops" not in ckpt:
        raise CheckpointError(
            f"{path}: not a training checkpoint written by simclr-pretrain "
            "(no config or loop state); move it away or choose another hydra.run.dir"
        )
    current = _container(cfg)
    differences = config_differences(saved, current)
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise CheckpointError(
            f"resume=auto: {path} was written with {differences[0]}{more}; resume with the "
            "run's own settings (see its .hydra/config.yaml) or choose another hydra.run.dir"
        )
    point = _resume_point(ckpt)
    _check_limits(path, point, current)
    changed = config_differences(saved, current, SHOULD_MATCH)
    if changed:
        warnings.warn(
            f"resume=auto: continuing {path} with changed settings ({'; '.join(changed)}); "
            "the result will differ from an uninterrupted run",
            stacklevel=2,
        )
    return point


def _check_limits(path: Path, point: ResumePoint, current: dict[str, Any]) -> None:
    """CheckpointError if the checkpoint is past `trainer.max_epochs` / `max_steps`."""
    trainer = current.get("trainer") or {}
    for key, done, unit in (
        ("max_epochs", point.epoch, "epochs"),
        ("max_steps", point.global_step, "steps"),
    ):
        limit = trainer.get(key)
        if isinstance(limit, int) and limit >= 0 and done > limit:
            raise CheckpointError(
                f"resume=auto: {path} has trained {done} {unit}, more than "
                f"trainer.{key}={limit}; pass trainer.{key}={done} or more to continue it"
            )


class EpochSeeding(Callback):
    """Reseed torch, numpy and `random` from (seed, epoch, rank) as each epoch starts."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        reseed_globals(self.seed, trainer.current_epoch, trainer.global_rank)


def last_good_checkpoint(trainer: pl.Trainer | None) -> str:
    """The path of the newest checkpoint this run can resume from, for messages."""
    callback = getattr(trainer, "checkpoint_callback", None) if trainer is not None else None
    for candidate in (
        getattr(callback, "last_model_path", ""),
        os.path.join(str(getattr(callback, "dirpath", "") or ""), LAST + CHECKPOINT_SUFFIX),
    ):
        if candidate and os.path.isfile(candidate):
            return candidate
    return "none was written yet"


class _KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, told to keep the rows an interrupted run logged."""

    def __init__(self, log_dir: str, keep_before_step: int) -> None:
        self._keep_before_step = keep_before_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if _step(r) < self._keep_before_step]
        if not rows:
            path.unlink()
            return
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
        self.metrics_keys = sorted(header)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")


class ResumableCSVLogger(CSVLogger):
    """CSVLogger that keeps `metrics.csv` rows of steps before `keep_before_step`.

    A fresh run passes 0 (any old file is cleared, as Lightning does); a resumed
    run passes the checkpoint's global step, so the steps replayed after the
    restart are not logged twice.
    """

    def __init__(self, save_dir: str, keep_before_step: int = 0, **kwargs: Any) -> None:
        super().__init__(save_dir, **kwargs)
        self._keep_before_step = int(keep_before_step)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The writer, created on first use in the log directory."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(self.log_dir, self._keep_before_step)
        return self._experiment
