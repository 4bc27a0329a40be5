"""One table over the runs of a Hydra multirun directory (the library side of `simclr-report`).

Each job directory (`0/`, `1/`, ... with `.hydra/overrides.yaml`) is one row: its
swept overrides as columns, its status, and the metric (SimCLR's mean test
accuracy for one evaluator and label fraction, by default the linear probe at
10%), beside the same metric of the run's baselines (random init, raw pixels)
and its pretraining time. Writes sweep.md (sorted by the metric), sweep.csv,
sweep.json and sweep.png (the metric against each swept parameter, baselines and
chance drawn) into DIR. Runs that failed or have not finished are rows marked
so, never dropped.

One row of the sweep table: a job's overrides, status, metric and baselines.

sweep.png: the metric of a sweep against each swept parameter, baselines and chance drawn.

`sweep_figure` returns the matplotlib Figure (a test reads its title, labels and
lines); `plot` writes it beside sweep.md.

The sweep table: one row per job directory; sweep.md, sweep.csv and sweep.json.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from simclr.errors import ConfigError, OutputError, SimclrError
from simclr.evaluation.plots import draw_chance
from simclr.evaluation.report import LABELS
from simclr.evaluation.wording import ChanceLevels
from simclr.runs.rundir import RunDir

__all__ = [
    "BASELINES",
    "STATUS_ORDER",
    "SWEEP_SCHEMA_VERSION",
    "SweepRow",
    "read_row",
    "report_sweep",
]


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


def _shared_chance(done: list[SweepRow]) -> ChanceLevels | None:
    """The chance levels every finished run agrees on (the same data), else None."""
    seen = {(r.chance, r.majority) for r in done if r.chance is not None}
    if len(seen) != 1:
        return None
    uniform, majority = next(iter(seen))
    assert uniform is not None
    return ChanceLevels(round(1 / uniform), uniform, majority)


def _draw_baselines(ax: Axes, xs: list[float], done: list[SweepRow]) -> None:
    """Each run's baselines as grey markers at its x."""
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
    levels = _shared_chance(done)
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
        _draw_baselines(ax, xs, done)
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


SWEEP_SCHEMA_VERSION = 2


def job_dirs(root: Path) -> list[Path]:
    """The job directories under a multirun directory, in job-number order."""
    if not root.is_dir():
        raise OutputError(f"{root}: no such directory; expected a Hydra multirun directory")
    jobs = [p for p in root.iterdir() if (RunDir(p).hydra / "overrides.yaml").is_file()]
    if not jobs:
        raise OutputError(
            f"{root}: no runs (no */.hydra/overrides.yaml); expected a Hydra multirun directory"
        )
    return sorted(
        jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name)
    )


def read_overrides(job: Path) -> dict[str, str]:
    """`key -> value` of the job's command-line overrides."""
    items = OmegaConf.to_container(OmegaConf.load(RunDir(job).hydra / "overrides.yaml"))
    out = {}
    for item in items if isinstance(items, list) else []:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def read_row(job: Path, evaluator: str, fraction: float, representation: str) -> SweepRow:
    """The row of one job directory."""
    from simclr.evaluation.report_schema import load_report
    from simclr.evaluation.wording import chance_levels

    run = RunDir(job)
    row = SweepRow(run=job.name, status="unfinished", overrides=read_overrides(job))
    if run.report_json.is_file():
        try:
            report = load_report(run.report_json)
        except SimclrError as err:
            row.status, row.message = "bad-report", str(err)
            return row
        row.pretrain_seconds = report.timing.pretrain_seconds
        row.eval_seconds = report.timing.eval_seconds
        levels = chance_levels(report.data)
        row.chance, row.majority = levels.uniform, levels.majority
        cells = {
            r.representation: r
            for r in report.results
            if r.evaluator == evaluator and abs(r.fraction - fraction) < 1e-9
        }
        row.baselines = {b: cells[b].mean if b in cells else None for b in BASELINES}
        if representation in cells:
            r = cells[representation]
            row.status, row.metric, row.std, row.n_seeds = "ok", r.mean, r.std, r.n_seeds
            return row
        row.status, row.message = "no-metric", f"no {representation} {evaluator} at {fraction:g}"
    elif run.error_file.is_file():
        lines = run.error_file.read_text(errors="replace").strip().splitlines()
        row.status, row.message = "failed", lines[0] if lines else ""
    elif run.pretrain_done.is_file():
        row.status, row.message = "no-eval", "pretrained with eval=none"
    else:
        row.message = "no report yet: still running, or crashed without a message"
    return row


def swept_keys(rows: list[SweepRow]) -> list[str]:
    """Override keys whose value is not the same in every run (in first-seen order)."""
    keys = list(dict.fromkeys(k for r in rows for k in r.overrides))
    return [k for k in keys if len({r.overrides.get(k) for r in rows}) > 1]


def sort_rows(rows: list[SweepRow]) -> list[SweepRow]:
    """Best metric first; runs without a metric after, by status then run."""
    return sorted(
        rows,
        key=lambda r: (
            r.metric is None,
            -(r.metric or 0.0),
            STATUS_ORDER.index(r.status) if r.status in STATUS_ORDER else len(STATUS_ORDER),
            r.run,
        ),
    )


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def write_csv(rows: list[SweepRow], keys: list[str], path: Path) -> None:
    """sweep.csv: one row per run; the metric and baselines as fractions in [0, 1]."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        stats = ["metric", "std", "n_seeds", *BASELINES, "chance", "pretrain_seconds"]
        writer.writerow(["run", "status", *keys, *stats, "message"])
        for r in rows:
            values = [r.overrides.get(k, "") for k in keys]
            base = [_fraction(r.baselines.get(b)) for b in BASELINES]
            seconds = "" if r.pretrain_seconds is None else f"{r.pretrain_seconds:.1f}"
            metric = [_fraction(r.metric), _fraction(r.std), r.n_seeds]
            writer.writerow(
                [r.run, r.status, *values, *metric, *base, _fraction(r.chance), seconds, r.message]
            )


def _chance_line(rows: list[SweepRow]) -> str | None:
    """`Chance: 10.0 % (...)` when every finished run has the same chance levels."""
    from simclr.evaluation.wording import percent

    levels = _shared_chance([r for r in rows if r.chance is not None])
    if levels is None:
        return None
    uniform, majority = levels.uniform, levels.majority
    text = f"Chance: {percent(uniform)} % (a uniform guess over {levels.n_classes} classes)"
    if levels.majority_differs:
        text += f"; majority class: {percent(majority)} %"
    return text + "."


def render_markdown(rows: list[SweepRow], keys: list[str], metric_name: str, root: Path) -> str:
    """sweep.md: the table, best run first, with each run's baselines and pretraining time."""
    from simclr.evaluation.report import LABELS
    from simclr.evaluation.wording import duration, percent

    fixed = {k: v for k, v in rows[0].overrides.items() if k not in keys} if rows else {}
    lines = [
        f"# Sweep {root}",
        "",
        f"Metric: {metric_name} (test accuracy %, mean ± sample std over seeds; no ± where "
        f"one seed). {' and '.join(LABELS[b] for b in BASELINES)}: the same evaluator and "
        "label fraction on each run's own baselines. Pretraining: wall time.",
        "",
    ]
    chance = _chance_line(rows)
    if chance:
        lines += [chance, ""]
    if fixed:
        lines += ["Fixed overrides: " + ", ".join(f"`{k}={v}`" for k, v in fixed.items()), ""]
    header = ["Run", *keys, "Metric", *(LABELS[b] for b in BASELINES), "Seeds", "Pretraining"]
    header.append("Status")
    align = "|" + "---|" * (1 + len(keys)) + "---:|" * (len(BASELINES) + 3) + "---|"
    lines += ["| " + " | ".join(header) + " |", align]
    for r in rows:
        metric = "" if r.metric is None else percent(r.metric, r.std, r.n_seeds)
        status = r.status + (f": {r.message}" if r.message and r.status != "ok" else "")
        seconds = "" if r.pretrain_seconds is None else duration(r.pretrain_seconds)
        cells = [
            r.run,
            *(r.overrides.get(k, "") for k in keys),
            metric,
            *(_pct(r.baselines.get(b)) for b in BASELINES),
            str(r.n_seeds or ""),
            seconds,
            status,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _check_metric_found(
    rows: list[SweepRow], root: Path, evaluator: str, fraction: float, representation: str
) -> None:
    """ConfigError, before anything is written, when runs have reports but none has the
    metric asked for (a fraction or evaluator they were not evaluated at)."""
    if any(r.status == "ok" for r in rows) or not any(r.status == "no-metric" for r in rows):
        return
    from simclr.evaluation.report_schema import load_report

    found: set[tuple[str, float]] = set()
    for r in rows:
        if r.status == "no-metric":
            report = load_report(RunDir(root / r.run).report_json)
            found |= {(x.evaluator, x.fraction) for x in report.results}
    have = ", ".join(f"{e} at {f:g}" for e, f in sorted(found))
    raise ConfigError(
        f"--evaluator {evaluator} --fraction {fraction:g}: no run under {root} has "
        f"{representation} {evaluator} at {fraction:g}; their reports have {have}"
    )


def report_sweep(
    root: Path, evaluator: str = "linear", fraction: float = 0.1, representation: str = "simclr"
) -> list[SweepRow]:
    """Read every job under `root`; write sweep.md/csv/json/png into `root`; return the rows."""
    rows = sort_rows([read_row(j, evaluator, fraction, representation) for j in job_dirs(root)])
    _check_metric_found(rows, root, evaluator, fraction, representation)
    keys = swept_keys(rows)
    name = f"{representation} {evaluator} @ {fraction * 100:g}% labels"
    write_csv(rows, keys, root / "sweep.csv")
    (root / "sweep.md").write_text(render_markdown(rows, keys, name, root), encoding="utf-8")
    payload = {
        "schema_version": SWEEP_SCHEMA_VERSION,
        "metric": {"representation": representation, "evaluator": evaluator, "fraction": fraction},
        "swept": keys,
        "rows": [asdict(r) for r in rows],
    }
    (root / "sweep.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    from simclr.evaluation.sweep import plot

    plot(rows, keys, name, root / "sweep.png", representation)
    return rows
