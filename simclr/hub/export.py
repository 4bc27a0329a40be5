"""Writing an encoder to a safetensors, ONNX or TorchScript file (the library side of
`simclr-export`).

DEST's suffix picks the format: `.safetensors` (weights), `.onnx` and `.pt`
(traced for deployment, see :mod:`simclr.hub.deploy`). An existing DEST is
refused unless `force`; the file is written beside DEST and renamed into place.

The safetensors file holds tensors only (no pickle). Encoder keys are torchvision's, so
`torchvision.models.resnetXX()` with `fc` set aside loads them with strict=True
(a `stem=cifar` encoder needs the 3x3/1 `conv1` and no max-pool first; see
docs/hub.md). The header metadata carries the architecture, stem, training
config and report metrics as JSON, which `load_encoder` reads back.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from simclr.errors import OutputError
from simclr.hub.deploy import write_deployable
from simclr.hub.loading import read_weights

# DEST suffix -> format; `.pt` is TorchScript (a plain state dict would be `.safetensors`).
FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".pt": "torchscript"}


def export_encoder(
    source: str | Path,
    dest: str | Path,
    *,
    with_head: bool = False,
    force: bool = False,
    overwrite: bool = False,
    arch: str | None = None,
    stem: str | None = None,
) -> Path:
    """Export the encoder in `source` (run dir, .ckpt, .safetensors, or another
    toolkit's weights) to `dest`, in the format its suffix names (see FORMATS).

    Args:
        with_head: also store the projection head, under keys `head.*` (safetensors only).
        force: replace an existing `dest` instead of refusing (`overwrite` is the old name).
        arch, stem: for weights that do not record them (see `load_encoder`).

    Returns:
        The path written.
    """
    out = Path(dest).expanduser()
    kind = FORMATS.get(out.suffix)
    if kind is None:
        raise OutputError(
            f"{out}: unknown export format; expected a name ending in {', '.join(FORMATS)}"
        )
    if with_head and kind != "safetensors":
        raise OutputError(f"{out}: --with-head is for .safetensors; {kind} holds the encoder")
    if out.exists() and not (force or overwrite):
        raise OutputError(f"{out}: already exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: no such directory to write the export into")
    path, weights = read_weights(source, arch=arch, stem=stem)
    if not with_head:
        weights.head_state = None
    # Write beside the target, then rename, so an interrupted export leaves no half file.
    tmp = out.with_name(out.name + ".partial")
    try:
        if kind == "safetensors":
            save_file(weights.tensors(), str(tmp), metadata=weights.header())
        else:
            write_deployable(tmp, out, path, weights, kind)
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot be written ({err.strerror})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
