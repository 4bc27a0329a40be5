"""Range checks that the dataclass types cannot express.

Called on the composed config before any data is read or model built, so a bad
value costs the user a second, not a failed job. Each message names the key,
the value and what was expected, on one line.

Every range is one row of :data:`RANGES`: a key (dotted, from the run config's root)
and a check that returns what is wrong with a value, or None. The same row serves
`data.*` and `eval.data.*` (:func:`validate_data`), `simclr-eval`'s `eval.*`
(:func:`validate_eval`), `simclr-distill` (:func:`check_section`) and the library
functions that take one of these values directly (:func:`check_value`). Rules that
relate two keys, or ask a library (timm, Lightning) what it accepts, follow the table
in :func:`validate_config`.

Choices need no row: their fields are typed with the enums of
:mod:`simclr.config.choices`, which OmegaConf enforces while composing.
`trainer.logger` (a name or a list) and `trainer.wandb_mode` stay plain strings,
checked here against their enums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig

from simclr.config.choices import (
    DataName,
    EncoderArch,
    Evaluator,
    HeadVersion,
    LoggerName,
    WandbMode,
)
from simclr.config.relevance import check_relevant
from simclr.config.schema import DataConfig, EncoderConfig, OptimConfig, TrainerConfig
from simclr.duration import parse_duration
from simclr.errors import ConfigError
from simclr.hardware import check_hardware_config

# What is wrong with a value ("must be > 0"), or None when it is in range.
Check = Callable[[Any], "str | None"]

# NumPy's and scikit-learn's seeds (torch takes more): the run's seed reaches all three.
SEED_MAX = 2**32 - 1
# Linear layers of the projection head of each version (simclr/models/head.py).
HEAD_LAYERS = {HeadVersion.v1: 2, HeadVersion.v2: 3}
# torchvision's ColorJitter takes a hue jitter in [0, 0.5]; ours is 0.2 x strength.
MAX_JITTER_STRENGTH = 2.5
# W&B refuses these characters in a project name (wandb.sdk.lib.runid / the server).
WANDB_FORBIDDEN = "/\\#?%:"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int, high: int | None = None, why: str = "", expected: str = "") -> Check:
    """An integer in [low, high]."""
    text = expected or (f"in [{low}, {high}]" if high is not None else f">= {low}")
    text += f" ({why})" if why else ""

    def check(value: Any) -> str | None:
        ok = _is_int(value) and value >= low and (high is None or value <= high)
        return None if ok else f"must be {text}"

    return check


def number(
    low: float,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    why: str = "",
) -> Check:
    """A finite number in the interval from `low` to `high` (open or closed at each end)."""
    if high is None:
        text = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        text = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    text += f" ({why})" if why else ""

    def check(value: Any) -> str | None:
        if not _is_finite(value):
            return f"must be {text}"
        above = value > low if low_open else value >= low
        below = high is None or (value < high if high_open else value <= high)
        return None if above and below else f"must be {text}"

    return check


PROBABILITY = number(0.0, 1.0)
FRACTION = number(0.0, 1.0, low_open=True)  # a share of something that must not be empty
POSITIVE = number(0.0, low_open=True)
NON_NEGATIVE = number(0.0)
SEED = integer(0, SEED_MAX, why="NumPy's seed range")


def optional(check: Check) -> Check:
    """`check`, or null."""

    def optional_check(value: Any) -> str | None:
        problem = None if value is None else check(value)
        return None if problem is None else f"{problem} or null"

    return optional_check


def interval(low: float, high: float) -> Check:
    """A pair [min, max] of finite numbers with low < min <= max <= high."""
    bound = "" if math.isinf(high) else f" <= {high:g}"
    text = f"must be [min, max] with {low:g} < min <= max{bound}"

    def check(value: Any) -> str | None:
        if len(value) != 2 or not all(_is_finite(v) for v in value):
            return text
        lo, hi = value
        return None if low < lo <= hi <= high else text

    return check


def items(
    each: Check,
    *,
    length: int | None = None,
    distinct: bool = False,
    what: str = "value",
    empty: str | None = "",
) -> Check:
    """A list (of `length` items) each passing `each`, optionally all different.

    `empty`: what to say of an empty list (None: an empty list is fine).
    """

    def check(value: Any) -> str | None:
        if length is not None and len(value) != length:
            return f"must have {length} {what}s"
        if not value and empty is not None:
            return f"is empty: {empty or f'give at least one {what}'}"
        for item in value:
            problem = each(item)
            if problem is not None:
                return f"contains {_show(item)}: each {what} {problem}"
        if distinct:
            seen: list[Any] = []
            for item in value:
                if item in seen:  # a repeat would be evaluated (and counted) twice
                    return f"repeats {_show(item)}; give each {what} once"
                seen.append(item)
        return None

    return check


def finite(value: Any) -> str | None:
    """Any finite number."""
    return None if _is_finite(value) else "must be a finite number"


def anything(value: Any) -> str | None:
    """Any value (its type, e.g. an enum, is checked while composing)."""
    return None


def _chunk_size(value: Any) -> str | None:
    if value is None or value == 0 or (_is_int(value) and value >= 2):
        return None
    return "must be >= 2 (BatchNorm needs two images per pass; 0 or null: no chunks)"


def _at_least_one_or_unbounded(value: Any) -> str | None:
    return (
        None if _is_int(value) and (value >= 1 or value == -1) else "must be >= 1 or -1 (no limit)"
    )


def _limit_batches(value: Any) -> str | None:
    if value is None or (_is_int(value) and value >= 1):
        return None
    if isinstance(value, float) and 0.0 < value <= 1.0:
        return None
    return "must be null, a number of batches >= 1, or a share of the batches in (0, 1]"


def _devices(value: Any) -> str | None:
    """Lightning's `devices`: auto, -1 (all), a count, or a list of device indices."""
    expected = "must be auto, -1 (all), a count >= 1, or a list of distinct device indices >= 0"
    if isinstance(value, str):
        text = value.strip()
        if text == "auto":
            return None
        try:
            parts = [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            return expected
        value = parts[0] if len(parts) == 1 and "," not in text else parts
    if _is_int(value):
        return None if value >= 1 or value == -1 else expected
    if isinstance(value, (list, ListConfig)):
        ok = bool(value) and all(_is_int(v) and v >= 0 for v in value)
        return None if ok and len(set(value)) == len(value) else expected
    return expected


def _name(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty name"


def _wandb_project(value: Any) -> str | None:
    if _name(value) is not None or any(c in value for c in WANDB_FORBIDDEN):
        return f"must be a non-empty name without any of {' '.join(WANDB_FORBIDDEN)}"
    return None


def _duration(value: Any) -> str | None:
    if value is not None:
        parse_duration(value)  # its own message says which forms it takes
    return None


# (key, check): each range defined once. Keys under `data.` also check `eval.data.`.
RANGES: list[tuple[str, Check]] = [
    ("data.image_size", integer(1, expected="> 0")),
    ("data.batch_size", integer(2, why="NT-Xent needs negatives")),
    ("data.num_workers", integer(0)),
    ("data.split_seed", SEED),
    ("data.test_fraction", number(0.0, 1.0, low_open=True, high_open=True)),
    ("data.max_image_pixels", optional(integer(1))),
    ("augment.crop_scale", interval(0.0, 1.0)),
    ("augment.crop_ratio", interval(0.0, math.inf)),
    ("augment.hflip_p", PROBABILITY),
    ("augment.jitter_strength", number(0.0, MAX_JITTER_STRENGTH, why="hue jitter 0.2 x it <= 0.5")),
    ("augment.jitter_p", PROBABILITY),
    ("augment.grayscale_p", PROBABILITY),
    ("augment.blur_p", PROBABILITY),
    ("augment.blur_kernel_fraction", FRACTION),
    ("augment.blur_sigma", interval(0.0, math.inf)),
    ("augment.mean", items(finite, length=3, what="channel value")),
    ("augment.std", items(POSITIVE, length=3, what="channel value")),
    ("augment.eval_resize_fraction", FRACTION),
    ("head.hidden_dim", optional(integer(1, expected="> 0"))),
    ("head.output_dim", integer(1, expected="> 0")),
    ("loss.temperature", POSITIVE),
    ("loss.chunk_size", _chunk_size),
    ("optim.lr", POSITIVE),
    ("optim.weight_decay", NON_NEGATIVE),
    ("optim.momentum", number(0.0, 1.0, high_open=True)),
    ("optim.trust_coefficient", POSITIVE),
    ("optim.betas", items(number(0.0, 1.0, high_open=True), length=2, what="beta")),
    ("optim.warmup_epochs", NON_NEGATIVE),
    ("optim.final_lr_fraction", PROBABILITY),
    ("trainer.max_epochs", _at_least_one_or_unbounded),
    ("trainer.max_steps", _at_least_one_or_unbounded),
    ("trainer.devices", _devices),
    ("trainer.num_nodes", integer(1)),
    ("trainer.accumulate_grad_batches", integer(1)),
    ("trainer.gradient_clip_val", optional(number(0.0, why="0: no clipping"))),
    ("trainer.log_every_n_steps", integer(1)),
    ("trainer.limit_train_batches", _limit_batches),
    ("trainer.max_time", _duration),
    ("trainer.mlflow_experiment", _name),
    ("trainer.wandb_project", _wandb_project),
    (
        "trainer.checkpoint_every_n_epochs",
        integer(1, why="the last checkpoint is what evaluation and resume=auto read"),
    ),
    (
        "eval.evaluators",
        items(anything, distinct=True, what="evaluator", empty="name one, or pass eval=none"),
    ),
    ("eval.fractions", items(FRACTION, distinct=True, what="fraction")),
    ("eval.seeds", integer(1)),
    ("eval.seeds_full", integer(1)),
    ("eval.baselines", items(anything, distinct=True, what="baseline", empty=None)),
    ("eval.batch_size", integer(1)),
    ("eval.headline_fraction", optional(FRACTION)),
    ("eval.linear.Cs", items(POSITIVE, what="C")),
    ("eval.linear.cv_folds", integer(2, why="cross-validation needs two folds")),
    ("eval.linear.max_iter", integer(1)),
    ("eval.linear.default_C", POSITIVE),
    ("eval.mlp.hidden_dim", integer(1)),
    ("eval.mlp.epochs", integer(1)),
    ("eval.mlp.lr", POSITIVE),
    ("eval.mlp.weight_decay", NON_NEGATIVE),
    ("eval.mlp.patience", integer(1)),
    ("eval.mlp.holdout_fraction", number(0.0, 1.0, high_open=True, why="0: no early stopping")),
    ("eval.knn.k", integer(1)),
    ("eval.knn.temperature", POSITIVE),
    ("eval.finetune.frozen_epochs", integer(0)),
    ("eval.finetune.unfrozen_epochs", integer(0)),
    ("eval.finetune.lr", POSITIVE),
    ("eval.finetune.lr_decay_per_stage", FRACTION),
    ("eval.finetune.batch_size", integer(2, why="BatchNorm trains on two images or more")),
    ("eval.finetune.weight_decay", NON_NEGATIVE),
    ("eval.finetune.fractions", items(FRACTION, distinct=True, what="fraction")),
    ("eval.finetune.from_head_layer", optional(integer(0))),
    ("eval.finetune.fraction", FRACTION),
    ("eval.raw_pixels_size", integer(1)),
    ("eval.random_init_seed", SEED),
    ("online_probe.lr", POSITIVE),
    ("monitor.max_samples", integer(2, why="RankMe needs two rows")),
    ("monitor.collapse_rank_fraction", PROBABILITY),
    ("monitor.collapse_std_fraction", PROBABILITY),
    ("distill.temperature", POSITIVE),
    ("distill.labeled_weight", NON_NEGATIVE),
    ("seed", SEED),
]
_CHECKS = dict(RANGES)
_MISSING = object()


def _show(value: Any) -> str:
    if isinstance(value, ListConfig):
        value = list(value)
    return repr(value) if isinstance(value, str) else str(value)


def _select(node: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(node, (DictConfig, dict)):
            if part not in node:
                return _MISSING
            node = node[part]
        else:
            node = getattr(node, part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def check_value(key: str, value: Any, shown_key: str | None = None) -> None:
    """ConfigError if `value` is out of the range :data:`RANGES` gives `key`."""
    problem = _CHECKS[key](value)
    if problem is not None:
        raise ConfigError(f"{shown_key or key}={_show(value)} {problem}")


def check_section(node: Any, section: str, shown: str | None = None) -> None:
    """Check every key of :data:`RANGES` under `section` (e.g. `optim`) in `node`.

    `shown` is the section's name in messages (`eval.data` for a `data` node there).
    A key the node lacks (a partial node built by a library caller) is not checked.
    """
    prefix = f"{section}."
    for key, _ in RANGES:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        value = _select(node, rest)
        if value is not _MISSING:
            check_value(key, value, f"{shown or section}.{rest}")


def check_fractions(fractions: Sequence[float], key: str = "eval.fractions") -> None:
    """Label fractions: a non-empty list of distinct values, each in (0, 1]."""
    check_value("eval.fractions", fractions, key)


def validate_data(cfg: DictConfig, key: str = "data") -> None:
    """Check a `data` node (also used for `eval.data`)."""
    check_relevant(cfg, DataConfig, key)
    check_section(cfg, "data", key)
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
    for section in ("augment", "head", "loss", "optim", "online_probe", "monitor", "distill"):
        check_section(cfg[section], section)
    check_value("seed", cfg.seed)
    aug = cfg.augment
    if aug.blur_p > 0 and cfg.data.image_size < 2:
        raise ConfigError(
            f"data.image_size={cfg.data.image_size} with augment.blur_p={aug.blur_p}: the blur "
            "kernel (3 px or more) needs images of 2 px or more; set augment.blur_p=0"
        )
    if len(aug.mean) != 3 or len(aug.std) != 3 or min(aug.std) <= 0:
        raise ConfigError("augment.mean and augment.std need 3 values each, std > 0")
    problem = gpu_decode_problem(aug, cfg.data.name)
    if problem:
        raise ConfigError(problem)

    enc = cfg.encoder
    check_relevant(enc, EncoderConfig, "encoder")
    if enc.arch == EncoderArch.timm:
        _check_timm_name(enc.timm_name)

    chunk = cfg.loss.get("chunk_size") or 0
    if chunk and cfg.trainer.accumulate_grad_batches > 1:
        raise ConfigError(
            f"loss.chunk_size={chunk} with trainer.accumulate_grad_batches="
            f"{cfg.trainer.accumulate_grad_batches}: chunks already give a large batch in "
            "small memory; raise data.batch_size instead of accumulating"
        )
    check_relevant(cfg.optim, OptimConfig, "optim")

    tr = cfg.trainer
    check_section(tr, "trainer")
    if tr.max_epochs == -1 and tr.max_steps == -1 and tr.get("max_time") is None:
        raise ConfigError(
            "trainer.max_epochs=-1 with trainer.max_steps=-1 and no trainer.max_time: "
            "training would never end; set one of them"
        )
    check_hardware_config(tr.precision, enc.channels_last)
    _check_loggers(tr.logger)
    WandbMode.parse(tr.wandb_mode, "trainer.wandb_mode")
    check_relevant(tr, TrainerConfig, "trainer")
    _check_lightning_names(tr)
    validate_eval(cfg.eval)
    layer = cfg.eval.finetune.get("from_head_layer")
    version = HeadVersion.parse(cfg.head.version, "head.version")
    if layer is not None and layer > HEAD_LAYERS[version] - 1:
        raise ConfigError(
            f"eval.finetune.from_head_layer={layer} is not in 0..{HEAD_LAYERS[version] - 1} "
            f"for head.version={version} ({HEAD_LAYERS[version]} layers; the last one is the "
            "projection itself)"
        )


def _check_timm_name(name: Any) -> None:
    if not name:
        raise ConfigError("encoder.timm_name is not set: encoder.arch=timm needs a timm model name")
    import timm

    # Only names timm builds without a download: `hf-hub:` names would fetch a config.
    if not timm.is_model(str(name)):
        raise ConfigError(
            f"encoder.timm_name={name!r} is not a timm model name (see timm.list_models())"
        )


def _check_lightning_names(tr: DictConfig) -> None:
    """`trainer.accelerator` and `trainer.strategy` against what Lightning registers."""
    from pytorch_lightning.accelerators import AcceleratorRegistry
    from pytorch_lightning.strategies import StrategyRegistry

    accelerators = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
    if str(tr.accelerator).lower() not in accelerators:
        raise ConfigError(
            f"trainer.accelerator={tr.accelerator!r} is not one of {', '.join(accelerators)}"
        )
    strategy = str(tr.strategy).lower()
    if strategy.startswith("fsdp"):
        # docs/distributed.md, "FSDP": shards hold pieces of each layer, and LARS needs
        # whole-layer norms; a ResNet's memory is activations, which FSDP does not shard.
        raise ConfigError(
            f"trainer.strategy={tr.strategy}: FSDP is not supported for SimCLR ResNets "
            "(nothing to gain, and LARS needs whole-layer weight norms); use trainer.strategy=ddp"
        )
    strategies = ["auto", *StrategyRegistry.available_strategies()]
    if strategy not in strategies:
        raise ConfigError(
            f"trainer.strategy={tr.strategy!r} is not a Lightning strategy "
            "(e.g. auto, ddp, ddp_spawn, deepspeed; see pytorch_lightning.strategies.StrategyRegistry)"
        )


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
    check_section(ev, "eval")
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
    ft = ev.finetune
    if ft.frozen_epochs + ft.unfrozen_epochs < 1:
        raise ConfigError(
            f"eval.finetune.frozen_epochs={ft.frozen_epochs} and eval.finetune.unfrozen_epochs="
            f"{ft.unfrozen_epochs}: fine-tuning needs at least one epoch"
        )
    if Evaluator.finetune in ev.evaluators:
        tuned = [f for f in ft.fractions if f in ev.fractions]
        if not tuned:
            raise ConfigError(
                f"eval.finetune.fractions={list(ft.fractions)} has none of eval.fractions="
                f"{list(ev.fractions)}: the finetune evaluator would run on nothing"
            )
        evaluator, fraction = headline_choice(ev)
        if evaluator == Evaluator.finetune and fraction not in tuned:
            raise ConfigError(
                f"eval.headline_fraction={fraction} is not among eval.finetune.fractions="
                f"{list(ft.fractions)}: the finetune headline would have no number"
            )
    if ev.data is not None:
        validate_data(ev.data, key="eval.data")
