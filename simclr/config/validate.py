"""Range checks that the dataclass types cannot express.

Called on the composed config before any data is read or model built, so a bad
value costs the user a second, not a failed job. Each message names the key,
the value and what was expected, on one line. Choices need no check here: their
fields are typed with the enums of :mod:`simclr.config.choices`, which OmegaConf
enforces while composing. `trainer.logger` (a name or a list) and `trainer.wandb_mode`
stay plain strings, checked here against their enums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

from simclr.config.choices import DataName, EncoderArch, Evaluator, LoggerName, WandbMode
from simclr.config.relevance import check_relevant
from simclr.config.schema import DataConfig, EncoderConfig, OptimConfig
from simclr.duration import parse_duration
from simclr.errors import ConfigError
from simclr.hardware import check_hardware_config


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key}={value} must be > 0")


def _probability(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}={value} must be a probability in [0, 1]")


def _interval(key: str, value: Sequence[float], low: float, high: float) -> None:
    if len(value) != 2:
        raise ConfigError(f"{key}={list(value)} must be [min, max]")
    lo, hi = value
    if not (low < lo <= hi <= high):
        raise ConfigError(f"{key}={list(value)} must satisfy {low} < min <= max <= {high}")


def check_fractions(fractions: Sequence[float], key: str = "eval.fractions") -> None:
    """Label fractions must each lie in (0, 1]."""
    for f in fractions:
        if not 0.0 < f <= 1.0:
            raise ConfigError(f"{key} contains {f}: each fraction must be in (0, 1]")


def validate_data(cfg: DictConfig, key: str = "data") -> None:
    """Check a `data` node (also used for `eval.data`)."""
    check_relevant(cfg, DataConfig, key)
    if cfg.batch_size < 2:
        raise ConfigError(
            f"{key}.batch_size={cfg.batch_size} must be >= 2 (NT-Xent needs negatives)"
        )
    _positive(f"{key}.image_size", cfg.image_size)
    if cfg.num_workers < 0:
        raise ConfigError(f"{key}.num_workers={cfg.num_workers} must be >= 0")
    if not 0.0 < cfg.test_fraction < 1.0:
        raise ConfigError(f"{key}.test_fraction={cfg.test_fraction} must be in (0, 1)")
    if cfg.get("max_image_pixels") is not None and cfg.max_image_pixels < 1:
        raise ConfigError(f"{key}.max_image_pixels={cfg.max_image_pixels} must be >= 1 or null")
    if cfg.download:
        raise ConfigError(
            f"{key}.download=true: this toolkit never downloads; put the files under "
            f"{key}.root yourself (see README, 'Data')"
        )
    if cfg.name != DataName.digits and not cfg.root:
        raise ConfigError(f"{key}.root is not set: {key}.name={cfg.name} reads a local directory")


# Data sources whose items are encoded files: an image folder and simclr-prepare's shards.
ENCODED_SOURCES = (DataName.folder, DataName.stream)


def gpu_decode_problem(augment: Any, data_name: Any) -> str | None:
    """Why `augment.decode=gpu` cannot apply to this config (one line), or None.

    (Whether a CUDA device is there is checked with the other devices, in
    simclr.training.check_devices.)
    """
    if str(getattr(augment, "decode", "auto")) != "gpu":
        return None
    if str(getattr(augment, "backend", "cpu")) != "gpu":
        return (
            "augment.decode=gpu needs augment.backend=gpu (the device finishes the views it "
            "decodes); pass augment.backend=gpu, or augment.decode=auto"
        )
    if str(data_name) not in ENCODED_SOURCES:
        return (
            f"augment.decode=gpu decodes image files, and data.name={data_name} has none; "
            "use data=folder or data=stream, or augment.decode=auto"
        )
    return None


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first out-of-range value in a run config."""
    validate_data(cfg.data)
    aug = cfg.augment
    _interval("augment.crop_scale", aug.crop_scale, 0.0, 1.0)
    _interval("augment.crop_ratio", aug.crop_ratio, 0.0, float("inf"))
    for name in ("hflip_p", "jitter_p", "grayscale_p", "blur_p"):
        _probability(f"augment.{name}", aug[name])
    if aug.jitter_strength < 0:
        raise ConfigError(f"augment.jitter_strength={aug.jitter_strength} must be >= 0")
    _interval("augment.blur_sigma", aug.blur_sigma, 0.0, float("inf"))
    if not 0.0 < aug.blur_kernel_fraction <= 1.0:
        raise ConfigError(
            f"augment.blur_kernel_fraction={aug.blur_kernel_fraction} must be in (0, 1]"
        )
    if len(aug.mean) != 3 or len(aug.std) != 3 or min(aug.std) <= 0:
        raise ConfigError("augment.mean and augment.std need 3 values each, std > 0")
    problem = gpu_decode_problem(aug, cfg.data.name)
    if problem:
        raise ConfigError(problem)

    enc = cfg.encoder
    check_relevant(enc, EncoderConfig, "encoder")
    if enc.arch == EncoderArch.timm and not enc.timm_name:
        raise ConfigError("encoder.timm_name is not set: encoder.arch=timm needs a timm model name")

    _positive("head.output_dim", cfg.head.output_dim)
    if cfg.head.hidden_dim is not None:
        _positive("head.hidden_dim", cfg.head.hidden_dim)

    _positive("loss.temperature", cfg.loss.temperature)
    chunk = cfg.loss.get("chunk_size") or 0
    if chunk < 0 or chunk == 1:
        raise ConfigError(
            f"loss.chunk_size={chunk} must be >= 2 (BatchNorm needs two images per pass; "
            "0 or null: no chunks)"
        )
    if chunk and cfg.trainer.accumulate_grad_batches > 1:
        raise ConfigError(
            f"loss.chunk_size={chunk} with trainer.accumulate_grad_batches="
            f"{cfg.trainer.accumulate_grad_batches}: chunks already give a large batch in "
            "small memory; raise data.batch_size instead of accumulating"
        )

    opt = cfg.optim
    check_relevant(opt, OptimConfig, "optim")
    _positive("optim.lr", opt.lr)
    if opt.weight_decay < 0:
        raise ConfigError(f"optim.weight_decay={opt.weight_decay} must be >= 0")
    if opt.warmup_epochs < 0:
        raise ConfigError(f"optim.warmup_epochs={opt.warmup_epochs} must be >= 0")

    tr = cfg.trainer
    if tr.max_epochs < 1 and tr.max_steps < 1:
        raise ConfigError(f"trainer.max_epochs={tr.max_epochs} must be >= 1")
    if tr.checkpoint_every_n_epochs < 1:
        raise ConfigError(
            f"trainer.checkpoint_every_n_epochs={tr.checkpoint_every_n_epochs} must be >= 1 "
            "(the last checkpoint is what evaluation and resume=auto read)"
        )
    if tr.accumulate_grad_batches < 1:
        raise ConfigError(
            f"trainer.accumulate_grad_batches={tr.accumulate_grad_batches} must be >= 1"
        )
    check_hardware_config(tr.precision, enc.channels_last)
    if tr.get("max_time") is not None:
        parse_duration(tr.max_time)
    _check_loggers(tr.logger)
    WandbMode.parse(tr.wandb_mode, "trainer.wandb_mode")
    if str(tr.strategy).lower().startswith("fsdp"):
        # docs/distributed.md, "FSDP": shards hold pieces of each layer, and LARS needs
        # whole-layer norms; a ResNet's memory is activations, which FSDP does not shard.
        raise ConfigError(
            f"trainer.strategy={tr.strategy}: FSDP is not supported for SimCLR ResNets "
            "(nothing to gain, and LARS needs whole-layer weight norms); use trainer.strategy=ddp"
        )
    validate_eval(cfg.eval)


def logger_names(value: Any) -> list[str]:
    """`trainer.logger` (a name or a list of names) as a list; [] for none."""
    names = [value] if isinstance(value, str) else list(value or [])
    return [str(name) for name in names if name != "none"]


def _check_loggers(value: Any) -> None:
    if not isinstance(value, (str, Sequence)):
        raise ConfigError(
            f"trainer.logger={value!r} must be one of {LoggerName.listed()} or a list of them"
        )
    names = [value] if isinstance(value, str) else [str(v) for v in value]
    for name in names:
        LoggerName.parse(name, "trainer.logger")
    if "none" in names and len(names) > 1:
        raise ConfigError(f"trainer.logger={names}: none cannot be combined with other loggers")
    if len(set(names)) < len(names):
        raise ConfigError(f"trainer.logger={names} names a logger twice")


HEADLINE_EVALUATOR, HEADLINE_FRACTION = Evaluator.linear, 0.1


def headline_choice(ev: DictConfig) -> tuple[str, float]:
    """The evaluator and label fraction of the report's headline number.

    What `eval.headline_*` names, else the linear probe (or the first evaluator) at
    10% of the labels (or the smallest fraction evaluated).
    """
    evaluator = ev.headline_evaluator or (
        HEADLINE_EVALUATOR if HEADLINE_EVALUATOR in ev.evaluators else str(ev.evaluators[0])
    )
    fraction = ev.headline_fraction
    if fraction is None:
        fraction = HEADLINE_FRACTION if HEADLINE_FRACTION in ev.fractions else min(ev.fractions)
    return str(evaluator), float(fraction)


def validate_eval(ev: DictConfig) -> None:
    """Check an `eval` node."""
    if not ev.fractions:
        raise ConfigError("eval.fractions is empty: give label fractions in (0, 1]")
    check_fractions(ev.fractions)
    if len(set(ev.fractions)) != len(ev.fractions):
        raise ConfigError(f"eval.fractions={list(ev.fractions)} repeats a fraction; give each once")
    if ev.headline_fraction is not None and ev.headline_fraction not in ev.fractions:
        raise ConfigError(
            f"eval.headline_fraction={ev.headline_fraction} is not among "
            f"eval.fractions={list(ev.fractions)}; add it or choose one of them"
        )
    if ev.headline_evaluator is not None and ev.headline_evaluator not in ev.evaluators:
        raise ConfigError(
            f"eval.headline_evaluator={ev.headline_evaluator} is not among "
            f"eval.evaluators={list(ev.evaluators)}; add it or choose one of them"
        )
    if ev.batch_size < 1:
        raise ConfigError(f"eval.batch_size={ev.batch_size} must be >= 1")
    if ev.seeds < 1 or ev.seeds_full < 1:
        raise ConfigError(f"eval.seeds={ev.seeds}, eval.seeds_full={ev.seeds_full} must be >= 1")
    if ev.raw_pixels_size < 1:
        raise ConfigError(f"eval.raw_pixels_size={ev.raw_pixels_size} must be >= 1")
    if not ev.linear.Cs or min(ev.linear.Cs) <= 0:
        raise ConfigError(f"eval.linear.Cs={list(ev.linear.Cs)} must be non-empty and > 0")
    _positive("eval.linear.default_C", ev.linear.default_C)
    if ev.knn.k < 1:
        raise ConfigError(f"eval.knn.k={ev.knn.k} must be >= 1")
    _positive("eval.knn.temperature", ev.knn.temperature)
    if not 0.0 <= ev.mlp.holdout_fraction < 1.0:
        raise ConfigError(f"eval.mlp.holdout_fraction={ev.mlp.holdout_fraction} must be in [0, 1)")
    if ev.data is not None:
        validate_data(ev.data, key="eval.data")
