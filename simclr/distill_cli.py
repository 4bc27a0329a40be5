"""`simclr-distill`: teach a student on every train image with a fine-tuned teacher.

    simclr-distill distill.teacher=FT_RUN/classifier.ckpt                  # self-distillation
    simclr-distill distill.teacher=FT_RUN encoder=resnet18 distill.temperature=2

The student's encoder is the teacher's unless `encoder` is given on the command
line (then that one: big -> small); the data and views' normalisation are the
teacher's (they must match what it was fine-tuned on) unless `data` is given;
`distill.*`, `optim.*`, `trainer.*`, `eval.*` and `seed` are this command's.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from simclr.config import register_configs, validate_config
from simclr.errors import SimclrError
from simclr.pretrain import CONF_DIR, report_user_error, run_directory

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


def student_config(cli_cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The teacher's training config with this command's own groups (and student, data)."""
    from simclr.distill_run import check_distill
    from simclr.evaluate.cli import data_overridden
    from simclr.hub.classifier import read_classifier_info
    from simclr.hub.sources import read_checkpoint
    from simclr.hub.weights import merged_config

    check_distill(cli_cfg)
    path, _ = read_classifier_info(str(cli_cfg.distill.teacher))
    cfg = merged_config(read_checkpoint(path)["hyper_parameters"]["config"])
    for key in OWN_KEYS:
        cfg[key] = cli_cfg[key]
    if overridden(overrides, STUDENT_KEYS):
        cfg.encoder = cli_cfg.encoder
    if data_overridden(overrides):
        cfg.data = cli_cfg.data
    cfg.preset = "distill"
    return cfg  # type: ignore[no-any-return]


def run_distill(cfg: DictConfig, overrides: Sequence[str], run_dir: Path) -> Path | None:
    """Check everything, then distil; the student's classifier.ckpt (None on ranks > 0)."""
    from simclr.distill_run import distill_student

    student_cfg = student_config(cfg, overrides)
    validate_config(student_cfg)
    return distill_student(student_cfg, run_dir, command=" ".join([PROGRAM, *overrides]))


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> Any:
    overrides = list(HydraConfig.get().overrides.task)
    try:
        path = run_distill(cfg, overrides, run_directory())
    except SimclrError as err:
        report_user_error(err, PROGRAM)
        if HydraConfig.get().mode == hydra.types.RunMode.MULTIRUN:
            return None
        sys.exit(2)
    if path is not None:
        print(f"student: {path}")
    return None


def cli() -> None:
    """Console entry point of `simclr-distill`."""
    from simclr.cli import run_app

    register_configs()
    run_app(PROGRAM, _main, CONF_DIR)  # bad overrides: one line, exit 2


if __name__ == "__main__":
    cli()
