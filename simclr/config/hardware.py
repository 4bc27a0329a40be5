"""Numeric precision and memory format chosen for the hardware a run has.

`trainer.precision=auto` (the default) becomes `bf16-mixed` where bfloat16 runs
natively, else `32-true`; `encoder.channels_last=auto` becomes true where the
NHWC layout is faster. An explicit value always wins. :func:`choose` is a pure
function of those two settings and of :class:`DeviceFacts` (what the device
can do), so every rule below is tested with faked facts; :func:`device_facts`
reads the real ones from torch.

Where bf16 is native:

* CUDA: `torch.cuda.is_bf16_supported()` (compute capability 8.0 and up).
* CPU: `torch.cpu.get_capabilities()` (public, in `torch.cpu.__all__`) reports the
  instruction sets; bf16 dot products are native with AVX512_BF16 or AMX-BF16 on
  x86 and with the BF16 extension (or SVE-BF16) on ARM. oneDNN then runs bf16
  convolutions and matrix products at about twice float32's rate (measured on a
  2-core AMD EPYC with AVX512_BF16: one SimCLR step of a CIFAR ResNet-18, 17.8
  img/s float32, 45.6 bf16 autocast, 55.0 bf16 + channels_last). Without them
  bf16 is emulated and slower than float32.

Reproducible runs (`trainer.deterministic=true`) on the CPU stay in float32 under
`auto`: oneDNN's bf16 convolution weight gradients depend on where the buffers lie
in memory (measured here: 4 different results for one convolution's backward over
64 alignments of the same inputs), so two identical bf16 runs end with different
weights after a few steps, and a resumed run cannot match an uninterrupted one.
float32, NHWC included, is bit-reproducible. (cuDNN's deterministic mode covers
bf16 on CUDA.)

Where channels_last pays: convolutional encoders on the CPU (oneDNN's NHWC
kernels, 17.8 -> 24.3 img/s in float32 above) and on CUDA under bf16/fp16 (tensor
cores want NHWC). A model with at most one convolution (a ViT's patch embedding)
gains nothing, nor does float32 on CUDA, where cuDNN's NCHW kernels are as fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from simclr.config.schema import RunConfig
from simclr.errors import ConfigError

log = logging.getLogger(__name__)

# Lightning's precision names this toolkit accepts (the short aliases "32", "bf16" are
# deprecated there), plus "auto".
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
# CPU capability flags (torch.cpu.get_capabilities()) that mean native bf16 arithmetic.
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "sve_bf16", "bf16")
_HALF = ("bf16-mixed", "16-mixed", "bf16-true", "16-true")


@dataclass(frozen=True)
class DeviceFacts:
    """What the device a run trains (or extracts features) on can do."""

    kind: str  # cuda | cpu | mps | ...: torch's device type
    name: str  # e.g. "NVIDIA H200", "AMD EPYC"
    bf16: bool  # bfloat16 arithmetic is native (not emulated)
    bf16_evidence: str  # what says so, for the reason line


@dataclass(frozen=True)
class HardwareChoice:
    """Precision and memory format for one device, and why (one line each)."""

    device: str
    precision: str  # a Lightning precision name, never "auto"
    precision_reason: str
    channels_last: bool
    channels_last_reason: str

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype inference autocasts to under this precision; None for float32/64."""
        if self.precision.startswith("bf16"):
            return torch.bfloat16
        if self.precision.startswith("16"):
            return torch.float16
        return None

    def describe(self) -> str:
        """`precision bf16-mixed (...); channels_last on (...)`, for the log."""
        fmt = "on" if self.channels_last else "off"
        return (
            f"{self.device}: precision {self.precision} ({self.precision_reason}); "
            f"channels_last {fmt} ({self.channels_last_reason})"
        )


def check_hardware_config(precision: Any, channels_last: Any, compile_: Any = "auto") -> None:
    """ConfigError unless `trainer.precision`, `encoder.channels_last` and
    `encoder.compile` are known values."""
    if str(precision) not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    _check_tristate("encoder.channels_last", channels_last)
    check_compile_config(compile_)


def check_compile_config(value: Any) -> None:
    """ConfigError unless `encoder.compile` is auto, true or false."""
    _check_tristate("encoder.compile", value)


def _check_tristate(key: str, value: Any) -> None:
    # `1 in (True, False)` holds in Python: only real booleans (and "auto") pass.
    if not (isinstance(value, bool) or value == "auto"):
        raise ConfigError(f"{key}={value!r} is not one of auto, true, false")


def device_kind(accelerator: str) -> str:
    """torch's device type for a Lightning `trainer.accelerator` value on this machine."""
    accelerator = str(accelerator).lower()
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator != "auto":
        return accelerator
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def cpu_bf16_flag(capabilities: dict[str, Any]) -> str | None:
    """The first capability flag that means native bf16, or None."""
    return next((f for f in CPU_BF16_FLAGS if capabilities.get(f) is True), None)


def device_facts(kind: str) -> DeviceFacts:
    """The facts of this machine's device of type `kind` (`cuda`, `cpu`, ...)."""
    if kind == "cuda":
        if not torch.cuda.is_available():
            return DeviceFacts("cuda", "none", False, "no CUDA device is visible")
        name = torch.cuda.get_device_name(0)
        # Emulated bf16 (pre-Ampere) runs, but slower than float32: only native counts.
        native = bool(torch.cuda.is_bf16_supported(including_emulation=False))
        return DeviceFacts("cuda", name, native, "torch.cuda.is_bf16_supported()")
    if kind == "cpu":
        get = getattr(torch.cpu, "get_capabilities", None)
        caps = dict(get()) if get is not None else {}
        flag = cpu_bf16_flag(caps)
        name = str(caps.get("cpu_name") or "CPU")
        evidence = f"{flag.upper()} (torch.cpu.get_capabilities())" if flag else "no bf16 ISA"
        return DeviceFacts("cpu", name, flag is not None, evidence)
    return DeviceFacts(kind, kind, False, f"not measured on {kind}")


def is_convolutional(model: nn.Module) -> bool:
    """More than one 2-D convolution: a conv net (a ViT has one, its patch embedding)."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules()) > 1


def choose_precision(
    precision: Any, facts: DeviceFacts, deterministic: bool = False
) -> tuple[str, str]:
    """`(precision, reason)` for `trainer.precision` on a device with `facts`, for a
    run that must be bit-reproducible when `deterministic` (`trainer.deterministic`)."""
    if str(precision) != "auto":
        return str(precision), "set in trainer.precision"
    if facts.bf16 and deterministic and facts.kind == "cpu":
        return "32-true", (
            f"auto: trainer.deterministic=true, and bf16 convolution gradients on "
            f"{facts.name} (oneDNN) vary with buffer alignment"
        )
    if facts.bf16:
        return "bf16-mixed", f"auto: {facts.name} runs bf16 natively, {facts.bf16_evidence}"
    return "32-true", f"auto: no native bf16 on {facts.name} ({facts.bf16_evidence})"


def choose_channels_last(
    channels_last: Any, precision: str, facts: DeviceFacts, convolutional: bool
) -> tuple[bool, str]:
    """`(channels_last, reason)` for `encoder.channels_last` under `precision`."""
    if channels_last != "auto":
        return bool(channels_last), "set in encoder.channels_last"
    if not convolutional:
        return False, "auto: the encoder has at most one convolution (a ViT), NHWC gains nothing"
    if facts.kind == "cpu":
        return True, "auto: oneDNN runs NHWC convolutions faster on the CPU"
    if facts.kind == "cuda" and precision in _HALF:
        return True, f"auto: {precision} convolutions on tensor cores want NHWC"
    if facts.kind == "cuda":
        return False, "auto: float32 on CUDA, cuDNN's NCHW kernels are as fast"
    return False, f"auto: not known to help on {facts.kind}"


def choose(cfg: RunConfig, facts: DeviceFacts, convolutional: bool) -> HardwareChoice:
    """Precision and memory format of the run config `cfg` on a device with `facts`.

    Reads `cfg.trainer.precision`, `cfg.trainer.deterministic` and
    `cfg.encoder.channels_last`; pure.
    """
    deterministic = bool(getattr(cfg.trainer, "deterministic", False))
    precision, why_precision = choose_precision(cfg.trainer.precision, facts, deterministic)
    channels_last, why_format = choose_channels_last(
        cfg.encoder.channels_last, precision, facts, convolutional
    )
    return HardwareChoice(facts.kind, precision, why_precision, channels_last, why_format)


def choose_for(cfg: RunConfig, model: nn.Module, kind: str | None = None) -> HardwareChoice:
    """:func:`choose` with this machine's facts for `model` on device type `kind`
    (default: where `cfg.trainer.accelerator` trains)."""
    facts = device_facts(kind or device_kind(cfg.trainer.accelerator))
    return choose(cfg, facts, is_convolutional(model))
