"""simclr: SimCLR pretraining and few-label evaluation on Lightning 2 and Hydra.

The public entry points are imported lazily so that `import simclr` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "pretrain": "simclr.api",
    "evaluate": "simclr.api",
    "RunResult": "simclr.api",
    "SimclrError": "simclr.errors",
    "load_encoder": "simclr.hub",
    "load_classifier": "simclr.hub.classifier",
    "embed": "simclr.hub",
    "embed_labeled": "simclr.hub",
    "LabeledFeatures": "simclr.hub",
    "nt_xent": "simclr.losses.ntxent",
    "NTXentLoss": "simclr.losses.ntxent",
    "build_encoder": "simclr.models.encoder",
    "ProjectionHead": "simclr.models.head",
    "build_view_transform": "simclr.data.views",
    "TwoViews": "simclr.data.views",
    "build_optimizer": "simclr.training.optim",
    "AugmentConfig": "simclr.config.schema",
    "EncoderConfig": "simclr.config.schema",
    "OptimConfig": "simclr.config.schema",
    "RunConfig": "simclr.config.schema",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simclr' has no attribute {name!r}")
