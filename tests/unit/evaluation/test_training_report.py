"""What a pretraining run's report says about its training: the hardware choice and
reason, the budget, the planned and the taken steps and epochs (report schema 2)."""

from __future__ import annotations

import json

import simclr
from simclr.evaluation.report import render_markdown
from simclr.evaluation.report_schema import SCHEMA_VERSION, as_training, load_report
from simclr.training.callbacks.budget import projected_total
from tests.support.cli_harness import tiny_run

TINY_EVAL = [
    "eval=default",
    "eval.evaluators=[knn]",
    "eval.fractions=[0.5,1.0]",
    "eval.seeds=2",
    "eval.seeds_full=3",
    "eval.baselines=[]",
    "eval.batch_size=16",
]


def test_the_report_states_hardware_budget_and_steps(labeled_folder, tmp_path):
    run = tmp_path / "run"
    overrides = [
        *tiny_run(epochs=2, batches=2),
        *TINY_EVAL,
        "trainer.max_time=10m",
        # This test is about the automatic choice: undo tiny_run's float32 pin.
        "trainer.precision=auto",
        "encoder.channels_last=auto",
        f"data.root={labeled_folder}",
    ]
    result = simclr.pretrain(overrides, run_dir=run)
    assert result.report is not None
    report = load_report(run / "report.json")
    assert report.schema_version == SCHEMA_VERSION == 5
    t = report.training
    assert t is not None and t.max_time == "10m" and t.budget_seconds == 600
    # 2 epochs of 2 batches end long before 10 minutes: max_epochs is the ceiling.
    assert (t.steps_per_epoch, t.planned_steps, t.steps) == (2, 4, 4)
    assert (t.planned_epochs, t.epochs) == (2.0, 2.0)
    hw = t.hardware
    assert hw.device == "cpu" and hw.precision in ("bf16-mixed", "32-true")
    assert hw.precision_reason.startswith("auto:") and hw.channels_last_reason.startswith("auto:")
    step = t.step
    assert step is not None and step.compile_reason.startswith("auto: off on the CPU")
    assert (step.compile, step.views, step.decode, step.compile_seconds) == (
        False,
        "cpu",
        "cpu",
        None,
    )
    assert step.views_reason.startswith("auto: no CUDA") and step.decode_reason.startswith("auto:")
    assert report.features_hardware is not None
    assert report.features_hardware.precision == hw.precision
    md = (run / "report.md").read_text()
    assert "trainer.max_time=10m" in md and "planned 4 steps" in md
    assert f"{hw.precision}, channels_last" in md
    assert "| Pretraining step | not compiled, views on cpu, JPEG decode on cpu (auto:" in md
    # 100%: the three seeds draw the same labels, fitted once and counted once.
    full = [r for r in report.results if r.fraction == 1.0]
    assert full and all(r.n_seeds == 1 for r in full)
    assert any("fitted once" in note for r in full for note in r.notes)
    half = [r for r in report.results if r.fraction == 0.5]
    assert all(r.n_seeds == 2 for r in half)


def test_markdown_of_a_budgeted_run():
    from tests.unit.evaluation.test_sweep import fake_report  # a valid Report to dress up

    report = fake_report(0.8)
    report.training = as_training(
        {
            "hardware": {
                "device": "cpu",
                "precision": "bf16-mixed",
                "precision_reason": "auto: AMD EPYC runs bf16 natively",
                "channels_last": True,
                "channels_last_reason": "auto: oneDNN",
            },
            "step": {
                "compile": True,
                "compile_reason": "auto: CUDA",
                "views": "gpu",
                "views_reason": "auto: CUDA",
                "decode": "gpu",
                "decode_reason": "auto: image files",
                "compile_seconds": 41.25,
            },
            "max_time": "20m",
            "budget_seconds": 1200.0,
            "steps_per_epoch": 46,
            "planned_steps": 230,
            "planned_epochs": 5.0,
            "steps": 229,
            "epochs": 4.978,
        }
    )
    md = render_markdown(report)
    assert "budget `trainer.max_time=20m` (1200 s); planned 230 steps (5.00 epochs)" in md
    assert "ran 229 steps (4.98 epochs of 46 steps)" in md
    assert "bf16-mixed, channels_last on (cpu; auto: AMD EPYC runs bf16 natively" in md
    assert "compiled (first step 41.2 s), views on gpu, JPEG decode on gpu (auto: CUDA;" in md
    json.dumps(report.training.__dict__, default=str)  # plain data


def test_a_real_budget_stops_training_and_last_ckpt_holds_the_plan(labeled_folder, tmp_path):
    import torch

    run = tmp_path / "run"
    overrides = [*tiny_run(epochs=100_000, batches=2), "trainer.max_time=6s"]
    simclr.pretrain([*overrides, f"data.root={labeled_folder}"], run_dir=run)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    steps = int(ckpt["global_step"])
    assert 0 < steps < 200_000  # stopped by the clock, not by max_epochs
    states = ckpt["callbacks"]
    timer = next(v for k, v in states.items() if k.startswith("Timer"))
    assert timer["time_elapsed"]["train"] >= 6.0
    plan = next(v for k, v in states.items() if k.startswith("BudgetSchedule"))
    if plan.get("replans", 0):  # planned once the rate was measured (5 start-up + 10 steps)
        # The plan is what the run's own measurement projects (its rate x the time then
        # left), not a wall-clock guess: a machine that gets busier later changes how many
        # steps run, never this equality.
        p = plan["projection"]
        expected = projected_total(p["step"], p["rate"], p["seconds_left"], p["ceiling"])
        assert plan["total_steps"] == expected, plan
        assert p["step"] <= steps, (p, steps)
