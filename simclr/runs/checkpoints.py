"""Checkpoint and weight files: read safely, written atomically, with the umask's permission bits.

The permission bits of the files the toolkit writes: what the umask allows.

A file created with `open()` gets `0o666 & ~umask`; files written through a
temporary file (`tempfile.mkstemp` makes them 0600, and so does the safetensors
writer) would keep the temporary's private mode after the rename, so a colleague
on a shared disk could not read an exported encoder or a checkpoint. Such writers
give the finished file `shared_mode()`, the mode `open()` would have given it.

Reading a checkpoint or safetensors file safely, whoever asks (training, resume, the hub).

The kind is decided from the file's first bytes, not its name, so a renamed file is
still read correctly and a file of another kind gets a clear error. Checkpoints
are unpickled with `torch.load(weights_only=True)`: a file that would need
arbitrary code to unpickle is refused, and that code never runs.

Checkpoint files that are either whole or absent: Lightning's CheckpointIO, made atomic.

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

import argparse
import contextlib
import json
import os
import pickle
import re
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO

from simclr.errors import CheckpointError, OutputError

_lock = threading.Lock()


def current_umask() -> int:
    """This process's umask, read without changing it where the OS allows (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _lock:  # elsewhere: set and restore (other threads see 0o022 for an instant)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def shared_mode() -> int:
    """The mode `open(path, "w")` gives a new file: `0o666` less the umask."""
    return 0o666 & ~current_umask()


def give_default_mode(target: int | Path) -> None:
    """Set a written file's mode (by descriptor or path) to `shared_mode()`."""
    if isinstance(target, int):
        os.fchmod(target, shared_mode())
    else:
        os.chmod(target, shared_mode())


EXPECTED = "a simclr-pretrain run directory, a Lightning .ckpt or a .safetensors file"
# torch.save writes a zip archive; very old torch wrote a bare pickle (protocol 2).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80\x02"


def sniff(path: Path) -> str:
    """'ckpt' or 'safetensors', from the first bytes; CheckpointError for anything else."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as err:
        raise CheckpointError(
            f"{path}: cannot be read ({err.strerror}); expected {EXPECTED}"
        ) from None
    # safetensors first: its 8-byte little-endian header length may begin with 0x80.
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if 0 < header_len < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC):
        return "ckpt"
    if not head:
        raise CheckpointError(f"{path}: the file is empty; expected {EXPECTED}")
    raise CheckpointError(f"{path}: not a checkpoint or safetensors file; expected {EXPECTED}")


def _unsupported_global(message: str) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"global[: ]+([\w.]+)", message)
    return found.group(1) if found else message.strip().splitlines()[0]


def load_torch_file(path: Path) -> Any:
    """Unpickle a file written by `torch.save` with weights_only=True; refuse anything
    that needs code. `argparse.Namespace` is allowed: timm's train.py stores its
    arguments as one, and rebuilding it only sets attributes."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused: unpickling it would run code ({_unsupported_global(str(err))}); "
            "only weights-only checkpoints (tensors, numbers, strings, dicts) are read"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        # torch's messages run to several sentences; the first says what went wrong.
        text = str(err).strip()
        first = text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(err).__name__
        raise CheckpointError(
            f"{path}: truncated or damaged checkpoint ({first}); expected a complete Lightning .ckpt"
        ) from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint (a dict with a `state_dict`), read as `load_torch_file` does."""
    ckpt = load_torch_file(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(
            f"{path}: no 'state_dict' inside; expected a Lightning checkpoint written by "
            "simclr-pretrain or lightning-bolts SimCLR"
        )
    return ckpt


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a `.safetensors` file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: truncated or damaged safetensors file ({err}); expected a file written "
            "by simclr-export"
        ) from None
    return tensors, metadata


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when it is absent or unreadable (metadata only)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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
        give_default_mode(fd)  # mkstemp makes 0600; a checkpoint gets the umask's mode
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
