"""Register the schemas with Hydra's ConfigStore.

`conf/config.yaml` lists `simclr_schema` first in its defaults, so every group
file is merged into a typed, struct-mode node: unknown keys and values of the
wrong type fail at composition, before any data is read.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from simclr.config.resolvers import register_resolvers
from simclr.config.schema import RunConfig

SCHEMA_NAME = "simclr_schema"


def register_configs() -> None:
    """Register the top-level schema and our resolvers (idempotent)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=RunConfig)
    register_resolvers()
