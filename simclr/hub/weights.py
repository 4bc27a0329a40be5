"""The weights of one encoder (and optionally its head), independent of the file they came from.

`EncoderWeights` is what every reader (our checkpoints, lightning-bolts
checkpoints, safetensors exports) produces and what the loader and the exporter
consume. Encoder keys are plain torchvision ResNet keys (no `fc`), so the same
tensors load into `torchvision.models.resnetXX()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from simclr.config.choices import EncoderStem
from simclr.config.schema import typed_config
from simclr.errors import CheckpointError
from simclr.models.encoder import build_encoder, build_resnet
from simclr.models.head import build_head, projection_from_state

FORMAT = "simclr-encoder"
FORMAT_VERSION = "1"
# lightning-bolts' STL-10 recipe: the 7x7/2 ImageNet conv but no max-pool.
STEM_NO_MAXPOOL = EncoderStem.imagenet_nomaxpool.value
STEMS = ("imagenet", "cifar", STEM_NO_MAXPOOL)


@dataclass
class EncoderWeights:
    """An encoder's state dict plus what is needed to rebuild and describe it."""

    arch: str
    stem: str
    encoder_state: dict[str, torch.Tensor]
    config: dict[str, Any]
    origin: str = "simclr"  # simclr | lightning-bolts
    head_kind: str = "none"  # none | simclr | bolts
    head_state: dict[str, torch.Tensor] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def build_encoder(self, source: Path) -> nn.Module:
        """The encoder module with these weights loaded (strict)."""
        cfg = typed_config(self.config)
        if self.arch == "timm":
            model = build_encoder(cfg.encoder)
        else:
            model = build_resnet(self.arch, self.stem)
        _load_strict(model, self.encoder_state, source, f"a {self.arch} encoder (stem {self.stem})")
        return model

    def build_head(self, source: Path, feature_dim: int) -> nn.Module:
        """The projection head with these weights loaded (strict)."""
        if self.head_state is None or self.head_kind == "none":
            raise CheckpointError(
                f"{source}: holds no projection head; export it with `simclr-export --with-head` "
                "or load the training checkpoint"
            )
        head: nn.Module
        if self.head_kind == "bolts":
            head = projection_from_state(self.head_state)
        else:
            head = build_head(typed_config(self.config).head, feature_dim)
        _load_strict(head, self.head_state, source, f"the {self.head_kind} projection head")
        return head

    def header(self) -> dict[str, str]:
        """The safetensors header metadata (string values; nested ones as JSON)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "origin": self.origin,
            "arch": self.arch,
            "stem": self.stem,
            "head": self.head_kind if self.head_state is not None else "none",
            "config": json.dumps(self.config, sort_keys=True),
            "metrics": json.dumps(self.metrics, sort_keys=True),
            "extra": json.dumps(self.extra, sort_keys=True),
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        """Flat tensors for safetensors: encoder keys bare, head keys under `head.`."""
        out = {k: v.contiguous() for k, v in self.encoder_state.items()}
        if self.head_state is not None:
            out.update({f"head.{k}": v.contiguous() for k, v in self.head_state.items()})
        return out


def from_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], header: dict[str, str]
) -> EncoderWeights:
    """Rebuild EncoderWeights from a file written by `simclr-export`."""
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a safetensors file without simclr metadata (format={header.get('format')!r}); "
            "expected a file written by simclr-export"
        )
    try:
        config = json.loads(header["config"])
        metrics = json.loads(header.get("metrics", "{}"))
        extra = json.loads(header.get("extra", "{}"))
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: damaged simclr metadata ({err})") from None
    head = {k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")}
    encoder = {k: v for k, v in tensors.items() if not k.startswith("head.")}
    return EncoderWeights(
        arch=header.get("arch", ""),
        stem=header.get("stem", "imagenet"),
        encoder_state=encoder,
        config=config,
        origin=header.get("origin", "simclr"),
        head_kind=header.get("head", "none") if head else "none",
        head_state=head or None,
        metrics=metrics,
        extra=extra,
    )


def _strip_compiled(key: str) -> str:
    # torch.compile wraps a module as `_orig_mod`; its checkpoints carry that in the keys.
    return key.replace("_orig_mod.", "")


def from_simclr_checkpoint(path: Path, ckpt: dict[str, Any]) -> EncoderWeights:
    """EncoderWeights from a checkpoint written by simclr-pretrain."""
    saved = ckpt.get("hyper_parameters", {}).get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"{path}: no hyper_parameters['config']; expected a simclr checkpoint"
        )
    config = OmegaConf.to_container(typed_config(saved), resolve=True, enum_to_str=True)
    assert isinstance(config, dict)
    encoder: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    for key, value in ckpt["state_dict"].items():
        key = _strip_compiled(key)
        if key.startswith("encoder."):
            encoder[key[len("encoder.") :]] = value
        elif key.startswith("head."):
            head[key[len("head.") :]] = value
    if not encoder:
        raise CheckpointError(f"{path}: no 'encoder.*' weights in the state_dict")
    enc = config["encoder"]
    return EncoderWeights(
        arch=str(enc["arch"]),
        stem=str(enc["stem"]),
        encoder_state=encoder,
        config=config,  # type: ignore[arg-type]
        origin="simclr",
        head_kind="simclr" if head else "none",
        head_state=head or None,
        extra={"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")},
    )


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: Path, what: str) -> None:
    # Checked by hand first: load_state_dict raises a multi-line error on size mismatches.
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrong = [k for k, v in state.items() if k in shapes and tuple(v.shape) != shapes[k]]
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    if wrong:
        k = wrong[0]
        detail = f"{k} has shape {tuple(state[k].shape)}, expected {shapes[k]}"
    elif missing:
        detail = f"{len(missing)} missing, e.g. {missing[0]}"
    elif unexpected:
        detail = f"{len(unexpected)} unexpected, e.g. {unexpected[0]}"
    else:
        model.load_state_dict(state, strict=True)
        return
    raise CheckpointError(f"{source}: the weights do not fit {what} ({detail})")
