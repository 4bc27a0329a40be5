"""The permission bits of the files the toolkit writes: what the umask allows.

A file created with `open()` gets `0o666 & ~umask`; files written through a
temporary file (`tempfile.mkstemp` makes them 0600, and so does the safetensors
writer) would keep the temporary's private mode after the rename, so a colleague
on a shared disk could not read an exported encoder or a checkpoint. Such writers
give the finished file `shared_mode()`, the mode `open()` would have given it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

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
