"""sweep.png: the metric of a sweep against each swept parameter, baselines and chance drawn.

`sweep_figure` returns the matplotlib Figure (a test reads its title, labels and
lines); `plot` writes it beside sweep.md.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simclr.evaluation.chance import ChanceLevels
from simclr.evaluation.plots import draw_chance
from simclr.evaluation.report import LABELS
from simclr.sweep.row import BASELINES, SweepRow


def sweep_figure(
    rows: list[SweepRow],
    keys: list[str],
    metric_name: str,
    title: str,
    representation: str = "simclr",
) -> Figure:
    """The metric against each swept parameter (finished runs only), each run's
    baselines as grey markers and chance as a grey line (when all runs agree on it); error bars of one sample
    std where a run has two seeds or more."""
    done = [r for r in rows if r.metric is not None]
    fig = Figure(figsize=(4.4 * max(1, len(keys)), 3.8))
    axes = fig.subplots(1, max(1, len(keys)), squeeze=False, sharey=True)[0]
    seen = {(r.chance, r.majority) for r in done if r.chance is not None}
    levels = None
    if len(seen) == 1:  # drawn when every run has the same data
        uniform, majority = next(iter(seen))
        assert uniform is not None
        levels = ChanceLevels(round(1 / uniform), uniform, majority)
    for ax, key in zip(axes, keys, strict=False):
        values = [r.overrides.get(key, "") for r in done]
        try:
            xs: list[float] = [float(v) for v in values]
            ticks = None
        except ValueError:  # categorical: one position per distinct value
            ticks = sorted(set(values))
            xs = [float(ticks.index(v)) for v in values]
        ax.errorbar(
            xs,
            [100 * (r.metric or 0) for r in done],
            yerr=[100 * (r.std or 0) if r.n_seeds >= 2 else 0.0 for r in done],
            fmt="o",
            capsize=3,
            label=LABELS.get(representation, representation),
        )
        for baseline, marker in zip(BASELINES, ("x", "s"), strict=True):
            points = [
                (x, v)
                for x, r in zip(xs, done, strict=True)
                if (v := r.baselines.get(baseline)) is not None
            ]
            if points:
                ax.scatter(
                    [x for x, _ in points],
                    [100 * v for _, v in points],
                    marker=marker,
                    color="0.5",
                    facecolors="none" if marker == "s" else None,
                    label=LABELS[baseline],
                )
        if levels is not None:
            draw_chance(ax, levels)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks)
        ax.set_xlabel(key)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"{metric_name} (%)")
    if done:
        axes[0].legend(loc="best", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot(
    rows: list[SweepRow],
    keys: list[str],
    metric_name: str,
    path: Path,
    representation: str = "simclr",
) -> Figure:
    """sweep.png: `sweep_figure`, titled with the sweep directory and the runs shown."""
    done = sum(r.metric is not None for r in rows)
    where = f"{path.parent.parent.name}/{path.parent.name}"  # multirun/<date>/<time>
    title = f"Sweep {where}: {metric_name}, {done} of {len(rows)} runs with a metric"
    fig = sweep_figure(rows, keys, metric_name, title, representation)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
