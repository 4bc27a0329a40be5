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

from omegaconf import DictConfig, ListConfig

from simclr.config.schema import DataConfig, EncoderConfig, OptimConfig
from simclr.errors import ConfigError

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
]


def _default(schema: type, name: str) -> Any:
    field = next(f for f in dataclasses.fields(schema) if f.name == name)
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc,operator]


def check_relevant(node: DictConfig, schema: type, key: str) -> None:
    """ConfigError for the first key of `node` (a `schema` node at `key`) that has no effect."""
    for owner, name, choice, applies, advice in RULES:
        chosen = str(node.get(choice))
        if owner is not schema or applies(chosen):
            continue
        value = node.get(name)
        plain = list(value) if isinstance(value, ListConfig) else value
        if plain != _default(schema, name):
            raise ConfigError(
                f"{key}.{name}={plain} has no effect with {key}.{choice}={chosen} ({advice})"
            )
