"""A time budget under two-process DDP (gloo on CPU): both ranks follow rank 0's plan."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.test_ddp_e2e import DDP, load_checkpoint
from tests.integration.test_pretrain_e2e import SCRIPT, TINY

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

# Loaded by both ranks (as sitecustomize): when training ends, each rank writes its
# step, planned total and learning rate to a file of its own.
REPORT_HOOK = """
import os
from pathlib import Path
from simclr.training.module import SimCLRModule


def on_train_end(self):
    lr = self.trainer.optimizers[0].param_groups[0]["lr"]
    plan = self.schedule_plan
    out = Path(os.environ["SIMCLR_TEST_PLAN_DIR"]) / f"rank{self.global_rank}"
    out.write_text(f"{self.global_step} {plan.total_steps} {plan.warmup_steps} {lr!r}")


SimCLRModule.on_train_end = on_train_end
"""


def test_budget_under_ddp_stops_both_ranks_with_one_plan(labeled_folder, tmp_path):
    hook, plans = tmp_path / "hook", tmp_path / "plans"
    hook.mkdir()
    plans.mkdir()
    (hook / "sitecustomize.py").write_text(REPORT_HOOK)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "SIMCLR_TEST_PLAN_DIR": str(plans),
    }
    run_dir = tmp_path / "run"
    # No epoch-end work (checkpoint, online probe): enough steps in 20 s to plan.
    fast = ["trainer.checkpoint_every_n_epochs=100000", "online_probe.enabled=false"]
    args = [*TINY, *DDP, *fast, "trainer.max_epochs=100000", "trainer.max_time=20s"]
    result = subprocess.run(
        [str(SCRIPT), *args, f"data.root={labeled_folder}", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = ((plans / f"rank{r}").read_text().split() for r in (0, 1))
    assert rank0 == rank1  # the same step, plan, warm-up and learning rate
    steps, total = int(rank0[0]), int(rank0[1])
    ckpt = load_checkpoint(run_dir)
    assert ckpt["global_step"] == steps and 0 < steps < 2 * 100000
    timer = next(v for k, v in ckpt["callbacks"].items() if k.startswith("Timer"))
    assert timer["time_elapsed"]["train"] >= 20.0
    # Planned (5 start-up + 10 measured steps), not left at the max_epochs ceiling. A
    # machine too busy for 16 steps in 20 s cannot show it: that is no verdict either way.
    if steps < 16:
        pytest.skip(f"only {steps} steps in the 20 s budget: too busy to plan")
    assert total < 2 * 100000, f"no plan after {steps} steps"
    assert abs(total - steps) <= max(10, 0.3 * steps), (total, steps)
