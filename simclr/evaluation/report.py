"""The evaluation report: its rows, its setup lines and report.md.

The report's setup rows on how the encoder was trained and its features extracted.

report.json and report.md: the evaluation's numbers and how they were made.

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
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import torch

from simclr.evaluation.report_schema import (
    Hardware,
    Headline,
    Report,
    ResultRow,
    Step,
    Training,
    report_to_dict,
)
from simclr.evaluation.wording import (
    chance_levels,
    duration,
    figure_captions,
    percent,
    seeds_by_fraction,
    seeds_text,
)


def _hardware(h: Hardware) -> str:
    fmt = "on" if h.channels_last else "off"
    return f"{h.precision}, channels_last {fmt} ({h.device}; {h.precision_reason}; {h.channels_last_reason})"


def _step(s: Step) -> str:
    compiled = "compiled" if s.compile else "not compiled"
    if s.compile and s.compile_seconds is not None:
        compiled += f" (first step {s.compile_seconds:.1f} s)"
    return (
        f"{compiled}, views on {s.views}, JPEG decode on {s.decode} "
        f"({s.compile_reason}; {s.views_reason}; {s.decode_reason})"
    )


def view_sizes_text(runs: list[list[int]]) -> str:
    """`[[8, 20], [12, 5], [16, 9]]` -> "8 px ×20, 12 px ×5, 16 px ×9" (batches at each size)."""
    return ", ".join(f"{size} px ×{count}" for size, count in runs)


def _schedule(t: Training) -> str:
    ran = f"ran {t.steps} steps ({t.epochs:.2f} epochs of {t.steps_per_epoch} steps)"
    planned = f"planned {t.planned_steps} steps ({t.planned_epochs:.2f} epochs)"
    views = f"; batches by view size: {view_sizes_text(t.view_sizes)}" if t.view_sizes else ""
    if t.max_time is None:
        return f"{planned}, {ran}{views}"
    seconds = f" ({t.budget_seconds:.0f} s)" if t.budget_seconds is not None else ""
    return f"budget `trainer.max_time={t.max_time}`{seconds}; {planned}, {ran}{views}"


def setup_rows(report: Report) -> list[tuple[str, str]]:
    """The rows on how the encoder was trained and its features extracted (schema 2)."""
    rows = []
    if report.training is not None:
        rows.append(("Pretraining precision", _hardware(report.training.hardware)))
        if report.training.step is not None:
            rows.append(("Pretraining step", _step(report.training.step)))
        rows.append(("Schedule", _schedule(report.training)))
    if report.features_hardware is not None:
        rows.append(("Feature extraction", _hardware(report.features_hardware)))
    return rows


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


def chance_rows(report: Report, fractions: Sequence[float]) -> list[list[str]]:
    """Table rows of what guessing scores: uniform chance, and the majority class when
    its rate differs (the same at every label fraction)."""
    levels = chance_levels(report.data)
    rows = [
        ["Chance", f"1 of {levels.n_classes} classes", *[percent(levels.uniform)] * len(fractions)]
    ]
    if levels.majority_differs:
        assert levels.majority is not None
        rows.append(
            [
                "Chance",
                f"Majority class ({levels.majority_class})",
                *[percent(levels.majority)] * len(fractions),
            ]
        )
    return rows


def accuracy_table(report: Report) -> list[str]:
    """The Markdown table: evaluator x representation rows, one column per fraction,
    then the chance levels.

    The best mean of each evaluator and fraction is in bold; `± std` only where
    the cell has two seeds or more.
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
            text = "" if c is None else percent(c.mean, c.std, c.n_seeds)
            row.append(f"**{text}**" if c and c.mean == best[(evaluator, f)] else text)
        lines.append("| " + " | ".join(row) + " |")
    for row in chance_rows(report, fractions):
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _label_counts(report: Report) -> str:
    seen: dict[float, tuple[int, int]] = {}
    for r in report.results:
        if r.evaluator != "finetune":
            seen.setdefault(r.fraction, (r.n_labels, r.n_seeds))
    parts = [f"{100 * f:g}% = {n} labels × {seeds_text(s)}" for f, (n, s) in sorted(seen.items())]
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


def figures_section(report: Report, figures: Mapping[str, str]) -> list[str]:
    """The Markdown lines listing `figures` (figure -> file name beside report.md)."""
    if not figures:
        return []
    captions = figure_captions(report)
    lines = ["## Figures", ""]
    for kind, name in figures.items():
        lines.append(f"- [{name}]({name}): {captions.get(kind, kind)}.")
    return [*lines, ""]


def _headline(report: Report) -> str:
    h = report.headline
    if h.mean is None:
        value = "not evaluated"
    elif h.n_seeds >= 2:
        value = (
            f"**{percent(h.mean, h.std, h.n_seeds)} %** (mean ± std over {seeds_text(h.n_seeds)})"
        )
    else:
        value = f"**{percent(h.mean)} %** ({seeds_text(h.n_seeds)})"
    return (
        f"**Headline** ({EVALUATOR_LABELS.get(h.evaluator, h.evaluator)} probe, "
        f"{100 * h.fraction:g}% labels, SimCLR): {value}; chance "
        f"{percent(chance_levels(report.data).uniform)} %."
    )


def _table_heading(report: Report) -> str:
    spread = any(r.n_seeds >= 2 for r in report.results)
    single = any(r.n_seeds < 2 for r in report.results)
    how = "mean ± sample std over seeds" if spread else "one seed per cell"
    if spread and single:
        how += " (no ± where one seed)"
    return f"## Test accuracy (%) on the {report.data.n_test} test images, {how}"


def render_markdown(report: Report, figures: Mapping[str, str] | None = None) -> str:
    """The whole report.md; `figures` (figure -> file name) are listed with captions."""
    d = report.data
    t = report.timing
    full_seeds = seeds_by_fraction(report.results).get(1.0, 0)
    spread_at_full = (
        " At 100% every seed has the same labels, so the spread there is the evaluators' "
        "own (CV folds, MLP initialisation; kNN has none)."
        if full_seeds >= 2
        else ""
    )
    lines = [
        "# SimCLR evaluation report",
        "",
        _headline(report),
        "",
        _table_heading(report),
        "",
        *accuracy_table(report),
        "",
        f"Label subsets (nested, stratified, the same for every row): {_label_counts(report)}. "
        "Hyperparameters are chosen inside each labeled subset; the test split is used "
        "only to score. Seeds that draw the same labels (all of them at 100%) are fitted once."
        f"{spread_at_full} Chance: a uniform guess"
        + (
            "; majority class: always answering the train split's most frequent class."
            if chance_levels(d).majority_differs
            else "."
        ),
        "",
        *figures_section(report, figures or {}),
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
        *setup_rows(report),
        ("Versions", ", ".join(f"{k} {val}" for k, val in v.items())),
        (
            "Wall time",
            f"pretraining {duration(t.pretrain_seconds)}; evaluation {duration(t.eval_seconds)} "
            f"(features {duration(t.features_seconds)}, probes {duration(t.probes_seconds)})",
        ),
        ("Created", report.created),
    ]
    lines += ["## Setup", "", "| | |", "|---|---|"]
    lines += ["| " + k + " | " + val.replace("|", "\\|") + " |" for k, val in setup]
    return "\n".join(lines) + "\n"


def write_markdown(report: Report, path: Path, figures: Mapping[str, str] | None = None) -> None:
    """report.md (`figures`: figure -> file name beside it, see `render_markdown`)."""
    path.write_text(render_markdown(report, figures), encoding="utf-8")


def command_line() -> str:
    """How this process was started, as a shell line."""
    import shlex

    return " ".join([Path(sys.argv[0]).name, *map(shlex.quote, sys.argv[1:])])
