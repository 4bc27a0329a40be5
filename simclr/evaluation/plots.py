"""The report's figures: label efficiency, the embedding, and the training curves.

training_curves.png: loss, learning rate, online probe, kNN and RankMe against the step.

Read from the run's CSV log (`logs/metrics.csv`, written by Lightning's CSV
logger, one row per logging call with empty cells for what that call did not
log). A run logged to TensorBoard or not at all has no CSV: then there is no
figure, and nothing fails.

Figures of the report: label efficiency and a 2-D map of the test features.

Each figure is built by a function returning its matplotlib `Figure` (so a test can
read its titles, axis labels, legends and lines) and written by `save`. The Agg
canvas is attached to the figure objects themselves (no pyplot state), so plotting
works without a display and from worker processes.

A figure says what it shows without report.md beside it: the title names the data,
the split and the counts, the axes their units, the legend the lines (chance
included) and a caption what the error bars are.
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simclr.evaluation.report import EVALUATOR_LABELS, LABELS
from simclr.evaluation.report_schema import DataInfo, Report, ResultRow
from simclr.evaluation.wording import (
    ChanceLevels,
    chance_levels,
    data_title,
    error_bar_caption,
    percent,
)

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


CHANCE_STYLE = {"color": "0.45", "linestyle": "--", "linewidth": 1.0}
MAJORITY_STYLE = {"color": "0.45", "linestyle": ":", "linewidth": 1.2}


def save(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG (the caption below the axes included); return `path`."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def draw_chance(ax: Axes, levels: ChanceLevels) -> None:
    """Horizontal lines (in %) at uniform chance and, if it differs, the majority-class rate."""
    ax.axhline(
        100 * levels.uniform,
        label=f"chance ({percent(levels.uniform)}%, 1 of {levels.n_classes})",
        **CHANCE_STYLE,  # type: ignore[arg-type]
    )
    if levels.majority_differs and levels.majority is not None:
        ax.axhline(
            100 * levels.majority,
            label=f"majority class ({percent(levels.majority)}%)",
            **MAJORITY_STYLE,  # type: ignore[arg-type]
        )


def _y_range(results: Sequence[ResultRow], levels: ChanceLevels) -> tuple[float, float]:
    """One y-range (in %) for every panel: from chance (or the lowest bar) to the
    highest bar, padded."""
    bars = [(r.mean, r.std if r.n_seeds >= 2 else 0.0) for r in results]
    low = 100 * min([*(m - s for m, s in bars), levels.uniform, levels.majority or 1.0])
    high = 100 * max(m + s for m, s in bars)
    pad = max(2.0, 0.05 * (high - low))
    return max(0.0, low - pad), min(101.0, high + pad)


def label_efficiency_figure(report: Report) -> Figure:
    """Accuracy against label fraction (log x), one panel per evaluator on a shared
    y-axis, one line per representation, chance as a grey line; error bars of one
    sample standard deviation over seeds where a point has two or more."""
    results = report.results
    by_eval: dict[str, dict[str, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        by_eval[r.evaluator][r.representation].append(r)
    levels = chance_levels(report.data)
    n = max(1, len(by_eval))
    fig = Figure(figsize=(4.2 * n, 4.0))
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, (evaluator, reps) in zip(axes, by_eval.items(), strict=False):
        for rep, rows in reps.items():
            rows = sorted(rows, key=lambda r: r.fraction)
            ax.errorbar(
                [100 * r.fraction for r in rows],
                [100 * r.mean for r in rows],
                yerr=[100 * r.std if r.n_seeds >= 2 else 0.0 for r in rows],
                marker="o",
                capsize=3,
                label=LABELS.get(rep, rep),
            )
        draw_chance(ax, levels)
        ax.set_xscale("log")
        ticks = sorted({100 * r.fraction for rows in reps.values() for r in rows})
        ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labels used (share of the train split)")
        ax.set_title(EVALUATOR_LABELS.get(evaluator, evaluator))
        ax.grid(True, alpha=0.3)
    if results:
        axes[0].set_ylim(*_y_range(results, levels))
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"Label efficiency on {data_title(report.data)}")
    fig.tight_layout()
    fig.text(0.5, -0.02, error_bar_caption(results), ha="center", va="top", fontsize="small")
    return fig


def label_efficiency(report: Report, path: Path) -> Figure:
    """`label_efficiency_figure(report)` written to `path`; returns the figure."""
    fig = label_efficiency_figure(report)
    save(fig, path)
    return fig


@dataclass(frozen=True)
class Projection:
    """A 2-D map of features and the names of its axes."""

    xy: np.ndarray
    xlabel: str
    ylabel: str
    method: str  # "PCA" or "t-SNE"


def project_2d(x: np.ndarray, method: str, seed: int = 0) -> Projection:
    """2-D map of standardised features: PCA (axes: the principal components with the
    share of variance each explains), or t-SNE (slower, local structure; its axes have
    no units)."""
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(z) - 1) / 3))
        xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)
        return Projection(xy, "t-SNE 1", "t-SNE 2", "t-SNE")
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(z)
    share = pca.explained_variance_ratio_
    return Projection(
        pca.transform(z),
        f"PC1 ({100 * share[0]:.0f}% of variance)",
        f"PC2 ({100 * share[1]:.0f}% of variance)",
        "PCA",
    )


def embedding_figure(
    features: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    method: str = "pca",
    *,
    data: DataInfo | None = None,
    split: str = "test",
) -> Figure:
    """One panel per representation (e.g. SimCLR beside random init): the `split`
    features mapped to 2-D and coloured by class; the title names the data, the
    split, the number of points and the method."""
    fig = Figure(figsize=(4.5 * len(features), 4.6))
    axes = fig.subplots(1, len(features), squeeze=False)[0]
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    colours = [cmap(i % cmap.N) for i in range(max(len(classes), 1))]
    points, name = 0, "features"
    for ax, (rep, (x, y)) in zip(axes, features.items(), strict=True):
        proj = project_2d(x, method)
        ax.scatter(proj.xy[:, 0], proj.xy[:, 1], c=[colours[int(c) % len(colours)] for c in y], s=6)
        ax.set_title(LABELS.get(rep, rep))
        ax.set_xlabel(proj.xlabel)
        ax.set_ylabel(proj.ylabel)
        ax.set_xticks([])
        ax.set_yticks([])
        points, name = len(x), proj.method
    where = f"{data.name} {split} split" if data is not None else f"{split} split"
    units = " (t-SNE axes have no units)" if name == "t-SNE" else ""
    fig.suptitle(f"{where}: {points} points, {name} of the standardised features{units}")
    fig.tight_layout()
    if len(classes) <= 20:  # beyond that a legend is longer than the plot
        handles = [Line2D([], [], ls="", marker="o", color=c) for c in colours]
        fig.legend(handles, list(classes), loc="center right", fontsize="small", title="class")
        fig.subplots_adjust(right=0.85)
    return fig


def embedding(
    features: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    path: Path,
    method: str = "pca",
    *,
    data: DataInfo | None = None,
    split: str = "test",
) -> Figure:
    """`embedding_figure(...)` written to `path`; returns the figure."""
    fig = embedding_figure(features, classes, method, data=data, split=split)
    save(fig, path)
    return fig
