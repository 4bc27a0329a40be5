"""The Python API: the same composition, validation and messages as the console scripts."""

from __future__ import annotations

import pytest

import simclr
from simclr.console import pretrain as pretrain_cli
from simclr.errors import ConfigError
from tests.support.cli_harness import run_cli, tiny_run

TINY_EVAL = [
    "eval=default",
    "eval.evaluators=[knn]",
    "eval.fractions=[1.0]",
    "eval.seeds_full=1",
    "eval.baselines=[]",
    "eval.batch_size=16",
]


def test_a_typo_raises_the_line_the_console_prints(capfd):
    with pytest.raises(ConfigError) as raised:
        simclr.pretrain(["optim.lr_typo=1"])
    printed = run_cli(pretrain_cli.cli, "simclr-pretrain", ["optim.lr_typo=1"], capfd)
    assert printed.error_lines == [f"simclr-pretrain: error: {raised.value}"]


def test_a_bad_value_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"loss\.temperature"):
        simclr.pretrain(["loss.temperature=0"], run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_tiny_pretraining_returns_the_report_and_evaluate_reads_it(labeled_folder, tmp_path):
    run = tmp_path / "run"
    overrides = [*tiny_run(epochs=1, batches=2), *TINY_EVAL, f"data.root={labeled_folder}"]
    result = simclr.pretrain(overrides, run_dir=run)
    assert result.run_dir == run
    assert result.report is not None and result.report["results"]
    assert result.headline == result.report["headline"]["mean"]
    assert (run / "checkpoints" / "last.ckpt").is_file()

    again = simclr.evaluate(run, TINY_EVAL, out_dir=tmp_path / "eval")
    assert again.report is not None
    assert again.report["checkpoint"].endswith("last.ckpt")


def test_eval_none_returns_no_report(labeled_folder, tmp_path):
    result = simclr.pretrain([*tiny_run(), f"data.root={labeled_folder}"], run_dir=tmp_path / "run")
    assert result.report is None and result.headline is None


def test_progressive_resizing_runs_and_the_report_shows_the_sizes(labeled_folder, tmp_path):
    run = tmp_path / "run"
    overrides = [
        *tiny_run(epochs=4, batches=2),
        *TINY_EVAL,
        f"data.root={labeled_folder}",
        "data.start_size=8",
        "data.full_size_share=0.5",
    ]
    result = simclr.pretrain(overrides, run_dir=run)
    assert result.report is not None
    # 4 epochs of 2 batches, growing by batch: 8, 10, 12, 14 px, the last half at 16.
    runs = [[8, 1], [10, 1], [12, 1], [14, 1], [16, 4]]
    assert result.report["training"]["view_sizes"] == runs
    text = next(run.rglob("report.md")).read_text()
    assert "batches by view size: 8 px ×1, 10 px ×1, 12 px ×1, 14 px ×1, 16 px ×4" in text
