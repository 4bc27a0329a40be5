"""`simclr-distill`: teach a student on every train image with a fine-tuned teacher.

    simclr-distill distill.teacher=FT_RUN/classifier.ckpt                  # self-distillation
    simclr-distill distill.teacher=FT_RUN encoder=resnet18 distill.temperature=2

The student's encoder is the teacher's unless `encoder` is given on the command
line (then that one: big -> small); the data and views' normalisation are the
teacher's (they must match what it was fine-tuned on) unless `data` is given;
`distill.*`, `optim.*`, `trainer.*`, `eval.*` and `seed` are this command's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

from simclr.config import validate_config
from simclr.config.schema import RunConfig
from simclr.console.app import CONF_DIR, CONFIG_NAME, hydra_job, run_app
from simclr.runs.rundir import RunDir

PROGRAM = "simclr-distill"
STUDENT_KEYS = ("encoder",)
OWN_KEYS = ("distill", "optim", "trainer", "eval", "seed", "monitor")


def overridden(overrides: Sequence[str], keys: Sequence[str]) -> bool:
    """Whether the command line set one of `keys` (`key=...`, `key.x=...`)."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if any(key == k or key.startswith(f"{k}.") for k in keys):
            return True
    return False


def student_config(cli_cfg: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """The teacher's training config with this command's own groups (and student, data)."""
    from simclr.config.schema import typed_config
    from simclr.evaluation.checkpoint import lay_overrides
    from simclr.hub.classifier import read_classifier_info
    from simclr.jobs.distill import check_distill
    from simclr.runs.checkpoints import read_checkpoint

    check_distill(cli_cfg)
    path, _ = read_classifier_info(str(cli_cfg.distill.teacher))
    cfg = typed_config(read_checkpoint(path)["hyper_parameters"]["config"])
    for key in OWN_KEYS:
        setattr(cfg, key, getattr(cli_cfg, key))
    if overridden(overrides, STUDENT_KEYS):
        cfg.encoder = cli_cfg.encoder
    taught_at = int(cfg.data.image_size)
    lay_overrides(cfg, cli_cfg, overrides)  # data.*, augment.* over the teacher's
    if int(cfg.data.image_size) != taught_at:
        warnings.warn(
            f"data.image_size={cfg.data.image_size}: the teacher {cli_cfg.distill.teacher} was "
            f"fine-tuned at {taught_at} px; its predictions at another size are less reliable",
            stacklevel=2,
        )
    cfg.preset = "distill"
    return cfg


def _check(cfg: RunConfig, run: RunDir | None) -> None:
    """Before Hydra writes anything: the `distill.*` values (the teacher is read in the
    job); then, under the output directory's lock, that it is new or empty."""
    from simclr.jobs.distill import check_distill
    from simclr.runs.output import check_new_or_empty, claim_of

    check_distill(cfg)
    if run is not None:
        taken = claim_of(run.path)
        check_new_or_empty(
            "hydra.run.dir", run.path, "a distillation", taken.before if taken else None
        )


def run_distill(cfg: RunConfig, overrides: Sequence[str], run_dir: Path) -> Path | None:
    """Check everything, then distil; the student's classifier.ckpt (None on ranks > 0)."""
    from simclr.config.schema import root_path
    from simclr.jobs.distill import distill_student
    from simclr.runs.output import check_apart

    student_cfg = student_config(cfg, overrides)
    validate_config(student_cfg)
    # The teacher's data, unless given.
    check_apart("hydra.run.dir", run_dir, {"data.root": root_path(student_cfg.data)})
    return distill_student(student_cfg, run_dir, command=" ".join([PROGRAM, *overrides]))


def _distill(cfg: RunConfig, run: RunDir) -> None:
    path = run_distill(cfg, list(HydraConfig.get().overrides.task), run.path)
    if path is not None:
        print(f"student: {path}")


@hydra.main(config_path=CONF_DIR, config_name=CONFIG_NAME, version_base="1.3")
def _main(cfg: RunConfig) -> None:
    hydra_job(PROGRAM, cfg, _distill)


def cli() -> None:
    """Console entry point of `simclr-distill`."""
    run_app(PROGRAM, _main, _check)  # bad overrides and values: one line, exit 2


if __name__ == "__main__":
    cli()
