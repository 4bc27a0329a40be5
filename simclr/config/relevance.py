"""Keys that mean something only for some choices: set elsewhere, they are refused.

`data.root=DIR` with `data=digits` would otherwise train on digits, silently. A key
is refused when its value differs from the schema default while the choice it
belongs to is not selected, so defaults never trip it and a deliberate value
never goes unused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from simclr.config.schema import DataConfig, EncoderConfig, OptimConfig, TrainerConfig
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


def check_relevant(node: DictConfig, schema: type, key: str) -> None:
    """ConfigError for the first key of `node` (a `schema` node at `key`) that has no effect."""
    for owner, name, choice, applies, advice in RULES:
        if owner is not schema:
            continue
        picked = node.get(choice)
        chosen = (
            f"[{','.join(str(p) for p in picked)}]"
            if isinstance(picked, ListConfig)
            else str(picked)
        )
        if applies(chosen):
            continue
        value = node.get(name)
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


def check_read_by(cfg: DictConfig, program: str) -> None:
    """ConfigError for a key of :data:`READ_BY` set for `program`, which does not read it."""
    for key, readers in READ_BY.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and program not in readers:
            raise ConfigError(f"{key}={value} has no effect in {program} (only {readers} read it)")
