"""The report's setup rows on how the encoder was trained and its features extracted."""

from __future__ import annotations

from simclr.evaluation.report_schema import Hardware, Report, Training


def _hardware(h: Hardware) -> str:
    fmt = "on" if h.channels_last else "off"
    return f"{h.precision}, channels_last {fmt} ({h.device}; {h.precision_reason}; {h.channels_last_reason})"


def _schedule(t: Training) -> str:
    ran = f"ran {t.steps} steps ({t.epochs:.2f} epochs of {t.steps_per_epoch} steps)"
    planned = f"planned {t.planned_steps} steps ({t.planned_epochs:.2f} epochs)"
    if t.max_time is None:
        return f"{planned}, {ran}"
    seconds = f" ({t.budget_seconds:.0f} s)" if t.budget_seconds is not None else ""
    return f"budget `trainer.max_time={t.max_time}`{seconds}; {planned}, {ran}"


def setup_rows(report: Report) -> list[tuple[str, str]]:
    """The rows on how the encoder was trained and its features extracted (schema 2)."""
    rows = []
    if report.training is not None:
        rows.append(("Pretraining precision", _hardware(report.training.hardware)))
        rows.append(("Schedule", _schedule(report.training)))
    if report.features_hardware is not None:
        rows.append(("Feature extraction", _hardware(report.features_hardware)))
    return rows
