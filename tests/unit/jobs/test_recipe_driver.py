"""The recipe driver: which step gets which overrides, and `recipe run` reaching it."""

from __future__ import annotations

import argparse
import shlex

from simclr.jobs import recipe_driver
from simclr.jobs.recipe import cli


def test_recipe_driver_passes_overrides_to_the_steps_they_name(tmp_path):
    """--finetune-set reaches the fine-tuning steps only, --distill-set the student's only."""
    run = tmp_path / "run"
    run.mkdir()
    ns = argparse.Namespace(
        out=tmp_path / "out", checkpoint=run, seeds=2, fractions=[0.01], distill_epochs=1,
        finetune_set=["eval.finetune.unfrozen_epochs=3"], distill_set=["trainer.max_time=1m"],
    )  # fmt: skip
    commands = dict(recipe_driver.steps(ns))
    assert "eval.finetune.unfrozen_epochs=3" in commands["eval"]
    assert "eval.finetune.unfrozen_epochs=3" in commands["teachers"]
    assert "eval.finetune.unfrozen_epochs=3" not in commands["distill"]
    assert "trainer.max_time=1m" in commands["distill"]
    assert not any("max_time" in c for c in commands["eval"] + commands["teachers"])


def test_recipe_run_plans_the_four_steps_and_pairs_students_with_teachers(tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    argv = ["run", str(out), "--checkpoint", str(run), "--seeds", "2", "--dry-run"]
    assert cli(argv) == 0
    commands = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    assert [c[0] for c in commands] == [
        "simclr-eval",
        "simclr-finetune",
        "simclr-distill",
        "python",
    ]
    assert (
        f"distill.teacher={out}/teachers/f0.01_s${{seed}},{out}/teachers/f0.1_s${{seed}}"
        in commands[2]
    )
    assert commands[3][:3] == ["python", "-m", "simclr.jobs.recipe"] and not out.exists()
    assert cli(["run", str(out), "--checkpoint", str(tmp_path / "none")]) == 2
