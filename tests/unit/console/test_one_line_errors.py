"""Inputs that were tracebacks: each is one line naming the file, key or value, exit 2,
and nothing written (md5 snapshot of the directory the command was pointed at)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from simclr.console import export, prepare, pretrain
from simclr.data.prepare import prepare_shards
from simclr.errors import ConfigError
from tests.support.cli_harness import assert_one_line_error, run_cli, tiny_run
from tests.support.snapshot import Snapshot

TINY = tiny_run()


def _refused(capfd, main, program: str, argv: list[str], root: Path, *named: str) -> None:
    before = Snapshot(root)
    result = run_cli(main, program, argv, capfd)
    assert_one_line_error(result, program, *named)
    before.assert_untouched()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["encoder=null"], ["encoder=null", "config group"]),
        (["data.root=${oc.env:NOPE_26}"], ["data.root=${oc.env:NOPE_26}", "NOPE_26"]),
        (["trainer.precision=16-mixed"], ["trainer.precision=16-mixed", "bf16-mixed"]),
        (["--config-name", "nope"], ["--config-name=nope", "no such config"]),
    ],
    ids=["group-null", "unresolvable-interpolation", "float16-on-cpu", "config-name"],
)
def test_pretrain_refuses_in_one_line(extra, named, tmp_path, labeled_folder, capfd):
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={tmp_path}/run", *extra]
    if extra[0].startswith("data.root"):
        argv.remove(f"data.root={labeled_folder}")
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, *named)


def test_a_run_directory_name_over_255_bytes(tmp_path, labeled_folder, capfd):
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={tmp_path}/{'x' * 260}"]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, "260 bytes", "255")


def test_a_broken_yaml_in_the_config_dir(tmp_path, labeled_folder, capfd):
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    broken = tmp_path / "conf" / "experiment" / "mine.yaml"
    broken.write_text("# @package _global_\ntrainer: {max_epochs: [1, 2\n")
    argv = ["--config-dir", str(tmp_path / "conf"), *TINY, "experiment=mine"]
    argv += [f"data.root={labeled_folder}", f"hydra.run.dir={tmp_path}/run"]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, str(broken), "not valid YAML")


def test_a_sweeper_plugin_that_is_not_installed(tmp_path, labeled_folder, capfd, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if "optuna" in n else real(n, *a)
    )
    argv = ["-m", "hydra/sweeper=simclr_optuna", *TINY, f"data.root={labeled_folder}"]
    argv.append(f"hydra.sweep.dir={tmp_path}/sweep")
    _refused(
        capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path,
        "hydra/sweeper=simclr_optuna", "pip install",
    )  # fmt: skip


def test_a_trailing_multirun_flag_with_the_default_sweep_directory(tmp_path, labeled_folder, capfd, monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    argv = [*TINY, f"data.root={labeled_folder}", "seed=1,2", "-m"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert len(list((tmp_path / "multirun").rglob("last.ckpt"))) == 2


def test_a_time_budget_alone_ends_the_run(tmp_path, labeled_folder, capfd):
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={tmp_path}/run"]
    argv += ["trainer.max_epochs=-1", "trainer.max_steps=-1", "trainer.max_time=2s"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("overrides", ["trainer.max_epochs=1", ["trainer.max_epochs=1", 5]])
def test_the_api_wants_a_list_of_strings(overrides, tmp_path):
    import simclr

    before = Snapshot(tmp_path)
    with pytest.raises(ConfigError, match="overrides"):
        simclr.pretrain(overrides, run_dir=tmp_path / "run")
    before.assert_untouched()


# --- shards, exports ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tmp_path_factory, shared_labeled_folder) -> Path:
    dest = tmp_path_factory.mktemp("shards") / "dest"
    prepare_shards(shared_labeled_folder, str(dest), workers=1, progress=False)
    return dest


@pytest.mark.parametrize("damage", ["chunk-cut-in-half", "index-deleted", "chunk-deleted"])
def test_damaged_shards_are_named(damage, shards, tmp_path, capfd):
    root = Path(shutil.copytree(shards, tmp_path / "shards"))
    (chunk,) = (root / "train").glob("chunk-*.bin")
    if damage == "chunk-cut-in-half":
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
        named = [str(chunk), "bytes where the index says"]
    elif damage == "index-deleted":
        (root / "train" / "index.json").unlink()
        named = [str(root / "train" / "index.json"), "missing or damaged"]
    else:
        chunk.unlink()
        named = [str(chunk), "missing"]
    argv = [*TINY, "data=stream", f"data.root={root}", f"hydra.run.dir={tmp_path}/run"]
    _refused(capfd, pretrain.cli, "simclr-pretrain", argv, tmp_path, *named)


def test_an_object_store_without_its_file_system(tmp_path, shared_labeled_folder, capfd, monkeypatch):  # fmt: skip
    import fsspec

    def missing(protocol: str) -> None:
        raise ImportError(f"Install s3fs to access {protocol}")

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    argv = [str(shared_labeled_folder), "s3://bucket/shards", "--quiet"]
    _refused(capfd, prepare.cli, "simclr-prepare", argv, shared_labeled_folder, "DEST=s3://bucket/shards", "s3fs")  # fmt: skip


def test_export_with_head_of_weights_without_one(tmp_path, capfd):
    from tests.support.hub_helpers import make_checkpoint

    source, _, _ = make_checkpoint(tmp_path / "encoder.ckpt")
    assert export.cli([str(source), str(tmp_path / "plain.safetensors")]) == 0
    argv = [str(tmp_path / "plain.safetensors"), str(tmp_path / "again.safetensors"), "--with-head"]
    _refused(capfd, lambda: sys.exit(export.cli()), "simclr-export", argv, tmp_path, "--with-head", "no projection head")  # fmt: skip
