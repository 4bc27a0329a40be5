"""Reading a checkpoint or safetensors file safely, whoever asks (training, resume, the hub).

The kind is decided from the file's first bytes, not its name, so a renamed file is
still read correctly and a file of another kind gets a clear error. Checkpoints
are unpickled with `torch.load(weights_only=True)`: a file that would need
arbitrary code to unpickle is refused, and that code never runs.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import torch

from simclr.errors import CheckpointError

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
