"""Class names, paths and file names are data: never read as config syntax.

Class folders named like OmegaConf interpolations, shell variables, Hydra override
syntax and format strings go through pretraining, evaluation, the report and the
sweep table, and come out as they went in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from simclr.config.resolvers import literal
from simclr.config.schema import typed_config
from simclr.console import evaluate, pretrain, report
from tests.conftest import write_image
from tests.support.cli_harness import run_cli, tiny_run

NAMES = ["${oc.env:NOPE}", "$HOME", "50%", "a=1", "b,c", "c:d", "${x", "back\\${slash}"]
TINY_EVAL = [
    "eval.evaluators=[knn]",
    "eval.fractions=[1.0]",
    "eval.seeds_full=1",
    "eval.baselines=[]",
]


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("test", 2)):
        for name in NAMES:
            for i in range(count):
                write_image(root / split / name / f"{name} {i}.png", rng, size=16)
    return root


def report_cli() -> None:
    sys.exit(report.cli())


def test_class_folders_named_like_syntax_go_through_every_command(tmp_path, capfd):
    images = _folder(tmp_path / "images")
    run = tmp_path / "sweep" / "0"
    evaluated = [a for a in tiny_run() if a != "eval=none"] + TINY_EVAL
    argv = [*evaluated, f"data.root={images}", f"hydra.run.dir={run}"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert json.loads((run / "report.json").read_text())["data"]["classes"] == sorted(NAMES)

    out = tmp_path / "eval"
    argv = [f"checkpoint={run}", *TINY_EVAL, f"hydra.run.dir={out}"]
    result = run_cli(evaluate.cli, "simclr-eval", argv, capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert json.loads((out / "report.json").read_text())["data"]["classes"] == sorted(NAMES)

    argv = [str(tmp_path / "sweep"), "--evaluator", "knn", "--fraction", "1.0"]
    result = run_cli(report_cli, "simclr-report", argv, capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["rows"][0]["status"] == "ok"


@pytest.mark.parametrize("text", [*NAMES, "\\\\${y}", "plain", "${a}${b}"])
def test_a_saved_config_keeps_its_strings(text):
    assert OmegaConf.create({"v": literal(text)}).v == text
    assert typed_config({"data": {"root": text}}).data.root == text
