"""The sweep table: one row per job directory; sweep.md, sweep.csv and sweep.json."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from omegaconf import OmegaConf

from simclr.errors import OutputError, SimclrError
from simclr.rundir import RunDir
from simclr.sweep.row import BASELINES, STATUS_ORDER, SweepRow

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
    from simclr.evaluation.chance import chance_levels
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
    from simclr.evaluation.chance import ChanceLevels
    from simclr.evaluation.wording import percent

    seen = {(r.chance, r.majority) for r in rows if r.chance is not None}
    if len(seen) != 1:
        return None
    uniform, majority = next(iter(seen))
    assert uniform is not None
    levels = ChanceLevels(round(1 / uniform), uniform, majority)
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
    from simclr.sweep.plot import plot

    plot(rows, keys, name, root / "sweep.png", representation)
    return rows
