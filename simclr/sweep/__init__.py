"""One table over the runs of a Hydra multirun directory (the library side of `simclr-report`).

Each job directory (`0/`, `1/`, ... with `.hydra/overrides.yaml`) is one row: its
swept overrides as columns, its status, and the metric (SimCLR's mean test
accuracy for one evaluator and label fraction, by default the linear probe at
10%), beside the same metric of the run's baselines (random init, raw pixels)
and its pretraining time. Writes sweep.md (sorted by the metric), sweep.csv,
sweep.json and sweep.png (the metric against each swept parameter, baselines and
chance drawn) into DIR. Runs that failed or have not finished are rows marked
so, never dropped.
"""

from simclr.sweep.row import BASELINES, STATUS_ORDER, SweepRow
from simclr.sweep.table import SWEEP_SCHEMA_VERSION, read_row, report_sweep

__all__ = [
    "BASELINES",
    "STATUS_ORDER",
    "SWEEP_SCHEMA_VERSION",
    "SweepRow",
    "read_row",
    "report_sweep",
]
