"""simclr-eval: a checkpoint in, a report out; data from the checkpoint unless given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from simclr.errors import CheckpointError, ConfigError
from simclr.evaluation.checkpoint import effective_config, evaluate_checkpoint
from tests.conftest import REPO
from tests.support.hub_helpers import make_model, run_config, save_checkpoint

SCRIPT = Path(sys.executable).with_name("simclr-eval")
# One thread: small convolutions on a shared 2-core machine run many times faster so.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def training_run(root: Path) -> Path:
    """A run directory as simclr-pretrain leaves it: .hydra/ and checkpoints/last.ckpt,
    trained (here: random weights) on the digits at 8 px."""
    cfg = run_config("resnet18", "cifar", image_size=8)
    cfg["data"].update(name="digits", root=None, num_workers=0)
    encoder, head = make_model(cfg)
    (root / ".hydra").mkdir(parents=True)
    (root / "pretrain_done").write_text("42.0\n")
    save_checkpoint(root / "checkpoints" / "last.ckpt", encoder, head, cfg)
    return root


def run_eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=ENV
    )


def test_simclr_eval_on_a_run_directory(tmp_path):
    run = training_run(tmp_path / "run")
    out = tmp_path / "eval"
    result = run_eval(
        f"checkpoint={run}",
        f"hydra.run.dir={out}",
        "eval.fractions=[0.1]",
        "eval.seeds=2",
        "eval.evaluators=[linear,knn]",
        "eval.baselines=[raw_pixels]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"report: {out / 'report.md'}" in result.stdout
    report = json.loads((out / "report.json").read_text())
    # The data came from the checkpoint's config (digits at 8 px), not this command's default.
    assert report["config"]["data"]["image_size"] == 8
    assert report["checkpoint"] == str(run / "checkpoints" / "last.ckpt")
    assert report["timing"]["pretrain_seconds"] == 42.0
    assert {(r["representation"], r["evaluator"]) for r in report["results"]} == {
        ("simclr", "linear"),
        ("simclr", "knn"),
        ("raw_pixels", "linear"),
        ("raw_pixels", "knn"),
    }
    assert report["command"].startswith(f"simclr-eval checkpoint={run}")
    # The feature cache lives with the training run, for the next evaluation.
    assert sorted(p.name.split("-")[0] for p in (run / "features").iterdir()) == [
        "raw_pixels",
        "simclr",
    ]
    assert (out / "eval_config.yaml").is_file()


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    result = run_eval(f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("simclr-eval: error: checkpoint is not set")


def test_a_missing_checkpoint_file_is_named(compose_config, tmp_path):
    cfg = compose_config(f"checkpoint={tmp_path / 'nope.ckpt'}")
    with pytest.raises(CheckpointError, match=r"nope\.ckpt"):
        evaluate_checkpoint(cfg, [], tmp_path / "eval")


def test_the_checkpoints_config_is_the_base_and_the_command_lines_keys_go_on_top(
    compose_config,
):
    trained = run_config("resnet50", "imagenet", image_size=64)
    cli_cfg = compose_config("eval.seeds=4", "data.image_size=16", "checkpoint=x")
    cfg = effective_config(cli_cfg, trained, ["eval.seeds=4", "checkpoint=x"])
    assert (cfg.encoder.arch, cfg.data.image_size, cfg.eval.seeds) == ("resnet50", 64, 4)
    cfg = effective_config(cli_cfg, trained, ["data.image_size=16"])
    assert cfg.data.image_size == 16 and cfg.data.name == trained["data"]["name"]
    assert OmegaConf.select(cfg, "augment.mean") == trained["augment"]["mean"]


def test_another_data_set_keeps_the_checkpoints_image_size(compose_config, tmp_path):
    # The digits preset's 16 px must not replace the 64 px the encoder was trained at.
    trained = run_config("resnet50", "imagenet", image_size=64)
    overrides = ["data=folder", f"data.root={tmp_path}", "checkpoint=x"]
    cfg = effective_config(compose_config(*overrides), trained, overrides)
    assert (cfg.data.name, cfg.data.root, cfg.data.image_size) == ("folder", str(tmp_path), 64)
    assert cfg.data.batch_size == trained["data"]["batch_size"]


@pytest.mark.parametrize("override", ["encoder=resnet18", "optim.lr=0.1", "experiment=digits"])
def test_keys_without_effect_in_eval_are_refused(compose_config, override):
    trained = run_config("resnet50", "imagenet", image_size=64)
    with pytest.raises(ConfigError, match="no effect in simclr-eval"):
        effective_config(compose_config(override, "checkpoint=x"), trained, [override])


def test_classes_that_differ_from_the_runs_report_are_refused(tmp_path):
    run = training_run(tmp_path / "run")
    # The run's report saw other classes for the same source: the data changed.
    seen = {"source": "digits (sklearn.datasets.load_digits)", "classes": ["a", "b"]}
    (run / "report.json").write_text(json.dumps({"data": seen}))
    result = run_eval(f"checkpoint={run}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("simclr-eval: error:") and "differ from ['a', 'b']" in last
    assert str(run / "report.json") in last
    assert not (tmp_path / "eval" / "report.json").exists()
