"""One row of the sweep table: a job's overrides, status, metric and baselines."""

from __future__ import annotations

from dataclasses import dataclass, field

STATUS_ORDER = ("ok", "no-metric", "no-eval", "failed", "unfinished", "bad-report")
# The baselines shown beside the metric: each run's own (same evaluator and fraction).
BASELINES = ("random_init", "raw_pixels")


@dataclass
class SweepRow:
    """One job of the sweep."""

    run: str
    status: str  # one of STATUS_ORDER
    overrides: dict[str, str] = field(default_factory=dict)
    metric: float | None = None
    std: float | None = None
    n_seeds: int = 0
    pretrain_seconds: float | None = None
    eval_seconds: float | None = None
    message: str = ""
    # The same evaluator and fraction on the run's baselines (representation -> mean).
    baselines: dict[str, float | None] = field(default_factory=dict)
    chance: float | None = None  # 1 / classes of the run's evaluation data
    majority: float | None = None  # the majority-class rate, when known
