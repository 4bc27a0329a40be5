"""training_curves.png: loss, learning rate, online probe, kNN and RankMe against the step.

Read from the run's CSV log (`logs/metrics.csv`, written by Lightning's CSV
logger, one row per logging call with empty cells for what that call did not
log). A run logged to TensorBoard or not at all has no CSV: then there is no
figure, and nothing fails.
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGURE = "training_curves.png"
METRICS_CSV = Path("logs") / "metrics.csv"
# (panel title, y label, columns drawn in it: the first present of each alternative list)
PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("NT-Xent loss", "loss", ("train/loss_step", "train/loss_epoch")),
    ("Learning rate", "lr", ("lr-*",)),
    ("Online linear probe", "test accuracy", ("online_probe/val_acc",)),
    ("Online kNN", "test accuracy", ("monitor/knn_acc",)),
    ("RankMe", "effective rank", ("monitor/rankme", "monitor/rankme_projection")),
)


def read_metrics(path: Path) -> dict[str, list[tuple[float, float]]]:
    """column -> [(step, value)] for every non-empty numeric cell of a Lightning CSV log."""
    series: dict[str, list[tuple[float, float]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = float(row.get("step") or "nan")
            except ValueError:
                continue
            if math.isnan(step):
                continue
            for key, cell in row.items():
                if key in ("step", "epoch") or not cell:
                    continue
                with contextlib.suppress(ValueError):  # a text column: not a curve
                    series.setdefault(key, []).append((step, float(cell)))
    return series


def _columns(series: dict[str, list[tuple[float, float]]], wanted: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in wanted:
        if name.endswith("*"):
            matches = sorted(k for k in series if k.startswith(name[:-1]))
            out += matches[:1]  # one learning-rate curve: the groups share the schedule
        elif name in series:
            out.append(name)
    return out


def training_curves(metrics_csv: Path, path: Path) -> Path | None:
    """Draw the panels of `PANELS` that the log has data for into `path`; None if none."""
    series = read_metrics(metrics_csv)
    panels = [(t, y, _columns(series, cols)) for t, y, cols in PANELS]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    fig = Figure(figsize=(3.6 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, ylabel, columns) in zip(axes, panels, strict=True):
        for column in columns:
            points = sorted(series[column])
            marker = "o" if len(points) < 30 else None  # per-epoch metrics: few points
            ax.plot(
                [s for s, _ in points], [v for _, v in points], marker=marker, ms=3, label=column
            )
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if len(columns) > 1:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def draw_training_curves(out_dir: Path, checkpoint: str | Path | None = None) -> Path | None:
    """`out_dir/training_curves.png` from the training run's CSV log, when there is one.

    The log is looked for in `out_dir` (simclr-pretrain writes the report into its
    run directory), then in the run directory of `checkpoint` (`RUN/checkpoints/x.ckpt`,
    as simclr-eval evaluates it).
    """
    candidates = [Path(out_dir) / METRICS_CSV]
    if checkpoint is not None and Path(checkpoint).parent.name == "checkpoints":
        candidates.append(Path(checkpoint).parent.parent / METRICS_CSV)
    for csv_path in candidates:
        if csv_path.is_file():
            return training_curves(csv_path, Path(out_dir) / FIGURE)
    return None
