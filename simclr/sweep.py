"""One table over the runs of a Hydra multirun directory (the library side of `simclr-report`).

Each job directory (`0/`, `1/`, ... with `.hydra/overrides.yaml`) is one row: its
swept overrides as columns, its status, and the metric (SimCLR's mean test
accuracy for one evaluator and label fraction, by default the linear probe at
10%). Writes sweep.md (sorted by the metric), sweep.csv, sweep.json and
sweep.png (the metric against each swept parameter) into DIR. Runs that failed
or have not finished are rows marked so, never dropped.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from simclr.errors import OutputError, SimclrError
from simclr.rundir import RunDir

SWEEP_SCHEMA_VERSION = 1
STATUS_ORDER = ("ok", "no-metric", "no-eval", "failed", "unfinished", "bad-report")


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
        for r in report.results:
            if (r.representation, r.evaluator) == (representation, evaluator) and abs(
                r.fraction - fraction
            ) < 1e-9:
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


def write_csv(rows: list[SweepRow], keys: list[str], path: Path) -> None:
    """sweep.csv: one row per run; the metric as a fraction in [0, 1]."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "status", *keys, "metric", "std", "n_seeds", "message"])
        for r in rows:
            values = [r.overrides.get(k, "") for k in keys]
            metric = "" if r.metric is None else f"{r.metric:.6f}"
            std = "" if r.std is None else f"{r.std:.6f}"
            writer.writerow([r.run, r.status, *values, metric, std, r.n_seeds, r.message])


def render_markdown(rows: list[SweepRow], keys: list[str], metric_name: str, root: Path) -> str:
    """sweep.md: the table, best run first."""
    fixed = {k: v for k, v in rows[0].overrides.items() if k not in keys} if rows else {}
    lines = [
        f"# Sweep {root}",
        "",
        f"Metric: {metric_name} (test accuracy %, mean ± std over seeds).",
        "",
    ]
    if fixed:
        lines += ["Fixed overrides: " + ", ".join(f"`{k}={v}`" for k, v in fixed.items()), ""]
    header = ["Run", *keys, "Metric", "Seeds", "Status"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * (1 + len(keys)) + "---:|---:|---|"]
    for r in rows:
        metric = "" if r.metric is None else f"{_pct(r.metric)} ± {_pct(r.std)}"
        status = r.status + (f": {r.message}" if r.message and r.status != "ok" else "")
        cells = [
            r.run,
            *(r.overrides.get(k, "") for k in keys),
            metric,
            str(r.n_seeds or ""),
            status,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[SweepRow], keys: list[str], metric_name: str, path: Path) -> None:
    """sweep.png: the metric against each swept parameter (finished runs only)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [r for r in rows if r.metric is not None]
    fig = Figure(figsize=(4 * max(1, len(keys)), 3.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(keys)), squeeze=False)[0]
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
            yerr=[100 * (r.std or 0) for r in done],
            fmt="o",
            capsize=3,
        )
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks)
        ax.set_xlabel(key)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"{metric_name} (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report_sweep(
    root: Path, evaluator: str = "linear", fraction: float = 0.1, representation: str = "simclr"
) -> list[SweepRow]:
    """Read every job under `root`; write sweep.md/csv/json/png into `root`; return the rows."""
    rows = sort_rows([read_row(j, evaluator, fraction, representation) for j in job_dirs(root)])
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
    plot(rows, keys, name, root / "sweep.png")
    return rows
