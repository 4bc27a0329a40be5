"""Exporting an encoder: safetensors, ONNX and TorchScript files with their preprocessing metadata.

Writing an encoder as ONNX with torch's `torch.export`-based exporter.

The legacy TorchScript-based exporter (`dynamo=False`) still works offline in
torch 2.14 but warns that it will be removed; the `torch.export` one needs the
`onnxscript` package (the `export` extra installs it with `onnx` and `onnxruntime`).

Writing an encoder as TorchScript (`torch.jit.trace`), metadata in `_extra_files`.

The file loads with `torch.jit.load` alone: no simclr, torchvision or timm needed.
torch 2.14 marks `torch.jit` deprecated (a FutureWarning) in favour of `torch.export`;
it is silenced here, where TorchScript is what the user asked for.

Deployment exports (ONNX, TorchScript): the traced encoder plus what it needs to be used.

Both formats hold the encoder alone, float32 on the CPU, in eval mode (BatchNorm
uses its running statistics), with a dynamic batch axis: input `images`
(batch, 3, S, S), normalised as below; output `features` (batch, D). Their metadata
(ONNX `metadata_props`, TorchScript `_extra_files["simclr_metadata.json"]`) holds:

- `preprocessing`: the evaluation transform the encoder was trained for, read off
  :func:`simclr.data.views.build_eval_transform` (resize the shorter side, center-crop,
  scale to [0, 1], normalise with mean/std);
- `provenance`: arch, stem, timm name, origin, source file, epoch and step, data set;
- `metrics`: the run's headline metric from report.json, when there is one;
- `input`/`output`: names and shapes; `config`: the full training config; the versions.

Writing an encoder to a safetensors, ONNX or TorchScript file (the library side of
`simclr-export`).

DEST's suffix picks the format: `.safetensors` (weights), `.onnx` and `.pt`
(traced for deployment, see :mod:`simclr.hub.export`). An existing DEST is
refused unless `force`; the file is written beside DEST and renamed into place.

The safetensors file holds tensors only (no pickle). Encoder keys are torchvision's, so
`torchvision.models.resnetXX()` with `fc` set aside loads them with strict=True
(a `stem=cifar` encoder needs the 3x3/1 `conv1` and no max-pool first; see
docs/hub.md). The header metadata carries the architecture, stem, training
config and report metrics as JSON, which `load_encoder` reads back.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn
from torchvision.transforms import v2

from simclr.config.schema import typed_config
from simclr.errors import OutputError
from simclr.hub.loading import read_weights
from simclr.hub.weights import FORMAT, EncoderWeights
from simclr.runs.checkpoints import give_default_mode
from simclr.runs.output import check_replaceable

# Opset 18 is the exporter's own and runs on onnxruntime >= 1.14, so older runtimes
# in deployment still load the file.
OPSET = 18
# What the exporter imports (onnxruntime is only for checking the file), and where from.
REQUIRED = ("onnx", "onnxscript")
EXTRA = "pip install 'simclr[export]'"


def as_strings(meta: dict[str, Any]) -> dict[str, str]:
    """Flat string values (nested ones as JSON): metadata_props holds strings only."""
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in meta.items()}


def write_onnx(tmp: Path, encoder: nn.Module, example: torch.Tensor, meta: dict[str, Any]) -> None:
    """Export `encoder` (batch axis dynamic) with `meta` in the model's metadata_props;
    the input and output names are `meta["input"]["name"]`, `meta["output"]["name"]`."""
    import onnx

    input_name, output_name = meta["input"]["name"], meta["output"]["name"]

    program = torch.onnx.export(
        encoder,
        (example,),
        dynamo=True,
        input_names=[input_name],
        output_names=[output_name],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=OPSET,
        verbose=False,
    )
    assert program is not None
    model = program.model_proto
    props = as_strings({**meta, "opset": str(OPSET)})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = (
        f"SimCLR encoder ({meta['provenance'].get('arch')}): {input_name} -> {output_name}; "
        "preprocessing in metadata_props['preprocessing']"
    )
    onnx.checker.check_model(model)
    onnx.save_model(model, str(tmp))


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


DEPLOY_FORMAT_VERSION = "1"
INPUT_NAME, OUTPUT_NAME = "images", "features"
# Traced with two images: one would let torch.export treat the batch axis as constant.
EXAMPLE_BATCH = 2


def preprocessing(config: dict[str, Any]) -> dict[str, Any]:
    """The evaluation transform of a training config, as plain numbers."""
    from simclr.data.views import build_eval_transform

    cfg = typed_config(config)
    size = cfg.data.image_size
    out: dict[str, Any] = {"image_size": size, "color": "RGB", "layout": "NCHW"}
    for step in build_eval_transform(cfg.augment, size).transforms:
        if isinstance(step, v2.Resize):
            out["resize_shorter_side"] = int(step.size[0]) if step.size else size
            out["interpolation"] = getattr(step.interpolation, "value", str(step.interpolation))
            out["antialias"] = bool(step.antialias)
        elif isinstance(step, v2.CenterCrop):
            out["center_crop"] = [int(s) for s in step.size]
        elif isinstance(step, v2.ToDtype):
            out["scale"] = 1 / 255 if step.scale else 1.0
        elif isinstance(step, v2.Normalize):
            out["mean"] = [float(m) for m in step.mean]
            out["std"] = [float(s) for s in step.std]
    out["description"] = (
        f"resize the shorter side to {out.get('resize_shorter_side')} px "
        f"({out.get('interpolation')}), center-crop {size}x{size}, RGB float32 in [0, 1] "
        "(divide uint8 by 255), subtract mean and divide by std per channel, NCHW"
    )
    return out


def provenance(source: Path, weights: EncoderWeights) -> dict[str, Any]:
    """Where the weights come from: architecture, toolkit, file, training progress."""
    config = weights.config
    out: dict[str, Any] = {
        "arch": weights.arch,
        "stem": weights.stem,
        "origin": weights.origin,
        "source": str(source),
        "dataset": config.get("data", {}).get("name"),
        "preset": config.get("preset"),
    }
    if weights.arch == "timm":
        out["timm_name"] = config.get("encoder", {}).get("timm_name")
    plain = (bool, int, float, str)
    out.update({k: v for k, v in weights.extra.items() if isinstance(v, plain)})
    return out


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def deployment_metadata(
    source: Path, weights: EncoderWeights, feature_dim: int, kind: str
) -> dict[str, Any]:
    """Everything a deployment file carries besides the graph (see the module docstring)."""
    size = int(typed_config(weights.config).data.image_size)
    headline = weights.metrics.get("headline") if isinstance(weights.metrics, dict) else None
    return {
        "format": FORMAT,
        "format_version": DEPLOY_FORMAT_VERSION,
        "kind": kind,
        "input": {"name": INPUT_NAME, "shape": ["batch", 3, size, size], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", feature_dim], "dtype": "float32"},
        "preprocessing": preprocessing(weights.config),
        "provenance": provenance(source, weights),
        "metrics": {"headline": headline} if isinstance(headline, dict) else {},
        "config": weights.config,
        "versions": {"simclr": _version("simclr"), "torch": torch.__version__},
    }


Writer = Callable[[Path, nn.Module, torch.Tensor, dict[str, Any]], None]


def _writer(kind: str, out: Path) -> Writer:
    """The writer for `kind`, or a one-line error naming the extra to install."""
    if kind == "onnx":
        missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
        if missing:
            raise OutputError(
                f"{out}: writing ONNX needs the {' and '.join(missing)} package(s); "
                f"install the export extra: {EXTRA}"
            )
        return write_onnx
    return write_torchscript


def write_deployable(
    tmp: Path, out: Path, source: Path, weights: EncoderWeights, kind: str
) -> None:
    """Trace the encoder in `weights` and write it to `tmp` as `kind` (onnx | torchscript);
    `out` is the final name, for messages."""
    write = _writer(kind, out)
    encoder = weights.build_encoder(source).float().eval()
    size = int(typed_config(weights.config).data.image_size)
    example = torch.randn(EXAMPLE_BATCH, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feature_dim = int(encoder(example).shape[-1])
    meta = deployment_metadata(source, weights, feature_dim, kind)
    try:
        write(tmp, encoder, example, meta)
    except (OutputError, OSError):
        raise
    except Exception as err:  # the exporters raise many kinds; the user needs one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OutputError(
            f"{out}: exporting the {weights.arch} encoder to {kind} failed ({first})"
        ) from err


# DEST suffix -> format; `.pt` is TorchScript (a plain state dict would be `.safetensors`).
FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".pt": "torchscript"}


def _is_safetensors_export(path: Path) -> bool:
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 2 <= size <= min(path.stat().st_size - 8, 100_000_000):
            return False
        header = json.loads(f.read(size))
    return bool(header.get("__metadata__", {}).get("format") == FORMAT)


def _is_torchscript_export(path: Path) -> bool:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return any(n.endswith(f"/extra/{TORCHSCRIPT_METADATA}") for n in archive.namelist())


def _is_onnx_export(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {"preprocessing", "provenance"} <= {p.key for p in model.metadata_props}


def is_export(path: Path, kind: str) -> bool:
    """Whether `path` is a file `simclr-export` wrote in format `kind` (what --force replaces)."""
    check = {
        "safetensors": _is_safetensors_export,
        "torchscript": _is_torchscript_export,
        "onnx": _is_onnx_export,
    }[kind]
    try:
        return path.is_file() and check(path)
    except Exception:  # any reader's complaint means: not one of ours
        return False


def _check_dest(out: Path, kind: str, source: Path, force: bool) -> None:
    """OutputError for DEST = SOURCE, an existing DEST without `force`, or with it one
    that is not an earlier export of this format (simclr/runs/output.py, rule 3)."""
    if out.resolve() == source.resolve():
        raise OutputError(f"DEST={out} is SOURCE; write the export to another file")
    if out.exists() or out.is_symlink():
        if not force:
            raise OutputError(f"{out}: already exists; pass --force to replace it")
        check_replaceable("DEST", out, is_export(out, kind), f"{kind} export of simclr-export")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: no such directory to write the export into")


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
    _check_dest(out, kind, Path(source).expanduser(), force or overwrite)
    path, weights = read_weights(source, arch=arch, stem=stem)
    if not with_head:
        weights.head_state = None
    elif weights.head_state is None:
        raise OutputError(
            f"{path}: --with-head, but it holds no projection head (a fine-tuned classifier's "
            "head is a class layer, not one); export without --with-head"
        )
    # Write beside the target, then rename, so an interrupted export leaves no half file;
    # the temporary name is new (created exclusively), so no file of the user's is reused.
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if kind == "safetensors":
            save_file(weights.tensors(), str(tmp), metadata=weights.header())
        else:
            write_deployable(tmp, out, path, weights, kind)
        give_default_mode(tmp)  # the safetensors writer makes 0600; honour the umask
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot be written ({err.strerror})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
