"""`simclr-pretrain`: the Hydra app that pretrains, then evaluates unless `eval=none`.

simclr-pretrain                                  # embedded digits preset
simclr-pretrain experiment=cifar10_resnet18 data.root=~/data
simclr-pretrain -m optim.lr=0.3,0.6 loss.temperature=0.1,0.5
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from torch import nn

from simclr.cli import output_error, report_error, run_app
from simclr.config import register_configs, validate_config
from simclr.errors import OutputError, SimclrError

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
# At import rather than in cli(): the SLURM tasks of hydra-submitit unpickle `_main`
# and resolve the config (its ${simclr_rank_zero:...}) without calling cli().
register_configs()
FINISHED_MARKERS = ("report.json", "pretrain_done")


def run_directory() -> Path:
    """This job's output directory (Hydra's), or the working directory outside Hydra."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def check_run_dir(run_dir: Path, resume: str) -> Path | None:
    """Refuse to overwrite a finished run; return the checkpoint to resume from, if any."""
    last = run_dir / "checkpoints" / "last.ckpt"
    for marker in FINISHED_MARKERS:
        if (run_dir / marker).exists():
            raise OutputError(
                f"{run_dir} holds a finished run ({marker}); choose another hydra.run.dir"
            )
    if last.exists():
        if resume != "auto":
            raise OutputError(
                f"{run_dir} already has {last.name}; pass resume=auto to continue it "
                "or choose another hydra.run.dir"
            )
        return last
    return None


def pretrain(cfg: DictConfig) -> float | None:
    """Pretrain as `cfg` says, evaluate, and return the headline metric (if evaluated)."""
    from simclr.data.datamodule import SimCLRDataModule
    from simclr.launch import check_launcher_supports, ddp_job_scope
    from simclr.models import feature_dim
    from simclr.module import SimCLRModule
    from simclr.resume import ResumePoint, check_resumable
    from simclr.training import build_callbacks, build_trainer

    validate_config(cfg)
    run_dir = run_directory()
    resume_from = check_run_dir(run_dir, cfg.resume)
    # Read and compare the checkpoint before the data: a mismatch fails in a second.
    start = check_resumable(resume_from, cfg) if resume_from else ResumePoint(0, 0)
    datamodule = SimCLRDataModule(  # reads the data: fails fast
        cfg.data, cfg.augment, seed=int(cfg.seed), start_epoch=start.epoch
    )
    pl.seed_everything(int(cfg.seed), workers=True)
    module = SimCLRModule(cfg)
    if cfg.encoder.compile:
        module.encoder.compile()  # in place, so checkpoint keys keep their names
    num_classes = len(datamodule.splits.classes) if datamodule.has_labeled_eval else None
    callbacks = build_callbacks(cfg, run_dir, feature_dim(module.encoder), num_classes)
    trainer = build_trainer(cfg, run_dir, callbacks, resume_step=start.global_step)
    check_launcher_supports(trainer.world_size)
    started = time.perf_counter()
    with ddp_job_scope():  # ranks > 0 run this very job; afterwards the group is gone
        ckpt_path = str(resume_from) if resume_from else None
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    pretrain_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return None
    last = run_dir / "checkpoints" / "last.ckpt"
    print(f"checkpoint: {last}")
    if not cfg.eval.enabled:
        (run_dir / "pretrain_done").write_text(f"{pretrain_seconds:.1f}\n")
        return None
    from simclr.evaluate import evaluate_encoder, headline_metric
    from simclr.models.classifier import attach_head, plain_head

    report = evaluate_encoder(
        # The head goes along for fine-tuning from one of its layers (eval.finetune).
        attach_head(plain_encoder(module.encoder, cfg), plain_head(module.head, cfg.head)),
        cfg,
        run_dir,
        checkpoint_path=last,
        pretrain_seconds=pretrain_seconds,
        command=" ".join(["simclr-pretrain", *sys.argv[1:]]),
    )
    print(f"report: {report}")
    return headline_metric(report)


def plain_encoder(trained: nn.Module, cfg: DictConfig) -> nn.Module:
    """A fresh copy of the trained encoder, as `build_encoder` makes it.

    Training may have turned its BatchNorms into SyncBatchNorm (which would wait on
    ranks that have exited) and compiled it; evaluation wants neither.
    """
    from simclr.models import build_encoder

    encoder = build_encoder(cfg.encoder)
    encoder.load_state_dict(trained.state_dict())
    return encoder


def report_user_error(err: SimclrError, program: str) -> None:
    """One line on stderr (and in the run dir), no traceback unless HYDRA_FULL_ERROR=1."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    message = report_error(program, err)
    if HydraConfig.initialized():
        run_dir = run_directory()
        if run_dir.is_dir() and not (run_dir / "error.txt").exists():
            with contextlib.suppress(OSError):  # a full disk must not hide the message
                (run_dir / "error.txt").write_text(message + "\n")


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> Any:
    try:
        return pretrain(cfg)
    except (SimclrError, OSError) as caught:
        # A full disk or an unwritable file is the user's to fix: one line, not a traceback.
        err = output_error(caught) if isinstance(caught, OSError) else caught
        if err is None:
            raise
        report_user_error(err, "simclr-pretrain")
        if HydraConfig.get().mode == hydra.types.RunMode.MULTIRUN:
            return None  # the sweep goes on; simclr-report lists this run as failed
        sys.exit(2)


def cli() -> None:
    """Console entry point of `simclr-pretrain`."""
    from simclr.launch import external_launch_overrides

    try:
        # Under torchrun/SLURM every rank runs this: agree on one run directory.
        sys.argv += external_launch_overrides(sys.argv[1:])
    except SimclrError as err:
        report_error("simclr-pretrain", err)
        sys.exit(2)
    run_app("simclr-pretrain", _main, CONF_DIR)  # bad overrides: one line, exit 2


if __name__ == "__main__":
    cli()
