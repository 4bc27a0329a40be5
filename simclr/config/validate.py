"""Validation of a composed run config: ranges, keys that only some choices read, eval.

Keys that mean something only for some choices: set elsewhere, they are refused.

`data.root=DIR` with `data=digits` would otherwise train on digits, silently. A key
is refused when its value differs from the schema default while the choice it
belongs to is not selected, so defaults never trip it and a deliberate value
never goes unused.

Range checks that the dataclass types cannot express.

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

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import ListConfig, OmegaConf

from simclr.config.checks import (  # noqa: F401  (RANGES, check_value: re-exported for callers)
    HEAD_LAYERS,
    RANGES,
    check_section,
    check_value,
)
from simclr.config.choices import (
    DataName,
    EncoderArch,
    Evaluator,
    HeadVersion,
    LoggerName,
    WandbMode,
)
from simclr.config.hardware import check_hardware_config
from simclr.config.schema import (
    DataConfig,
    EncoderConfig,
    EvalConfig,
    OptimConfig,
    RunConfig,
    TrainerConfig,
    node_of,
)
from simclr.errors import ConfigError


def _names(logger: str) -> Callable[[str], bool]:
    return lambda chosen: logger in chosen.strip("[]").split(",")


# (schema, field, the choice field it depends on, does it apply to that choice?, advice)
Rule = tuple[type, str, str, Callable[[str], bool], str]
RULES: list[Rule] = [
    (DataConfig, "root", "name", lambda c: c != "digits", "digits are built in; pass data=folder"),
    (DataConfig, "split_seed", "name", lambda c: c == "digits", "only digits are split by us"),
    (DataConfig, "test_fraction", "name", lambda c: c == "digits", "only digits are split by us"),
    (DataConfig, "stl10_unlabeled", "name", lambda c: c == "stl10", "an STL-10 split"),
    (EncoderConfig, "timm_name", "arch", lambda c: c == "timm", "it needs encoder=timm"),
    (OptimConfig, "betas", "name", lambda c: c == "adamw", "it needs optim=adamw"),
    (OptimConfig, "trust_coefficient", "name", lambda c: c == "lars", "it needs optim=lars"),
    (OptimConfig, "momentum", "name", lambda c: c != "adamw", "AdamW's is optim.betas"),
    # `trainer.logger` is a name or a list, shown as `[csv,mlflow]`: a name is in it.
    (TrainerConfig, "mlflow_tracking_uri", "logger", _names("mlflow"), "add mlflow to it"),
    (TrainerConfig, "mlflow_experiment", "logger", _names("mlflow"), "add mlflow to it"),
    (TrainerConfig, "wandb_mode", "logger", _names("wandb"), "add wandb to it"),
    (TrainerConfig, "wandb_project", "logger", _names("wandb"), "add wandb to it"),
]


def _default(schema: type, name: str) -> Any:
    field = next(f for f in dataclasses.fields(schema) if f.name == name)
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc,operator]


def check_relevant(node: object, schema: type, key: str) -> None:
    """ConfigError for the first key of `node` (a `schema` node at `key`) that has no effect."""
    for owner, name, choice, applies, advice in RULES:
        if owner is not schema:
            continue
        picked = getattr(node, choice)
        chosen = (
            f"[{','.join(str(p) for p in picked)}]"
            if isinstance(picked, ListConfig)
            else str(picked)
        )
        if applies(chosen):
            continue
        value = getattr(node, name)
        plain = list(value) if isinstance(value, ListConfig) else value
        if plain != _default(schema, name):
            raise ConfigError(
                f"{key}.{name}={plain} has no effect with {key}.{choice}={chosen} ({advice})"
            )


# Keys of the run config that only some commands read (every command composes the same
# config): a value set for another command would go unused, silently.
READ_BY = {
    "checkpoint": "simclr-eval and simclr-finetune",
    "distill.teacher": "simclr-distill",
}


def check_read_by(cfg: RunConfig, program: str) -> None:
    """ConfigError for a key of :data:`READ_BY` set for `program`, which does not read it."""
    for key, readers in READ_BY.items():
        value = OmegaConf.select(node_of(cfg), key)
        if value is not None and program not in readers:
            raise ConfigError(f"{key}={value} has no effect in {program} (only {readers} read it)")


def check_fractions(fractions: Sequence[float], key: str = "eval.fractions") -> None:
    """Label fractions: a non-empty list of distinct values, each in (0, 1]."""
    check_value("eval.fractions", fractions, key)


def validate_data(cfg: DataConfig, key: str = "data") -> None:
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
    if cfg.start_size is not None and cfg.name == DataName.stream:
        raise ConfigError(
            f"{key}.start_size={cfg.start_size}: progressive resizing needs the single-process "
            f"loader, and {key}=stream orders its shards itself; set {key}.start_size=null"
        )
    if cfg.start_size is not None and cfg.start_size > cfg.image_size:
        raise ConfigError(
            f"{key}.start_size={cfg.start_size} is larger than {key}.image_size="
            f"{cfg.image_size}: views grow from start_size to image_size"
        )


# Data sources whose items are encoded files: an image folder and simclr-prepare's shards.
ENCODED_SOURCES = (DataName.folder, DataName.stream)


def gpu_decode_problem(augment: Any, data_name: Any) -> str | None:
    """Why `augment.decode=gpu` cannot apply to this config (one line), or None.

    (Whether a CUDA device is there is checked with the other devices, in
    simclr.training.trainer.check_devices.)
    """
    if str(getattr(augment, "decode", "auto")) != "gpu":
        return None
    # backend=auto is gpu on CUDA; without CUDA, check_devices refuses decode=gpu.
    if str(getattr(augment, "backend", "cpu")) == "cpu":
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


def validate_config(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` for the first out-of-range value in a run config."""
    validate_data(cfg.data)
    for section in ("augment", "head", "loss", "optim", "online_probe", "monitor", "distill"):
        check_section(getattr(cfg, section), section)
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

    chunk = cfg.loss.chunk_size or 0
    if chunk and cfg.trainer.accumulate_grad_batches > 1:
        raise ConfigError(
            f"loss.chunk_size={chunk} with trainer.accumulate_grad_batches="
            f"{cfg.trainer.accumulate_grad_batches}: chunks already give a large batch in "
            "small memory; raise data.batch_size instead of accumulating"
        )
    check_relevant(cfg.optim, OptimConfig, "optim")

    tr = cfg.trainer
    check_section(tr, "trainer")
    if tr.max_epochs == -1 and tr.max_steps == -1 and tr.max_time is None:
        raise ConfigError(
            "trainer.max_epochs=-1 with trainer.max_steps=-1 and no trainer.max_time: "
            "training would never end; set one of them"
        )
    check_hardware_config(tr.precision, enc.channels_last, enc.compile)
    _check_loggers(tr.logger)
    WandbMode.parse(tr.wandb_mode, "trainer.wandb_mode")
    check_relevant(tr, TrainerConfig, "trainer")
    _check_lightning_names(tr)
    validate_eval(cfg.eval)
    layer = cfg.eval.finetune.from_head_layer
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


def _check_lightning_names(tr: TrainerConfig) -> None:
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


def headline_choice(ev: EvalConfig) -> tuple[str, float]:
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


def validate_eval(ev: EvalConfig) -> None:
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
