"""The training step's `auto` choices: compiled or not, where the views are made, where
JPEG files are decoded.

`encoder.compile=auto`, `augment.backend=auto` and `augment.decode=auto` (the defaults)
are resolved here for the device a run trains on, as precision and memory format are
in :mod:`simclr.config.hardware`; an explicit value always wins. :func:`choose_step` is
a pure function of the config and of :class:`~simclr.config.hardware.DeviceFacts`, so
every rule is tested with faked facts (tests/unit/config/test_step_choice.py).

* **compile**: on CUDA, `torch.compile` of the step's forward (encoder, head and
  NT-Xent as one graph; backward compiled with it). On the CPU `auto` is off: compiling
  a CIFAR ResNet-18's step there took about 72 s (inductor, gcc, 2 cores) for a step
  about 15 % faster, so it pays only after some 8 minutes of training, and it needs a
  C++ compiler. With `loss.chunk_size` the encoder runs chunk by chunk (gradient
  caching), not as one graph: `auto` is off, `true` compiles the encoder in place.
* **views** (`augment.backend`): on CUDA the loader workers decode, crop and flip
  (uint8), and colour jitter, grayscale and blur run batched on the GPU (kornia); on
  other devices the whole pipeline runs in the workers.
* **decode** (`augment.decode`): nvJPEG decodes each batch on the GPU where the views
  are finished there, the data are image files (`data=folder` or `data=stream`) and the
  device is CUDA; else the workers decode (PIL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simclr.config.hardware import DeviceFacts, check_compile_config, device_facts, device_kind
from simclr.config.schema import AugmentConfig, RunConfig
from simclr.config.validate import ENCODED_SOURCES, gpu_decode_problem
from simclr.errors import ConfigError

CPU_COMPILE_REASON = (
    "auto: off on the CPU, where compiling the step costs about 72 s for a ~15 % faster "
    "step (and needs a C++ compiler)"
)


@dataclass(frozen=True)
class StepChoice:
    """How the training step runs on one device, and why (one reason each)."""

    compile: bool
    compile_reason: str
    views: str  # cpu | gpu: where colour jitter, grayscale and blur run
    views_reason: str
    decode: str  # cpu | gpu: where JPEG files are decoded
    decode_reason: str

    def describe(self) -> str:
        """`compiled (...); views on gpu (...); decode on cpu (...)`, for the log."""
        compiled = "compiled" if self.compile else "not compiled"
        return (
            f"{compiled} ({self.compile_reason}); views on {self.views} ({self.views_reason}); "
            f"decode on {self.decode} ({self.decode_reason})"
        )


def choose_compile(value: Any, facts: DeviceFacts, chunked: bool = False) -> tuple[bool, str]:
    """`(compile, reason)` for `encoder.compile` on a device with `facts`; `chunked`:
    `loss.chunk_size` is set."""
    check_compile_config(value)
    if value != "auto":
        return bool(value), "set in encoder.compile" + (
            " (loss.chunk_size: the encoder, in place)" if value and chunked else ""
        )
    if chunked:
        return False, "auto: loss.chunk_size runs the encoder chunk by chunk, not as one graph"
    if facts.kind == "cuda":
        return True, (
            "auto: CUDA, torch.compile of encoder, head and NT-Xent; compiled in the "
            "first step, inside trainer.max_time"
        )
    if facts.kind == "cpu":
        return False, CPU_COMPILE_REASON
    return False, f"auto: not known to pay on {facts.kind}"


def choose_views(backend: Any, facts: DeviceFacts) -> tuple[str, str]:
    """`(cpu | gpu, reason)`: where `augment.backend` makes the views on a device with `facts`."""
    backend = str(backend)
    if backend in ("cpu", "gpu"):
        return backend, "set in augment.backend"
    if backend != "auto":
        raise ConfigError(f"augment.backend={backend!r} is not one of auto, cpu, gpu")
    if facts.kind == "cuda":
        return "gpu", (
            "auto: CUDA, colour, grayscale and blur batched on the GPU (kornia); the "
            "workers decode, crop and flip"
        )
    return "cpu", f"auto: no CUDA device ({facts.kind}), the whole view pipeline in the workers"


def choose_decode(
    augment: Any, views: str, data_name: Any, kind: str, strict: bool = True
) -> tuple[str, str]:
    """`(cpu | gpu, reason)`: where JPEG files are decoded, for the `augment` config,
    the views' place `views` (as :func:`choose_views` resolved it), the data and the
    device type. ``augment.decode=gpu`` where it cannot be is a ConfigError, or with
    `strict=False` (a checkpoint's config read elsewhere) cpu, saying why.
    """
    decode = str(getattr(augment, "decode", "auto"))
    files = str(data_name) in ENCODED_SOURCES
    if decode == "gpu" and not (views == "gpu" and files and kind == "cuda"):
        problem = gpu_decode_problem(augment, data_name)
        problem = problem or f"augment.decode=gpu needs a CUDA device, not {kind}"
        if strict:
            raise ConfigError(problem)
        return "cpu", f"set in augment.decode, not possible here: {problem}"
    if decode in ("cpu", "gpu"):
        return decode, "set in augment.decode"
    if not files:
        return "cpu", f"auto: data={data_name} holds arrays, no image files to decode"
    if kind != "cuda":
        return "cpu", f"auto: no CUDA device ({kind})"
    if views != "gpu":
        return "cpu", "auto: the views are made in the workers (augment.backend=cpu)"
    return "gpu", f"auto: image files (data={data_name}) and GPU views on CUDA: nvJPEG"


def choose_step(cfg: RunConfig, facts: DeviceFacts, strict: bool = True) -> StepChoice:
    """The step's choices for the run config `cfg` on a device with `facts`.

    Reads `encoder.compile`, `augment.backend`, `augment.decode`, `data.name` and
    `loss.chunk_size`; a config older than these keys gets what it had (no compile,
    views in the workers). `strict`: see :func:`choose_decode`. Pure.
    """
    augment = cfg.augment
    chunked = bool(getattr(cfg.loss, "chunk_size", None) or 0)
    compiled, why_compile = choose_compile(getattr(cfg.encoder, "compile", False), facts, chunked)
    views, why_views = choose_views(getattr(augment, "backend", "cpu"), facts)
    decode, why_decode = choose_decode(augment, views, cfg.data.name, facts.kind, strict)
    return StepChoice(compiled, why_compile, views, why_views, decode, why_decode)


def choose_step_for(cfg: RunConfig, kind: str | None = None, strict: bool = True) -> StepChoice:
    """:func:`choose_step` with this machine's facts for device type `kind` (default: where
    `cfg.trainer.accelerator` trains)."""
    facts = device_facts(kind or device_kind(cfg.trainer.accelerator))
    return choose_step(cfg, facts, strict)


def views_on(augment_cfg: AugmentConfig, kind: str) -> str:
    """Where the views of `augment_cfg` are made on a device of type `kind`: cpu or gpu."""
    backend = getattr(augment_cfg, "backend", "cpu")
    return choose_views(backend, DeviceFacts(kind, kind, False, "not read"))[0]
