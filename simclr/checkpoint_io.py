"""Checkpoint files that are either whole or absent: Lightning's CheckpointIO, made atomic.

Lightning's own writer truncates the target and then writes into it, so a job
killed (pre-emption, OOM killer, `kill -9`) or a disk filling up during the save
leaves a `last.ckpt` that cannot be loaded, and the run cannot resume.
:class:`AtomicCheckpointIO` writes to a temporary file in the same directory,
flushes and fsyncs it, then `os.replace`s it over the target (atomic on POSIX
file systems) and fsyncs the directory: at every instant the target is the
previous complete checkpoint or the new complete one.

Reading goes through `torch.load(weights_only=True)`: a checkpoint that would
need code to unpickle is refused, and a damaged one is named in one line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO

from simclr.checkpoint_file import read_checkpoint, sniff
from simclr.errors import CheckpointError, OutputError

TEMP_SUFFIX = ".tmp"


def temp_prefix(target: Path) -> str:
    """Name prefix of the temporary files a save of `target` writes (hidden, same dir)."""
    return f".{target.name}."


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; some file systems cannot open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_torch_save(obj: Any, target: Path) -> None:
    """`torch.save(obj, target)` such that `target` is never left half-written.

    Raises:
        OutputError: the disk is full or the directory unwritable; `target` (if it
            existed) is unchanged and no temporary file is left behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(temp_prefix(target) + "*" + TEMP_SUFFIX):
        with contextlib.suppress(OSError):  # left by a save that was killed
            stale.unlink()
    fd, tmp_name = tempfile.mkstemp(
        prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; checkpoints are shared like other outputs
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise OutputError(
                f"cannot write checkpoint {target}: {err.strerror or err}; "
                f"the previous {target.name} (if any) is intact"
            ) from None
        raise
    _fsync_directory(target.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO plugin: atomic saves, weights-only loads with clear errors."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Write `checkpoint` to `path` atomically (see module docstring)."""
        if "://" in str(path):  # remote (fsspec) storage: Lightning's writer
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(
        self,
        path: _PATH,
        map_location: Callable | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Read a checkpoint with `weights_only=True`; CheckpointError names a bad file."""
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return read_training_checkpoint(Path(path))


def read_training_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint read weights-only; CheckpointError (one line) otherwise.

    Named errors: no such file, empty, not a checkpoint at all, truncated or damaged,
    and "refused" for one that needs code to unpickle (which never runs).
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected a Lightning .ckpt")
    if sniff(path) != "ckpt":
        raise CheckpointError(f"{path}: a safetensors export, not a training checkpoint")
    return read_checkpoint(path)
