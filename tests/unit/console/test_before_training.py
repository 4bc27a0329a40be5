"""Everything knowable before training is checked before training, in one line.

Each case goes through `simclr-pretrain` and asserts exit 2, one error line, no
checkpoint (nothing was trained) and that the files that existed are unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from simclr.console import pretrain
from tests.conftest import write_image
from tests.support.cli_harness import (
    assert_one_line_error,
    assert_unchanged,
    run_cli,
    snapshot,
    tiny_run,
)

# Evaluation on, as small as it gets.
TINY_EVAL = [o for o in tiny_run() if o != "eval=none"] + [
    "eval.evaluators=[knn]",
    "eval.fractions=[1.0]",
    "eval.seeds_full=1",
    "eval.baselines=[]",
]


def _folder(root: Path, splits: dict[str, list[str]]) -> Path:
    rng = np.random.default_rng(0)
    for split, classes in splits.items():
        for c in classes:
            for i in range(8):
                write_image(root / split / c / f"{i}.png" if c else root / f"{i}.png", rng)
    return root


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    return {
        "one_class": _folder(tmp_path / "one_class", {"train": ["cat"], "test": ["cat"]}),
        "no_test": _folder(tmp_path / "no_test", {"train": ["cat", "dog"]}),
        "flat": _folder(tmp_path / "flat", {"": [""]}),
    }


@pytest.mark.parametrize(
    "folder,named",
    [
        ("one_class", ["1 class", "eval=none"]),
        ("no_test", ["labeled train/ and test/", "eval=none"]),
        ("flat", ["labeled train/ and test/", "eval=none"]),
    ],
)
def test_data_evaluation_cannot_use_is_refused_before_training(
    tmp_path, capfd, folders, folder, named
):
    run = tmp_path / "run"
    argv = [*TINY_EVAL, f"data.root={folders[folder]}", f"hydra.run.dir={run}"]
    before = snapshot(tmp_path)
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", str(folders[folder]), *named)
    assert_unchanged(before)
    assert not (run / "checkpoints").exists()


CASES = [
    ("checkpoint-every-0", ["trainer.checkpoint_every_n_epochs=0"], [">= 1"]),
    ("eval-batch-0", ["eval.batch_size=0"], ["eval.batch_size=0", ">= 1"]),
    ("repeated-fraction", ["eval.fractions=[0.5,0.5]"], ["repeats"]),
    ("headline-not-evaluated", ["eval.headline_fraction=0.1"], ["eval.headline_fraction=0.1"]),
    ("root-without-folder", ["data=digits"], ["data.root=", "has no effect", "data=folder"]),
    ("vit-at-16-px", ["encoder.timm_name=vit_tiny_patch16_224"], ["does not accept", "16"]),
]


@pytest.mark.parametrize("overrides,named", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_values_are_refused_before_training(tmp_path, labeled_folder, capfd, overrides, named):
    run = tmp_path / "run"
    argv = [*TINY_EVAL, f"data.root={labeled_folder}", f"hydra.run.dir={run}", *overrides]
    before = snapshot(tmp_path)
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", *named)
    assert_unchanged(before)
    assert not (run / "checkpoints").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU-only machine")
def test_a_gpu_trainer_without_a_gpu_is_refused_before_anything_is_written(
    tmp_path, labeled_folder, capfd
):
    argv = [
        *tiny_run(),
        "trainer=gpu",
        f"data.root={labeled_folder}",
        f"hydra.run.dir={tmp_path}/r",
    ]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", "no CUDA device", "trainer=default")
    assert not (tmp_path / "r").exists()


def test_a_run_always_ends_with_a_loadable_last_checkpoint(tmp_path, labeled_folder, capfd):
    # Every 5 epochs, but training stops after 2: the final state is saved all the same.
    run = tmp_path / "run"
    argv = [
        *tiny_run(epochs=2),
        "trainer.checkpoint_every_n_epochs=5",
        f"data.root={labeled_folder}",
        f"hydra.run.dir={run}",
    ]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-2000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2 and any(k.startswith("encoder.") for k in ckpt["state_dict"])
