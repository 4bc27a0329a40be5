"""report.json and report.md: the evaluation's numbers and how they were made.

report.md is a GitHub-flavoured Markdown file that also reads well in a
terminal: the accuracy table first, then the notes (every fallback a probe took),
then the setup (command, config hash, data, machine, versions, wall time).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections import defaultdict
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import torch

from simclr.evaluation.report_schema import Headline, Report, ResultRow, report_to_dict

LABELS = {
    "simclr": "SimCLR",
    "random_init": "Random init",
    "raw_pixels": "Raw pixels",
    "supervised": "Supervised (scratch)",
}
EVALUATOR_LABELS = {"linear": "Linear", "mlp": "MLP", "knn": "kNN", "finetune": "Fine-tune"}


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape the numbers."""
    out = {"python": platform.python_version()}
    for dist in (
        "simclr",
        "torch",
        "torchvision",
        "pytorch-lightning",
        "scikit-learn",
        "hydra-core",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """CPU model and count, GPU name (or none), operating system."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    cores = str(
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    return {"cpu": _cpu_model(), "cpu_count": cores, "gpu": gpu, "os": platform.platform()}


def headline(results: Sequence[ResultRow], evaluator: str, fraction: float) -> Headline:
    """SimCLR's cell at `evaluator` and `fraction` (mean None if it was not run)."""
    for s in results:
        if (s.representation, s.evaluator) == ("simclr", evaluator) and abs(
            s.fraction - fraction
        ) < 1e-9:
            return Headline("simclr", evaluator, fraction, s.mean, s.std, s.n_seeds)
    return Headline("simclr", evaluator, fraction)


def write_json(report: Report, path: Path) -> None:
    """report.json, UTF-8, indented."""
    path.write_text(json.dumps(report_to_dict(report), indent=2) + "\n", encoding="utf-8")


def _pct(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "n/a"
    return f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def accuracy_table(report: Report) -> list[str]:
    """The Markdown table: evaluator x representation rows, one column per fraction.

    The best mean of each evaluator and fraction is in bold.
    """
    fractions = sorted({r.fraction for r in report.results})
    cells = {(r.evaluator, r.representation, r.fraction): r for r in report.results}
    best: dict[tuple[str, float], float] = defaultdict(float)
    for r in report.results:
        best[(r.evaluator, r.fraction)] = max(best[(r.evaluator, r.fraction)], r.mean)
    order = list(dict.fromkeys((r.evaluator, r.representation) for r in report.results))
    header = ["Evaluator", "Representation"] + [f"{100 * f:g}% labels" for f in fractions]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * len(fractions)]
    for evaluator, rep in order:
        row = [EVALUATOR_LABELS.get(evaluator, evaluator), LABELS.get(rep, rep)]
        for f in fractions:
            c = cells.get((evaluator, rep, f))
            text = "" if c is None else _pct(c.mean, c.std)
            row.append(f"**{text}**" if c and c.mean == best[(evaluator, f)] else text)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _label_counts(report: Report) -> str:
    seen: dict[float, tuple[int, int]] = {}
    for r in report.results:
        if r.evaluator != "finetune":
            seen.setdefault(r.fraction, (r.n_labels, r.n_seeds))
    parts = [f"{100 * f:g}% = {n} labels × {s} seeds" for f, (n, s) in sorted(seen.items())]
    return "; ".join(parts)


def _notes(report: Report) -> list[str]:
    where: dict[str, list[str]] = defaultdict(list)
    for r in report.results:
        for note in r.notes:
            where[note].append(
                f"{r.evaluator} {100 * r.fraction:g}% {LABELS.get(r.representation, r.representation)}"
            )
    out = [f"- {note} ({'; '.join(cells)})" for note, cells in where.items()]
    return out + [f"- {n}" for n in report.notes]


def render_markdown(report: Report) -> str:
    """The whole report.md."""
    h = report.headline
    d = report.data
    t = report.timing
    lines = [
        "# SimCLR evaluation report",
        "",
        f"**Headline** ({EVALUATOR_LABELS.get(h.evaluator, h.evaluator)} probe, "
        f"{100 * h.fraction:g}% labels, SimCLR): **{_pct(h.mean, h.std)} %** "
        f"over {h.n_seeds} seeds.",
        "",
        "## Test accuracy (%), mean ± sample std over seeds",
        "",
        *accuracy_table(report),
        "",
        f"Label subsets (nested, stratified, the same for every row): {_label_counts(report)}. "
        "Hyperparameters are chosen inside each labeled subset; the test split is used "
        "only to score. At 100% every seed has the same labels, so the spread there is the "
        "evaluators' own (CV folds, MLP initialisation; kNN has none).",
        "",
    ]
    notes = _notes(report)
    if notes:
        lines += ["## Notes", "", *notes, ""]
    m, v = report.machine, report.versions
    setup = [
        ("Command", f"`{report.command}`"),
        ("Config hash", f"`sha256:{report.config_hash}`"),
        ("Preset", report.preset),
        ("Checkpoint", f"`{report.checkpoint}`" if report.checkpoint else "(in memory)"),
        ("Encoder", f"{report.encoder}, {report.feature_dim}-d features"),
        (
            "Evaluation data",
            f"{d.source}: {d.n_train} train / {d.n_test} test, {len(d.classes)} classes",
        ),
        ("Machine", f"{m.get('cpu')} ({m.get('cpu_count')} cores); GPU: {m.get('gpu')}"),
        ("Versions", ", ".join(f"{k} {val}" for k, val in v.items())),
        (
            "Wall time",
            f"pretraining {_duration(t.pretrain_seconds)}; evaluation {_duration(t.eval_seconds)} "
            f"(features {_duration(t.features_seconds)}, probes {_duration(t.probes_seconds)})",
        ),
        ("Created", report.created),
    ]
    lines += ["## Setup", "", "| | |", "|---|---|"]
    lines += ["| " + k + " | " + val.replace("|", "\\|") + " |" for k, val in setup]
    return "\n".join(lines) + "\n"


def write_markdown(report: Report, path: Path) -> None:
    """report.md."""
    path.write_text(render_markdown(report), encoding="utf-8")


def command_line() -> str:
    """How this process was started, as a shell line."""
    import shlex

    return " ".join([Path(sys.argv[0]).name, *map(shlex.quote, sys.argv[1:])])
