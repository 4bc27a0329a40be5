"""Which weights file a source names: a file itself, or the checkpoint inside a run directory."""

from __future__ import annotations

from pathlib import Path

from simclr.checkpoint_file import EXPECTED
from simclr.errors import CheckpointError
from simclr.rundir import RunDir


def resolve(source: str | Path) -> Path:
    """The weights file a source names: itself, or the checkpoint inside a run directory."""
    path = Path(source).expanduser()
    if path.is_dir():
        run = RunDir(path)
        for candidate in run.weights_preference:
            if candidate.is_file():
                return candidate
        singles = sorted(path.glob("*.ckpt")) + sorted(path.glob("*.safetensors"))
        if len(singles) == 1:
            return singles[0]
        names = " or ".join(str(p.relative_to(path)) for p in run.weights_preference)
        raise CheckpointError(
            f"{path}: no {names} inside; expected a simclr-pretrain run directory"
        )
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; expected {EXPECTED}")
    return path
