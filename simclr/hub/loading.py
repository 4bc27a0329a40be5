"""`load_encoder`: the weights a source names, as an encoder ready to use (or a random one).

Which weights file a source names: a file itself, or the checkpoint inside a run directory.

`load_encoder`: one call from a run directory, checkpoint or export to a ready encoder.

A randomly initialised encoder, ready to use like a loaded one (torch.hub without weights).

`random_encoder("resnet50")` is what `load_encoder` would return for the same
architecture with untrained weights: eval mode, `.transform` and `.meta`. The
preprocessing is that of weights trained elsewhere on the same architecture
(:mod:`simclr.hub.foreign`: torchvision's ImageNet recipe, 32 px for the CIFAR
stem, a timm model's pretrained config), so swapping in real weights later keeps
the input pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, overload

from torch import nn

from simclr.errors import CheckpointError
from simclr.hub.bolts import from_bolts_checkpoint, is_bolts_checkpoint
from simclr.hub.foreign import TIMM_PREFIX, from_foreign
from simclr.hub.weights import (
    FORMAT,
    EncoderWeights,
    from_safetensors,
    from_simclr_checkpoint,
)
from simclr.models.encoder import build_resnet, build_timm
from simclr.runs import checkpoints as checkpoint_file
from simclr.runs.checkpoints import EXPECTED
from simclr.runs.rundir import RunDir


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


def read_weights(
    source: str | Path, *, arch: str | None = None, stem: str | None = None
) -> tuple[Path, EncoderWeights]:
    """The file a source resolves to and the weights in it, whatever its kind.

    `arch`/`stem` describe weights from other toolkits, which do not record them
    (see :mod:`simclr.hub.foreign`); our own files and bolts' ignore them here.
    """
    path = resolve(source)
    if checkpoint_file.sniff(path) == "safetensors":
        tensors, header = checkpoint_file.read_safetensors(path)
        if header.get("format") != FORMAT:
            return path, from_foreign(path, tensors, arch, stem)
        return path, from_safetensors(path, tensors, header)
    obj = checkpoint_file.load_torch_file(path)
    ckpt = obj if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else {}
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, dict) and isinstance(hp.get("config"), dict):
        weights = from_simclr_checkpoint(path, ckpt)
    elif ckpt and is_bolts_checkpoint(ckpt):
        weights = from_bolts_checkpoint(path, ckpt)
    else:
        weights = from_foreign(path, obj, arch, stem)
    run = RunDir.of_checkpoint(path)
    if run is not None and not weights.metrics:
        weights.metrics = checkpoint_file.read_json(run.report_json)
    return path, weights


def _check_expected(
    path: Path, weights: EncoderWeights, arch: str | None, stem: str | None
) -> None:
    if arch is not None and arch.startswith(TIMM_PREFIX):
        name = weights.config.get("encoder", {}).get("timm_name")
        if weights.arch != "timm" or name != arch[len(TIMM_PREFIX) :]:
            held = f"timm {name}" if weights.arch == "timm" else f"{weights.arch} encoder"
            raise CheckpointError(f"{path}: holds a {held}; expected {arch}")
        return
    if arch is not None and arch != weights.arch:
        raise CheckpointError(
            f"{path}: holds a {weights.arch} encoder (stem {weights.stem}); expected {arch}"
        )
    if stem is not None and stem != weights.stem:
        raise CheckpointError(
            f"{path}: holds a {weights.arch} encoder with the {weights.stem} stem; expected "
            f"the {stem} stem"
        )


def describe(path: Path, weights: EncoderWeights, feature_dim: int) -> dict[str, Any]:
    """The `.meta` dict of a loaded encoder."""
    config = weights.config
    meta: dict[str, Any] = {
        "arch": weights.arch,
        "stem": weights.stem,
        "feature_dim": feature_dim,
        "dataset": config.get("data", {}).get("name"),
        "image_size": config.get("data", {}).get("image_size"),
        "origin": weights.origin,
        "source": str(path),
        "config": config,
        "metrics": weights.metrics,
    }
    if weights.arch == "timm":
        meta["timm_name"] = config.get("encoder", {}).get("timm_name")
    meta.update({k: v for k, v in weights.extra.items() if v is not None})
    return meta


def ready_encoder(encoder: nn.Module, path: Path, weights: EncoderWeights) -> nn.Module:
    """`encoder` as `load_encoder` returns it: in eval mode, with `.transform` (the
    evaluation preprocessing of `weights`' config) and `.meta` (see `describe`)."""
    from simclr.config.schema import typed_config
    from simclr.data.views import build_eval_transform

    cfg = typed_config(weights.config)
    encoder.transform = build_eval_transform(cfg.augment, cfg.data.image_size)  # type: ignore[assignment]
    encoder.meta = describe(path, weights, int(getattr(encoder, "feature_dim", 0)))  # type: ignore[assignment]
    return encoder.eval()


@overload
def load_encoder(
    source: str | Path,
    *,
    with_head: Literal[False] = ...,
    arch: str | None = ...,
    stem: str | None = ...,
) -> nn.Module: ...


@overload
def load_encoder(
    source: str | Path,
    *,
    with_head: Literal[True],
    arch: str | None = ...,
    stem: str | None = ...,
) -> tuple[nn.Module, nn.Module]: ...


def load_encoder(
    source: str | Path,
    *,
    with_head: bool = False,
    arch: str | None = None,
    stem: str | None = None,
) -> nn.Module | tuple[nn.Module, nn.Module]:
    """Load a pretrained encoder, ready to use, on the CPU and in eval mode.

    Args:
        source: a simclr-pretrain run directory (its `checkpoints/last.ckpt`, else
            `best.ckpt`), a Lightning `.ckpt` (ours or lightning-bolts 0.7 SimCLR), a
            `.safetensors` file written by `simclr-export`, or weights from another
            toolkit (a torchvision ResNet state dict, a lightly backbone, a timm
            checkpoint; see :mod:`simclr.hub.foreign`). Checkpoints are read with
            `torch.load(weights_only=True)`; one that needs code to unpickle is refused.
        with_head: also return the projection head (our ProjectionHead, or bolts'
            normalised projection for bolts checkpoints).
        arch, stem: what the caller expects; a file holding anything else is refused.
            Weights from other toolkits record neither, so there they say what to
            build: `arch="resnet50"` (stem from the first conv's kernel unless given)
            or `arch="timm:<name>"`.

    Returns:
        The torchvision ResNet (`fc` = identity) or timm backbone, carrying
        `.transform` (PIL image -> normalised tensor, as at evaluation time) and
        `.meta` (arch, stem, feature_dim, dataset, image_size, config, metrics, ...);
        with `with_head=True`, the pair `(encoder, head)`.

    Raises:
        CheckpointError: one line naming the file and what was expected.
    """
    path, weights = read_weights(source, arch=arch, stem=stem)
    _check_expected(path, weights, arch, stem)
    encoder = ready_encoder(weights.build_encoder(path), path, weights)
    if not with_head:
        return encoder
    head = weights.build_head(path, int(getattr(encoder, "feature_dim", 0)))
    head.eval()
    return encoder, head


ORIGIN = "random-init"


def random_encoder(arch: str, stem: str | None = None) -> nn.Module:
    """An untrained `arch` encoder (`resnet18` ... `resnet152`, or `timm:<name>`) in eval
    mode with `.transform` and `.meta` (`meta["origin"] == "random-init"`)."""
    if arch.startswith(TIMM_PREFIX):
        model = build_timm(arch[len(TIMM_PREFIX) :])
    else:
        stem = stem or "imagenet"
        model = build_resnet(arch, stem)
    source = Path(f"{ORIGIN} {arch}")
    weights = from_foreign(source, model.state_dict(), arch, stem)
    weights.origin = ORIGIN
    weights.config["preset"] = ORIGIN
    return ready_encoder(model, source, weights)
