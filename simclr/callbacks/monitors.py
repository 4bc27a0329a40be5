"""The representation monitors a run's `monitor` config asks for."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import Callback

from simclr.callbacks.online_knn import OnlineKnn
from simclr.callbacks.representation import RepresentationMonitor
from simclr.config.validate import check_section


def knn_monitor_enabled(cfg: Any, num_classes: int | None = None) -> bool:
    """Whether the online kNN monitor runs (it needs validation passes over labeled data)."""
    mon = cfg.get("monitor")
    return mon is not None and bool(mon.enabled) and bool(mon.knn) and num_classes != 0


def build_monitors(cfg: Any, num_classes: int | None) -> list[Callback]:
    """RankMe / std / alignment / uniformity, and kNN when the data has labeled splits."""
    mon = cfg.get("monitor")
    if mon is None or not mon.enabled:
        return []
    check_monitor(mon)
    callbacks: list[Callback] = [
        RepresentationMonitor(
            int(mon.max_samples),
            float(mon.collapse_rank_fraction),
            float(mon.collapse_std_fraction),
        )
    ]
    if num_classes and knn_monitor_enabled(cfg, num_classes):
        knn = cfg.eval.knn  # the final kNN evaluation's k and temperature: one definition
        callbacks.append(
            OnlineKnn(num_classes, int(knn.k), float(knn.temperature), int(mon.max_samples))
        )
    return callbacks


def check_monitor(mon: Any) -> None:
    """ConfigError naming the first out-of-range `monitor.*` value (simclr/config/validate.py)."""
    check_section(mon, "monitor")
