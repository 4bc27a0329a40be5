"""The checkpoint callbacks: `best.ckpt` without a second copy, and `last.ckpt` at the end.

`best.ckpt` without a second full copy of the run on disk.

The best epoch is usually the last one saved (the monitored metric improves), so
when best is saved at the step `last.ckpt` was just written, best.ckpt becomes a
hard link to last.ckpt: one file, two names, no extra bytes. Checkpoints are
replaced atomically (:mod:`simclr.runs.checkpoints` renames a new file over the old
one), so when last.ckpt is next rewritten the link keeps the old content: best.ckpt
stays the best epoch's checkpoint. At that moment it is rewritten weights-only
(no optimizer, scheduler or callback state; what `load_encoder` reads), which is
also how best is saved at a step last was not, or where hard links are refused
(some network or FAT file systems).

Nothing resumes from best.ckpt (`resume=auto` continues from last.ckpt, which is
always whole), so it needs no training state.

`last.ckpt` always holds the weights training ended with.

The `last` ModelCheckpoint saves every `trainer.checkpoint_every_n_epochs` epochs;
when training stops between two of those saves (max_epochs not a multiple of it,
a time budget, a max_steps limit), this callback writes the final state there.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any
from weakref import proxy

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from simclr.runs.checkpoints import (
    TEMP_SUFFIX,
    atomic_torch_save,
    read_training_checkpoint,
    temp_prefix,
)
from simclr.runs.rundir import LAST, RunDir

# What a weights-only Lightning checkpoint leaves out of a full one (see Lightning's
# `_CheckpointConnector.dump_checkpoint`), besides the precision plugin's own key.
TRAINING_STATE_KEYS = ("optimizer_states", "lr_schedulers", "callbacks")


def last_checkpoint(run: RunDir, every_n_epochs: int | None = None) -> ModelCheckpoint:
    """The callback that keeps `checkpoints/last.ckpt`, what `resume=auto` continues from.

    Rewritten every `every_n_epochs` epochs (each epoch by default). ModelCheckpoint's own
    `save_last` follows only the saves of a new best since Lightning 2.5, which would leave
    last.ckpt behind whenever the monitored metric stalls; hence a checkpoint of its own.
    """
    return ModelCheckpoint(
        dirpath=str(run.checkpoints),
        filename=LAST,
        monitor=None,
        save_top_k=1,
        every_n_epochs=every_n_epochs,
        enable_version_counter=False,
    )


def weights_only(checkpoint: dict[str, Any], precision_key: str | None = None) -> dict[str, Any]:
    """`checkpoint` without the training state a weights-only save omits."""
    drop = {*TRAINING_STATE_KEYS, *([precision_key] if precision_key else [])}
    return {k: v for k, v in checkpoint.items() if k not in drop}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def hard_link_over(source: Path, target: Path) -> bool:
    """Make `target` a hard link to `source`, atomically replacing any `target`;
    False (and `target` untouched) where the file system refuses."""
    tmp = target.with_name(f"{temp_prefix(target)}link{TEMP_SUFFIX}")
    with contextlib.suppress(OSError):
        tmp.unlink()
    try:
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


class BestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint of the best epoch that shares `last`'s file while they are the
    same step and keeps only the weights once they differ (see module docstring)."""

    def __init__(self, last: ModelCheckpoint, last_path: str | Path, **kwargs: Any) -> None:
        super().__init__(save_weights_only=True, **kwargs)
        self.last = last
        self.last_path = Path(last_path)
        # Whether best.ckpt may hold a full checkpoint (a link to a last.ckpt that was
        # replaced since). Unknown after a resume, hence True until checked.
        self._may_be_full = True

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        linked = False
        if "://" not in filepath and self._last_step() == trainer.global_step:
            if trainer.is_global_zero:  # the rank that writes checkpoints
                linked = self.last_path.is_file() and hard_link_over(self.last_path, Path(filepath))
            linked = bool(trainer.strategy.broadcast(linked, src=0))  # every rank agrees
        if not linked:
            super()._save_checkpoint(trainer, filepath)  # weights-only
            self._may_be_full = False
            return
        # What ModelCheckpoint records after a save of its own.
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        self._may_be_full = True
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _last_step(self) -> int:
        # Lightning's record of the step a ModelCheckpoint last saved (as FinalCheckpoint reads).
        return int(getattr(self.last, "_last_global_step_saved", -1))

    def _unshare(self, trainer: pl.Trainer) -> None:
        """Rewrite best.ckpt weights-only once last.ckpt has moved past it."""
        best = Path(self.best_model_path) if self.best_model_path else None
        if not trainer.is_global_zero or not self._may_be_full or best is None:
            return
        if not best.is_file() or "://" in str(best):
            self._may_be_full = False
            return
        if _same_file(best, self.last_path):
            return  # still the same step: one file for both
        checkpoint = read_training_checkpoint(best)
        if any(k in checkpoint for k in TRAINING_STATE_KEYS):
            precision = type(trainer.precision_plugin).__qualname__
            atomic_torch_save(weights_only(checkpoint, precision), best)
        self._may_be_full = False

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._unshare(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._unshare(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # FinalCheckpoint (which runs before checkpoint callbacks) may just have
        # rewritten last.ckpt after the last periodic save.
        super().on_train_end(trainer, pl_module)
        self._unshare(trainer)


class FinalCheckpoint(Callback):
    """Save `periodic`'s file at the end of training unless it already holds the last step."""

    def __init__(self, periodic: ModelCheckpoint, path: str) -> None:
        self.periodic = periodic
        self.path = path

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning's own record of the step and file it last saved. (`last_model_path`
        # is only set with save_last, which `periodic` does not use: testing it made
        # every run write last.ckpt twice at its final step.)
        saved_step = getattr(self.periodic, "_last_global_step_saved", -1)
        saved_file = getattr(self.periodic, "_last_checkpoint_saved", "")
        if saved_step != trainer.global_step or not saved_file:
            trainer.save_checkpoint(self.path)  # every rank calls it; rank 0 writes
