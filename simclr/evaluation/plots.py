"""Figures of the report: label efficiency and a 2-D map of the test features.

matplotlib's Agg backend is selected on the figure objects themselves (no pyplot
state), so plotting works without a display and from worker processes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simclr.evaluation.report import EVALUATOR_LABELS, LABELS
from simclr.evaluation.report_schema import ResultRow


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def label_efficiency(results: Sequence[ResultRow], path: Path) -> None:
    """Accuracy against label fraction (log x), one panel per evaluator, one line
    per representation, error bars of one standard deviation over seeds."""
    by_eval: dict[str, dict[str, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        by_eval[r.evaluator][r.representation].append(r)
    fig = Figure(figsize=(4.2 * max(1, len(by_eval)), 3.6))
    axes = fig.subplots(1, max(1, len(by_eval)), squeeze=False)[0]
    for ax, (evaluator, reps) in zip(axes, by_eval.items(), strict=False):
        for rep, rows in reps.items():
            rows = sorted(rows, key=lambda r: r.fraction)
            ax.errorbar(
                [100 * r.fraction for r in rows],
                [100 * r.mean for r in rows],
                yerr=[100 * r.std for r in rows],
                marker="o",
                capsize=3,
                label=LABELS.get(rep, rep),
            )
        ax.set_xscale("log")
        ticks = sorted({100 * r.fraction for rows in reps.values() for r in rows})
        ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labels used (share of the train split)")
        ax.set_title(EVALUATOR_LABELS.get(evaluator, evaluator))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    _save(fig, path)


def project_2d(x: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """2-D map of standardised features: PCA, or t-SNE (slower, local structure)."""
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(z) - 1) / 3))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(z)


def embedding(
    features: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    path: Path,
    method: str = "pca",
) -> None:
    """One panel per representation (e.g. SimCLR beside random init): test features
    mapped to 2-D and coloured by class."""
    fig = Figure(figsize=(4.5 * len(features), 4.2))
    axes = fig.subplots(1, len(features), squeeze=False)[0]
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    colours = [cmap(i % cmap.N) for i in range(max(len(classes), 1))]
    for ax, (rep, (x, y)) in zip(axes, features.items(), strict=True):
        xy = project_2d(x, method)
        ax.scatter(xy[:, 0], xy[:, 1], c=[colours[int(c) % len(colours)] for c in y], s=6)
        ax.set_title(f"{LABELS.get(rep, rep)} ({method.upper()})")
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= 20:  # beyond that a legend is longer than the plot
        handles = [Line2D([], [], ls="", marker="o", color=c) for c in colours]
        fig.legend(handles, list(classes), loc="center right", fontsize="small", title="class")
        fig.subplots_adjust(right=0.85)
    _save(fig, path)
