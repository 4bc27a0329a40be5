"""simclr-report over a generated Hydra multirun directory (one failed run included)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from simclr.console.report import cli
from simclr.errors import ConfigError
from simclr.evaluation.report import write_json
from simclr.evaluation.report_schema import (
    SCHEMA_VERSION,
    DataInfo,
    Headline,
    Report,
    ResultRow,
    Timing,
)
from simclr.evaluation.sweep import read_row, report_sweep

GRID = {  # job -> (lr, temperature, linear@10% mean or None if the run failed)
    "0": ("0.3", "0.1", 0.81),
    "1": ("0.3", "0.5", 0.86),
    "2": ("0.6", "0.1", None),
    "3": ("0.6", "0.5", 0.84),
}


def fake_report(mean: float) -> Report:
    rows = [
        ResultRow("simclr", "linear", 0.1, mean, 0.01, 10, 126, [mean] * 10),
        ResultRow("simclr", "knn", 0.1, mean - 0.1, 0.02, 10, 126, [mean - 0.1] * 10),
        ResultRow("random_init", "linear", 0.1, 0.5, 0.03, 10, 126, [0.5] * 10),
    ]
    return Report(
        schema_version=SCHEMA_VERSION,
        created="2026-11-23T10:00:00+00:00",
        command="simclr-pretrain -m ...",
        config_hash="0" * 64,
        preset="digits",
        encoder="resnet18 (cifar stem)",
        feature_dim=512,
        data=DataInfo("digits", "digits", 1257, 540, [str(i) for i in range(10)]),
        timing=Timing(100.0, 5.0, 20.0, 30.0),
        headline=Headline("simclr", "linear", 0.1, mean, 0.01, 10),
        results=rows,
    )


def job(root: Path, name: str, overrides: list[str]) -> Path:
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return d


def make_multirun(root: Path) -> Path:
    for name, (lr, t, mean) in GRID.items():
        d = job(root, name, [f"optim.lr={lr}", f"loss.temperature={t}", "trainer.max_epochs=12"])
        if mean is None:
            (d / "error.txt").write_text("simclr-pretrain: error: loss is NaN at step 3\n")
        else:
            write_json(fake_report(mean), d / "report.json")
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def test_two_by_two_sweep_gives_one_table_of_four_rows(tmp_path):
    root = make_multirun(tmp_path / "multirun")
    rows = report_sweep(root)
    assert [r.run for r in rows] == ["1", "3", "0", "2"]  # best first, the failed run last
    assert [r.status for r in rows] == ["ok", "ok", "ok", "failed"]
    assert rows[-1].message == "simclr-pretrain: error: loss is NaN at step 3"

    md = (root / "sweep.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0] == (
        "| Run | optim.lr | loss.temperature | Metric | Random init | Raw pixels | Seeds "
        "| Pretraining | Status |"
    )
    assert table[1:] == [  # each run's own baselines at the same cell; no raw pixels here
        "| 1 | 0.3 | 0.5 | 86.0 ± 1.0 | 50.0 |  | 10 | 1m 40s | ok |",
        "| 3 | 0.6 | 0.5 | 84.0 ± 1.0 | 50.0 |  | 10 | 1m 40s | ok |",
        "| 0 | 0.3 | 0.1 | 81.0 ± 1.0 | 50.0 |  | 10 | 1m 40s | ok |",
        "| 2 | 0.6 | 0.1 |  |  |  |  |  | failed: simclr-pretrain: error: loss is NaN at step 3 |",
    ]
    assert "`trainer.max_epochs=12`" in md  # the fixed override, once, above the table

    with (root / "sweep.csv").open() as f:
        records = list(csv.DictReader(f))
    assert [(r["run"], r["optim.lr"], r["loss.temperature"], r["status"]) for r in records] == [
        ("1", "0.3", "0.5", "ok"),
        ("3", "0.6", "0.5", "ok"),
        ("0", "0.3", "0.1", "ok"),
        ("2", "0.6", "0.1", "failed"),
    ]
    assert float(records[0]["metric"]) == pytest.approx(0.86) and records[3]["metric"] == ""

    payload = json.loads((root / "sweep.json").read_text())
    assert payload["schema_version"] == 2 and payload["swept"] == ["optim.lr", "loss.temperature"]
    assert len(payload["rows"]) == 4
    assert (root / "sweep.png").stat().st_size > 0


def test_another_metric_and_the_other_statuses(tmp_path):
    root = make_multirun(tmp_path / "multirun")
    job(root, "4", ["optim.lr=0.9", "loss.temperature=0.5"])  # still running / crashed
    (job(root, "5", ["optim.lr=1.2", "loss.temperature=0.5"]) / "pretrain_done").write_text("1\n")
    (job(root, "6", ["optim.lr=1.5", "loss.temperature=0.5"]) / "report.json").write_text("{}")
    rows = {r.run: r for r in report_sweep(root, evaluator="knn", fraction=0.1)}
    assert rows["1"].metric == pytest.approx(0.76)
    assert (rows["4"].status, rows["5"].status, rows["6"].status) == (
        "unfinished",
        "no-eval",
        "bad-report",
    )
    row = read_row(root / "1", "mlp", 0.1, "simclr")
    assert row.status == "no-metric" and row.metric is None
    # No run has it at all: refused, naming what the reports have; the table stays.
    before = (root / "sweep.md").read_text()
    with pytest.raises(ConfigError, match=r"no run under .* has simclr mlp at 0.1; .*knn at 0.1"):
        report_sweep(root, evaluator="mlp")
    assert (root / "sweep.md").read_text() == before


def test_a_directory_without_runs_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("simclr-report: error:") and str(tmp_path) in err[0]
    assert cli([str(tmp_path / "absent")]) == 2


def test_cli_prints_the_table(tmp_path, capsys):
    root = make_multirun(tmp_path / "multirun")
    assert cli([str(root)]) == 0
    out = capsys.readouterr().out
    assert "| 1 | 0.3 | 0.5 | 86.0 ± 1.0 | 50.0 |  | 10 | 1m 40s | ok |" in out and "4 runs" in out
