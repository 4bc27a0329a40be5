"""Outputs never land inside inputs: a run, sweep or report directory inside data.root
(or holding it) is refused in one line, before anything is made there.

A run inside a flat data folder would have its report's PNGs read as training images
by the next run on that folder; inside `train/` it would become a class.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simclr.console import evaluate, finetune, pretrain
from tests.conftest import write_image
from tests.support.cli_harness import assert_one_line_error, pretrain_quietly, run_cli, tiny_run
from tests.support.snapshot import Snapshot

TINY = tiny_run()
TINY_EVAL = [
    "eval.evaluators=[knn]",
    "eval.fractions=[1.0]",
    "eval.seeds_full=1",
    "eval.baselines=[]",
]


def _refused(capfd, main, program: str, argv: list[str], root: Path, *named: str) -> None:
    before = Snapshot(root)
    result = run_cli(main, program, argv, capfd)
    assert_one_line_error(result, program, *named)
    before.assert_untouched()


@pytest.fixture
def flat_folder(tmp_path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(20):
        write_image(tmp_path / "photos" / f"{i}.png", rng, size=16)
    return tmp_path / "photos"


@pytest.mark.parametrize("where", ["runs/a", "."])
def test_a_run_inside_a_flat_data_folder_is_refused(where, flat_folder, capfd):
    argv = [*TINY, "data.batch_size=4", f"data.root={flat_folder}"]
    argv.append(f"hydra.run.dir={flat_folder / where}")
    relation = "is data.root=" if where == "." else "lies inside data.root="
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, flat_folder.parent, relation)


def test_a_run_inside_a_class_folder_is_refused(labeled_folder, capfd):
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={labeled_folder}/train/run"]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, labeled_folder.parent, "lies inside")


def test_the_default_directory_inside_the_data_is_refused(labeled_folder, capfd, monkeypatch):
    monkeypatch.chdir(labeled_folder)  # outputs/<date>/<time> would be made in it
    argv = [*TINY, f"data.root={labeled_folder}"]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, labeled_folder.parent, "lies inside")


def test_a_sweep_inside_the_data_is_refused(labeled_folder, capfd):
    argv = ["-m", *TINY, "seed=1,2", f"data.root={labeled_folder}"]
    argv.append(f"hydra.sweep.dir={labeled_folder}/sweep")
    _refused(
        capfd, pretrain.cli, "simclr-pretrain", argv, labeled_folder.parent, "hydra.sweep.dir="
    )


def test_a_run_directory_holding_the_data_is_refused(labeled_folder, capfd):
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={labeled_folder.parent}"]
    _refused(
        capfd, pretrain.cli, "simclr-pretrain", argv, labeled_folder.parent, "contains data.root="
    )


@pytest.fixture
def trained(tmp_path, labeled_folder) -> Path:
    run = tmp_path / "run"
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}"]
    pretrain_quietly(argv)
    return run


@pytest.mark.parametrize("program", ["simclr-eval", "simclr-finetune"])
def test_an_evaluation_inside_the_runs_own_data_is_refused(program, trained, labeled_folder, capfd):
    """The data comes from the checkpoint: found in the job, and all it made is undone."""
    main, extra = {
        "simclr-eval": (evaluate.cli, TINY_EVAL),
        "simclr-finetune": (finetune.cli, ["eval.finetune.fraction=1.0"]),
    }[program]
    argv = [f"checkpoint={trained}", *extra, f"hydra.run.dir={labeled_folder}/reports/x"]
    _refused(capfd, main, program, argv, labeled_folder, "lies inside data.root=")


def test_an_evaluation_inside_the_data_it_names_is_refused(trained, labeled_folder, capfd):
    argv = [f"checkpoint={trained}", *TINY_EVAL, "data=folder", f"data.root={labeled_folder}"]
    argv.append(f"hydra.run.dir={labeled_folder}/test/eval")
    _refused(capfd, evaluate.cli, "simclr-eval", argv, labeled_folder, "lies inside data.root=")
