"""Writing an encoder's weights to a safetensors file (the library side of `simclr-export`).

The file holds tensors only (no pickle). Encoder keys are torchvision's, so
`torchvision.models.resnetXX()` with `fc` set aside loads them with strict=True
(a `stem=cifar` encoder needs the 3x3/1 `conv1` and no max-pool first; see
docs/hub.md). The header metadata carries the architecture, stem, training
config and report metrics as JSON, which `load_encoder` reads back.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from simclr.errors import OutputError
from simclr.hub.loading import read_weights


def export_encoder(
    source: str | Path, dest: str | Path, *, with_head: bool = False, overwrite: bool = False
) -> Path:
    """Export the encoder in `source` (run dir, .ckpt or .safetensors) to `dest`.

    Args:
        with_head: also store the projection head, under keys `head.*`.
        overwrite: replace an existing `dest` instead of refusing.

    Returns:
        The path written.
    """
    out = Path(dest).expanduser()
    if out.suffix != ".safetensors":
        raise OutputError(
            f"{out}: the export is a safetensors file; expected a name ending in .safetensors"
        )
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: no such directory to write the export into")
    _, weights = read_weights(source)
    if not with_head:
        weights.head_state = None
    # Write beside the target, then rename, so an interrupted export leaves no half file.
    tmp = out.with_name(out.name + ".partial")
    try:
        save_file(weights.tensors(), str(tmp), metadata=weights.header())
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot be written ({err.strerror})") from None
    return out
