"""The block a command ends with: what came out, where it is, what to run next."""

from __future__ import annotations

from pathlib import Path

from simclr.evaluation.report_schema import Report, load_report
from simclr.rundir import RunDir

NAMES = {"simclr": "SimCLR", "random_init": "random init", "raw_pixels": "raw pixels"}


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _cell(mean: float, std: float | None, n_seeds: int) -> str:
    # A spread over one seed is no spread: shown only with two seeds or more.
    return f"{100 * mean:.1f} ± {100 * (std or 0):.1f}" if n_seeds > 1 else f"{100 * mean:.1f}"


def headline_lines(report: Report) -> list[str]:
    """The headline cell for SimCLR and each baseline, one line."""
    h = report.headline
    if h.mean is None:
        return ["headline  not evaluated"]
    cells = [f"SimCLR {_cell(h.mean, h.std, h.n_seeds)}"]
    for row in report.results:
        same = (row.evaluator, row.fraction) == (h.evaluator, h.fraction)
        if same and row.representation != "simclr":
            name = NAMES.get(row.representation, row.representation)
            cells.append(f"{name} {_cell(row.mean, row.std, row.n_seeds)}")
    return [f"headline  {h.evaluator} at {h.fraction * 100:g}% labels (%): {', '.join(cells)}"]


def final_block(program: str, run: RunDir, report_md: Path | None, weights: Path) -> str:
    """The lines that end a pretraining or evaluation run."""
    lines = [f"{program} done"]
    if report_md is not None:
        report = load_report(report_md.with_name("report.json"))
        t = report.timing
        lines += [
            f"time      pretraining {_minutes(t.pretrain_seconds)}, "
            f"evaluation {_minutes(t.eval_seconds)}",
            *headline_lines(report),
        ]
    source = run.path if weights.parent == run.checkpoints else weights
    lines += [
        f"weights   {weights}",
        f"next      simclr-eval checkpoint={source}        # evaluate (again, or on other data)",
        f"          simclr-export {source} encoder.onnx    # or .safetensors / .pt",
    ]
    if report_md is not None:
        lines.append(f"report: {report_md}")
    return "\n".join(lines)
