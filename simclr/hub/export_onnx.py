"""Writing an encoder as ONNX with torch's `torch.export`-based exporter.

The legacy TorchScript-based exporter (`dynamo=False`) still works offline in
torch 2.14 but warns that it will be removed; the `torch.export` one needs the
`onnxscript` package (the `export` extra installs it with `onnx` and `onnxruntime`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
