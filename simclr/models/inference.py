"""`encode`: a model over a loader, batch by batch, to one float32 tensor.

The one loop behind feature extraction, `embed`, fine-tuned predictions and
feature-dimension inference: eval mode (BatchNorm uses its running statistics,
dropout is off) under `torch.inference_mode`, the model's own mode restored after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def encode(
    model: nn.Module,
    loader: Iterable[Any],
    device: torch.device | str | None = None,
    *,
    autocast: torch.dtype | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """`model` applied to every batch of `loader`, concatenated: float32, on the CPU.

    A batch is an input tensor, or a tuple/list whose first item is one (labels or
    indices after it are ignored: wrap the loader to keep them). Inputs go to
    `device`, by default the model's; the model itself is not moved. An empty
    loader gives a (0, 0) tensor.

    The fast path of training (simclr/config/hardware.py) is there for feature extraction:
    `autocast` runs the model under autocast to that dtype (e.g. bfloat16), and
    `channels_last` hands it NHWC images (convolutions then run and return NHWC; the
    weights are not touched). The output is float32 either way.
    """
    run_on = torch.device(device) if device is not None else model_device(model)
    was_training = model.training
    model.eval()
    outputs: list[torch.Tensor] = []
    mixed = (
        torch.autocast(run_on.type, dtype=autocast)
        if autocast is not None
        else contextlib.nullcontext()
    )
    try:
        with torch.inference_mode(), mixed:
            for batch in loader:
                inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
                inputs = inputs.to(run_on)
                if channels_last and inputs.ndim == 4:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                outputs.append(model(inputs).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


def check_accepts(model: nn.Module, image_size: int, what: str) -> None:
    """ConfigError unless `model` runs on a batch of two `image_size` images.

    Found out before training (a ViT at 16 px, a ResNet whose pooling runs out of
    pixels), not at the first step after the data is read.
    """
    from simclr.errors import ConfigError

    probe = torch.zeros(2, 3, image_size, image_size, device=model_device(model))
    try:
        encode(model, [probe])
    except (RuntimeError, AssertionError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{what} does not accept data.image_size={image_size}: {first}") from None
