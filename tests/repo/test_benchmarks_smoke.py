"""The benchmark plumbing: reference loss, step timer, result files, README table, a worker.

No timing is asserted anywhere: the figures themselves are benchmarks/results/*.json.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))

import make_table  # noqa: E402
from harness import common  # noqa: E402
from harness.ntxent_worker import reference_nt_xent  # noqa: E402
from harness.steptimer import StepTimer  # noqa: E402

from simclr.losses.ntxent import nt_xent  # noqa: E402


def double_loop_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """NT-Xent by the paper's definition, one anchor at a time, in Python floats."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2, total = z.shape[0], 0.0
    for i in range(n2):
        pos = (i + n2 // 2) % n2
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[pos]) / t) / denom)
    return total / n2


def test_benchmark_reference_loss_is_the_papers_formula_and_matches_ours():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    slow = double_loop_nt_xent(z1, z2, 0.5)
    assert reference_nt_xent(z1.double(), z2.double(), 0.5).item() == pytest.approx(slow, rel=1e-6)
    assert nt_xent(z1.double(), z2.double(), 0.5).item() == pytest.approx(slow, rel=1e-6)


def test_step_timer_leaves_out_warmup_and_finds_epoch_boundaries():
    timer = StepTimer(batch_size=10, warmup_steps=1)
    timer.step_seconds = [5.0, 1.0, 1.0, 3.0, 1.0]
    timer.epoch_first_step = [0, 3]  # the second epoch starts at step 3
    result = timer.result()
    assert result["images_per_s"] == pytest.approx(40 / 6)
    assert result["measured_steps"] == 4 and result["epoch_boundaries_measured"] == 1
    assert result["boundary_step_s"] == 3.0 and result["steady_step_s"] == 1.0


def test_results_share_fields_and_the_table_marks_missing_benchmarks(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    summary = [{"benchmark": "B1", "measure": "e2e / model", "ratio": "0.95", "goal": "≥ 0.90"}]
    path = common.write_result("b1_pipeline", title="B1", summary=summary, figures={"x": 1})
    record = json.loads(path.read_text())
    for field in ("name", "command", "machine", "cpu", "gpu", "versions", "date", "ratios"):
        assert field in record
    assert record["versions"]["torch"] and record["summary"] == summary
    block = make_table.render(common.load_results(tmp_path))
    assert "**0.95**" in block and record["machine"]["label"] in block
    assert "| B5 |" in block and "not measured" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n\nintro\n\n{block}\n\nclosing note\n")
    again = make_table.updated(readme.read_text(), block)
    assert again == readme.read_text()  # regenerating is idempotent, text around is kept
    details = make_table.render_details(common.load_results(tmp_path))
    assert "**0.95**" in details and "not measured" in details
    notes = tmp_path / "notes.md"
    notes.write_text(f"# Notes\n\n{details}\n\nreading\n")
    start, end = make_table.DETAILS_START, make_table.DETAILS_END
    assert make_table.updated(notes.read_text(), details, start, end) == notes.read_text()


def test_the_table_lists_a_note_two_results_share_once(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    for name in ("b4_time_to_accuracy", "b4_time_to_accuracy_folder"):
        common.write_result(name, title="B4", notes=["Accuracy: mean over seeds.", name])
    block = make_table.render_details(common.load_results(tmp_path))
    assert block.count("Accuracy: mean over seeds.") == 1
    assert "b4_time_to_accuracy_folder" in block  # notes that differ all stay


def test_run_worker_turns_a_failure_into_one_error_line():
    result = common.run_worker([sys.executable, "-c", "raise SystemExit('bad input')"], timeout=60)
    assert result == {"error": "exit 1: bad input"}


def test_ntxent_worker_measures_ours_at_a_tiny_size(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    check = tmp_path / "check.npz"
    np.savez(check, z1=rng.standard_normal((8, 4)), z2=rng.standard_normal((8, 4)))
    argv = [sys.executable, str(BENCH / "harness" / "ntxent_worker.py"), "--impl", "ours"]
    argv += ["--batches", "16,32", "--dim", "8", "--repeats", "1", "--check", str(check)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["batch"] for r in result["rows"]] == [16, 32]
    assert all(r["seconds"] > 0 and "peak_mib" in r for r in result["rows"])
    assert math.isfinite(result["check_value"])


def test_resolution_step_benchmark_times_every_size_and_states_the_floor():
    import b8_resolution_step as b8

    seconds = b8.measure([4, 8], batch=4, rounds=2)
    assert {size: len(times) for size, times in seconds.items()} == {4: 2, 8: 2}
    assert all(t > 0 for times in seconds.values() for t in times)
    rows = [
        {"size": 4, "seconds_per_step": 1.0, "relative_cost": 0.5, "pixels_share": 0.25},
        {"size": 8, "seconds_per_step": 2.0, "relative_cost": 1.0, "pixels_share": 1.0},
    ]
    (line,) = b8.summary(rows, "AVX2")
    assert line["ratio"] == "0.50" and "0.25" in line["goal"] and "AVX2" in line["measure"]
