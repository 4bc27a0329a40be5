"""Writing an encoder as TorchScript (`torch.jit.trace`), metadata in `_extra_files`.

The file loads with `torch.jit.load` alone: no simclr, torchvision or timm needed.
torch 2.14 marks `torch.jit` deprecated (a FutureWarning) in favour of `torch.export`;
it is silenced here, where TorchScript is what the user asked for.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

# The name `torch.jit.load(path, _extra_files={TORCHSCRIPT_METADATA: ''})` reads back.
TORCHSCRIPT_METADATA = "simclr_metadata.json"


def write_torchscript(
    tmp: Path, encoder: nn.Module, example: torch.Tensor, meta: dict[str, Any]
) -> None:
    """Trace `encoder` on `example` and save it with `meta` as `simclr_metadata.json`."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
        # A ResNet's forward has no data-dependent branches, so the trace is the model;
        # check_trace re-runs it and compares, catching one that is not.
        traced = torch.jit.trace(encoder, example, check_trace=True)
        extra = {TORCHSCRIPT_METADATA: json.dumps(meta, sort_keys=True)}
        torch.jit.save(traced, str(tmp), _extra_files=extra)
