"""Every bad input of docs/errors.md: exit 2, one line naming the culprit, earlier files intact.

The commands run in this process (see tests/support/cli_harness.py); test_pretrain_e2e.py
and test_resume.py run the console script as a real subprocess.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from simclr.config.schema import RunConfig
from simclr.console import evaluate as eval_cli
from simclr.console import pretrain
from tests.conftest import write_image
from tests.support.cli_harness import (
    assert_one_line_error,
    assert_unchanged,
    run_cli,
    snapshot,
    tiny_run,
)
from tests.support.hub_helpers import make_checkpoint, run_config, save_checkpoint

# A run that would train in seconds, were the input good.
TINY = tiny_run()


class Payload:
    """Unpickling this creates `target`: stands for arbitrary code in a checkpoint."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


def _world(tmp_path: Path, labeled_folder: Path) -> dict[str, Path]:
    """Folders the cases point at; each holds a file that must survive the failed run."""
    rng = np.random.default_rng(0)
    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = tmp_path / "no_images"
    no_images.mkdir()
    (no_images / "readme.txt").write_text("no pictures here\n")
    truncated = tmp_path / "truncated_jpeg"
    for i in range(8):
        write_image(truncated / f"{i}.jpg", rng, size=64)
    cut = truncated / "5.jpg"
    cut.write_bytes(cut.read_bytes()[:300])
    not_image = tmp_path / "not_image"
    for i in range(8):
        write_image(not_image / f"{i}.png", rng)
    (not_image / "3.png").write_text("<html>a web page saved as .png</html>\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("a file where a directory is expected\n")
    run = tmp_path / "run"  # new: a directory holding anything is refused (test_run_dirs.py)
    (tmp_path / "notes.txt").write_text("the user's own notes\n")
    return {
        "data": labeled_folder,
        "empty": empty,
        "no_images": no_images,
        "truncated_jpeg": truncated,
        "not_image": not_image,
        "a_file": a_file,
        "run": run,
    }


# (id, overrides (placeholders filled from _world), strings the error line must contain)
PRETRAIN_CASES = [
    ("unknown-key", ["optim.lr_typo=1"], ["optim.lr_typo", "did you mean lr?"]),
    ("unknown-key-appended", ["+optim.momentun=0.8"], ["optim.momentun", "did you mean momentum?"]),
    ("wrong-type-float", ["optim.lr=abc"], ["optim.lr=abc", "expected a float"]),
    ("wrong-type-int", ["data.batch_size=1.5"], ["data.batch_size=1.5", "expected an integer"]),
    ("wrong-type-list", ["augment.crop_scale=0.5"], ["augment.crop_scale=0.5", "list of floats"]),
    ("unparsable-override", ["optim.lr=[1"], ["optim.lr=[1", "cannot parse"]),
    ("sweep-without-multirun", ["optim.lr=0.1,0.2"], ["optim.lr=0.1,0.2", "--multirun"]),
    ("sweep-with-a-bad-value", ["-m", "optim.lr=0.1,abc"], ["optim.lr=abc", "expected a float"]),
    ("batch-size-below-2", ["data.batch_size=1"], ["data.batch_size=1", ">= 2"]),
    ("temperature-zero", ["loss.temperature=0"], ["loss.temperature=0.0", "> 0"]),
    ("temperature-negative", ["loss.temperature=-0.1"], ["loss.temperature=-0.1", "> 0"]),
    ("crop-scale-zero", ["augment.crop_scale=[0.0,1.0]"], ["augment.crop_scale=[0.0, 1.0]"]),
    ("crop-scale-above-1", ["augment.crop_scale=[0.5,1.5]"], ["augment.crop_scale=[0.5, 1.5]"]),
    ("crop-scale-min-above-max", ["augment.crop_scale=[0.9,0.2]"], ["min <= max"]),
    ("label-fraction-zero", ["eval.fractions=[0.0,0.1]"], ["eval.fractions", "0.0"]),
    ("label-fraction-above-1", ["eval.fractions=[1.5]"], ["eval.fractions", "1.5"]),
    ("unknown-encoder-preset", ["encoder=resnet9"], ["encoder=resnet9", "resnet18"]),
    ("unknown-encoder-depth", ["encoder.arch=resnet9"], ["encoder.arch='resnet9'", "resnet18"]),
    ("head-output-zero", ["head.output_dim=0"], ["head.output_dim=0", "> 0"]),
    ("head-output-negative", ["head.output_dim=-8"], ["head.output_dim=-8", "> 0"]),
    ("data-root-missing", ["data.root={empty}/absent"], ["{empty}/absent", "no such directory"]),
    ("data-root-empty", ["data.root={empty}"], ["{empty}", "empty"]),
    ("folder-without-images", ["data.root={no_images}"], ["{no_images}", "no images"]),
    ("download-requested", ["data.download=true"], ["data.download=true", "never downloads"]),
    ("smaller-than-one-batch", ["data.batch_size=64"], ["fewer than one batch", "drop_last"]),
    ("truncated-jpeg", ["data.root={truncated_jpeg}"], ["{truncated_jpeg}/5.jpg", "truncated"]),
    ("non-image-file", ["data.root={not_image}"], ["{not_image}/3.png", "not an image"]),
    ("output-dir-under-a-file", ["hydra.run.dir={a_file}/run"], ["{a_file}", "not a directory"]),
]


@pytest.mark.parametrize(
    "overrides,named", [c[1:] for c in PRETRAIN_CASES], ids=[c[0] for c in PRETRAIN_CASES]
)
def test_pretrain_bad_input(tmp_path, labeled_folder, capfd, overrides, named):
    world = _world(tmp_path, labeled_folder)
    fill = {k: str(v) for k, v in world.items()}
    flags = [o for o in overrides if o.startswith("-")]  # Hydra wants -m before overrides
    argv = [
        *flags,
        *TINY,
        f"data.root={world['data']}",
        f"hydra.run.dir={world['run']}",
        f"hydra.sweep.dir={world['run']}/sweep",
        *(o.format(**fill) for o in overrides if o not in flags),
    ]
    before = snapshot(tmp_path)
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", *(n.format(**fill) for n in named))
    assert_unchanged(before)
    assert not (world["run"] / "checkpoints").exists()  # failed before any training


def _resume_world(tmp_path: Path, labeled_folder: Path, kind: str) -> tuple[Path, list[str]]:
    """A run directory whose checkpoints/last.ckpt is of `kind`; the extra overrides."""
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    cfg = OmegaConf.to_container(OmegaConf.structured(RunConfig), resolve=True, enum_to_str=True)
    assert isinstance(cfg, dict)
    cfg["encoder"].update(arch="resnet18", stem="cifar")
    extra: list[str] = []
    if kind == "other-architecture":
        torch.save({"state_dict": {}, "hyper_parameters": {"config": cfg}, "loops": {}}, last)
        # (a timm model name would have no effect on a ResNet, and is refused as such)
        extra = ["encoder=resnet34", "encoder.stem=cifar", "encoder.timm_name=null"]
    elif kind == "truncated":
        torch.save({"state_dict": {"w": torch.zeros(1000)}, "hyper_parameters": {}}, last)
        last.write_bytes(last.read_bytes()[:1500])
    elif kind == "not-a-checkpoint":
        last.write_text("epoch=3 loss=1.2\n")
    elif kind == "pickle-payload":
        torch.save({"state_dict": {}, "evil": Payload(tmp_path / "pwned")}, last)
    elif kind == "without-resume-auto":
        torch.save({"state_dict": {}, "hyper_parameters": {"config": cfg}, "loops": {}}, last)
    return run, extra


RESUME_CASES = [
    ("other-architecture", ["encoder.arch='resnet18' there, 'resnet34' now"]),
    ("truncated", ["last.ckpt", "truncated"]),
    ("not-a-checkpoint", ["last.ckpt", "not a checkpoint"]),
    ("pickle-payload", ["last.ckpt", "refused"]),
    ("without-resume-auto", ["last.ckpt", "resume=auto"]),
]


@pytest.mark.parametrize("kind,named", RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_pretrain_resume_from_a_bad_checkpoint(tmp_path, labeled_folder, capfd, kind, named):
    run, extra = _resume_world(tmp_path, labeled_folder, kind)
    resume = [] if kind == "without-resume-auto" else ["resume=auto"]
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}", *resume, *extra]
    before = snapshot(tmp_path)
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", *named)
    assert_unchanged(before)
    assert not (tmp_path / "pwned").exists()  # the payload never ran


def test_a_finished_run_is_refused_in_one_line(tmp_path, labeled_folder, capfd):
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text("{}\n")
    before = snapshot(tmp_path)
    argv = [*TINY, f"data.root={labeled_folder}", f"hydra.run.dir={run}", "resume=auto"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", str(run), "finished run")
    assert_unchanged(before)


# --- simclr-eval checkpoint=... ----------------------------------------------------------


def _eval_checkpoint(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "absent.ckpt"
    path = tmp_path / f"{kind}.ckpt"
    if kind == "not-a-checkpoint":
        path.write_text("these are not weights\n")
    elif kind == "other-model":
        torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}}, path)
    elif kind in ("truncated", "other-architecture", "pickle-payload"):
        full, encoder, head = make_checkpoint(tmp_path / "good.ckpt", "resnet18", "cifar")
        if kind == "truncated":
            path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        elif kind == "other-architecture":  # resnet18 weights, config says resnet34
            save_checkpoint(path, encoder, head, run_config("resnet34", "cifar"))
        else:
            checkpoint = torch.load(full, weights_only=True)
            checkpoint["hyper_parameters"]["evil"] = Payload(tmp_path / "pwned")
            torch.save(checkpoint, path)
    return path


EVAL_CASES = [
    ("missing", ["absent.ckpt", "no such file"]),
    ("not-a-checkpoint", ["not-a-checkpoint.ckpt", "not a checkpoint"]),
    ("other-model", ["other-model.ckpt", "neither simclr-pretrain"]),
    ("other-architecture", ["other-architecture.ckpt", "do not fit a resnet34"]),
    ("truncated", ["truncated.ckpt", "truncated"]),
    ("pickle-payload", ["pickle-payload.ckpt", "refused"]),
]


@pytest.mark.parametrize("kind,named", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_eval_bad_checkpoint(tmp_path, capfd, kind, named):
    path = _eval_checkpoint(tmp_path, kind)
    before = snapshot(tmp_path)
    argv = [f"checkpoint={path}", f"hydra.run.dir={tmp_path / 'eval'}"]
    result = run_cli(eval_cli.cli, "simclr-eval", argv, capfd)
    assert_one_line_error(result, "simclr-eval", *named)
    assert_unchanged(before)
    assert not (tmp_path / "pwned").exists()  # the payload never ran
    assert not (tmp_path / "eval" / "report.json").exists()


def test_eval_bad_override_is_one_line(tmp_path, capfd):
    argv = ["eval.seeds=many", f"hydra.run.dir={tmp_path / 'eval'}"]
    result = run_cli(eval_cli.cli, "simclr-eval", argv, capfd)
    assert_one_line_error(result, "simclr-eval", "eval.seeds=many", "expected an integer")
    assert not (tmp_path / "eval").exists()  # refused before Hydra made the directory


def test_full_error_keeps_hydras_report(tmp_path, capfd, monkeypatch):
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    argv = ["optim.lr_typo=1", f"hydra.run.dir={tmp_path / 'run'}"]
    try:
        with pytest.raises(Exception, match="lr_typo"):
            run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    finally:
        GlobalHydra.instance().clear()
