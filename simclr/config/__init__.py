"""Configuration: dataclass schemas, their registration, and value checks."""

from simclr.config.schema import (
    AugmentConfig,
    DataConfig,
    EncoderConfig,
    EvalConfig,
    HeadConfig,
    LossConfig,
    OptimConfig,
    RunConfig,
    TrainerConfig,
    register_configs,
)
from simclr.config.validate import validate_config

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "EncoderConfig",
    "EvalConfig",
    "HeadConfig",
    "LossConfig",
    "OptimConfig",
    "RunConfig",
    "TrainerConfig",
    "register_configs",
    "validate_config",
]
