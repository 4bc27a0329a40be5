"""Fine-tuned classifiers as files: write one, read it back whole or as an encoder.

A classifier checkpoint is a Lightning-free `torch.save` dict that
`torch.load(weights_only=True)` reads (tensors, numbers, strings only):

    format: "simclr-classifier", format_version: "1"
    hyper_parameters: {"config": the pretraining run config}
    state_dict: {"encoder.<key>": ..., "classifier.projection.<key>": ..., "classifier.head.<key>": ...}
    classifier: {"num_classes", "from_head_layer", "classes", and what made it: fraction, seed, ...}

Its `encoder.*` keys and `hyper_parameters` are laid out as in a simclr-pretrain
checkpoint, so :func:`simclr.hub.load_encoder` and `simclr-export` read the
(fine-tuned) encoder out of it unchanged; :func:`load_classifier` returns all of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from simclr.errors import CheckpointError, OutputError
from simclr.hub.loading import load_encoder, read_weights, resolve
from simclr.models.classifier import Classifier, attach_head, build_classifier
from simclr.runs import checkpoints as checkpoint_file

FORMAT = "simclr-classifier"
FORMAT_VERSION = "1"
PREFIX = "classifier."


def load_encoder_with_head(source: str | Path) -> nn.Module:
    """`load_encoder(source)`, carrying its projection head for fine-tuning when it has one."""
    _, weights = read_weights(source)
    if weights.head_state is None:
        return load_encoder(source)
    encoder, head = load_encoder(source, with_head=True)
    return attach_head(encoder, head)


def save_classifier(
    model: Classifier, path: str | Path, config: dict[str, Any], info: dict[str, Any]
) -> Path:
    """Write `model` with the run `config` it was pretrained under and `info` (plain values).

    Refuses to overwrite; writes beside the target and renames, so an interrupted
    write leaves no half file.
    """
    out = Path(path)
    if out.exists():
        raise OutputError(f"{out}: already exists; choose another output directory")
    state = {f"encoder.{k}": v.detach().cpu() for k, v in model.encoder.state_dict().items()}
    for key, value in model.state_dict().items():
        if not key.startswith("encoder."):
            state[PREFIX + key] = value.detach().cpu()
    num_classes = int(model.head.out_features)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hyper_parameters": {"config": config},
        "state_dict": state,
        "classifier": {
            **info,
            "num_classes": num_classes,
            "from_head_layer": int(model.from_head_layer),
        },
    }
    tmp = out.with_name(out.name + ".partial")
    try:
        torch.save(payload, tmp)
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot be written ({err.strerror})") from None
    return out


def read_classifier_info(source: str | Path) -> tuple[Path, dict[str, Any]]:
    """The file behind `source` and its `classifier` block; CheckpointError if it has none."""
    path = resolve(source)
    ckpt = checkpoint_file.read_checkpoint(path) if checkpoint_file.sniff(path) == "ckpt" else {}
    info = ckpt.get("classifier")
    if ckpt.get("format") != FORMAT or not isinstance(info, dict):
        raise CheckpointError(
            f"{path}: not a fine-tuned classifier; expected a classifier.ckpt written by "
            "simclr-finetune"
        )
    return path, info


def load_classifier(source: str | Path) -> Classifier:
    """The whole fine-tuned classifier in `source` (a classifier.ckpt or the directory
    holding it), on the CPU, in eval mode, with `.transform` and `.meta` as
    :func:`simclr.hub.load_encoder` gives an encoder (`.meta["classifier"]`: the info)."""
    from simclr.config.schema import typed_config
    from simclr.models.head import build_head

    path, info = read_classifier_info(source)
    encoder = load_encoder(path)
    meta: dict[str, Any] = dict(encoder.meta)  # type: ignore[arg-type]
    layer = int(info.get("from_head_layer", 0))
    dim = int(meta["feature_dim"])
    head = build_head(typed_config(meta["config"]).head, dim) if layer else None
    model = build_classifier(encoder, int(info["num_classes"]), dim, head, layer)
    ckpt = checkpoint_file.read_checkpoint(path)
    state = {k[len(PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(PREFIX)}
    own = {k for k in model.state_dict() if not k.startswith("encoder.")}
    if set(state) != own:
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        detail = f"missing {missing[:1]}" if missing else f"unexpected {unexpected[:1]}"
        raise CheckpointError(f"{path}: the classifier weights do not fit its config ({detail})")
    try:
        model.load_state_dict({**model.state_dict(), **state}, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path}: the classifier weights do not fit ({first})") from None
    model.transform = encoder.transform  # type: ignore[assignment]
    model.meta = {**meta, "classifier": info}  # type: ignore[assignment]
    return model.eval()
