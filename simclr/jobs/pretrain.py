"""Pretraining one run: check its directory, train, write the last checkpoint, evaluate.

This is the library function behind `simclr-pretrain` (see :mod:`simclr.console.pretrain`
for the command, and :func:`simclr.api.pretrain` for notebooks); it knows nothing of
command lines or exit codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from pathlib import Path

import pytorch_lightning as pl
from torch import nn

from simclr.config.resolvers import launched_as_rank_zero
from simclr.config.schema import RunConfig
from simclr.errors import OutputError
from simclr.runs.output import holding
from simclr.runs.rundir import CHECKPOINTS, RunDir

log = logging.getLogger(__name__)


# What a run that stopped before its first checkpoint holds: Hydra's record, the log,
# its one-line error. Restarting it there (resume=auto) loses nothing.
RESTARTABLE = frozenset({".hydra", "pretrain.log", "error.txt"})


def _listed(names: list[str]) -> str:
    return f"{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"


def _progress(run: RunDir, held: Collection[str]) -> list[str]:
    """What in `run` records training done: logs, checkpoints other than last.ckpt."""
    found = [name for name in ("logs", "mlruns", "wandb", "features") if name in held]
    if run.checkpoints.is_dir():
        found += [f"{CHECKPOINTS}/{p.name}" for p in sorted(run.checkpoints.iterdir())]
    return found


def check_run_dir(run: RunDir, resume: str, held: Collection[str]) -> Path | None:
    """Refuse a directory that is finished, someone else's, or progress without last.ckpt.

    Runs under the run's lock; `held` is what the directory held when this process
    claimed it (what Hydra wrote for this job since is not judged). Returns the
    checkpoint to resume, if any. A refusal never suggests writing into a
    directory that holds anything but a run's own files.
    """
    marker = run.finished_marker()
    if marker is not None:
        raise OutputError(
            f"{run.path} holds a finished run ({marker.name}); choose another hydra.run.dir"
        )
    if run.checkpoints.exists() and not run.checkpoints.is_dir():
        raise OutputError(
            f"{run.checkpoints}: a file where the run keeps its checkpoints; move it away "
            "or choose another hydra.run.dir"
        )
    last = run.last_checkpoint
    if last.exists():
        if resume != "auto":
            raise OutputError(
                f"{run.path} already has {last.name}; pass resume=auto to continue it "
                "or choose another hydra.run.dir"
            )
        return last
    names = sorted(held)
    progress = _progress(run, held)
    if progress:
        raise OutputError(
            f"{run.path} holds {_listed(progress)} of a run but no {CHECKPOINTS}/{last.name} "
            "to continue from (resume=auto would start over and overwrite them); "
            "choose a new hydra.run.dir"
        )
    if any(name not in RESTARTABLE | {CHECKPOINTS} for name in names):  # it is empty
        raise OutputError(
            f"{run.path} is not empty ({_listed(names)}); choose a new or empty hydra.run.dir"
        )
    if names and resume != "auto":
        raise OutputError(
            f"{run.path} holds a run that stopped before its first checkpoint "
            f"({_listed(names)}); pass resume=auto to restart it there, or choose a new "
            "hydra.run.dir"
        )
    return None


def pretrain_run(cfg: RunConfig, run: RunDir, command: str | None = None) -> Path | None:
    """Pretrain as `cfg` says into `run`, evaluate unless `eval=none`.

    Returns the report.md path on global rank 0 when evaluated, else None. The run
    directory is locked (simclr/runs/lock.py) while it trains and evaluates: with
    the lock the caller took (the console's preflight, the Python API), or one
    taken here, before the directory is judged. `cfg` was validated once, by the
    caller, before anything was written (the console's preflight, `simclr.pretrain`).
    """
    if not launched_as_rank_zero():
        # Lightning's DDP children re-run this job in rank 0's (locked) directory.
        return _train_and_evaluate(cfg, run, command)
    resume = str(cfg.resume)
    command = command or "simclr.jobs.pretrain.pretrain_run"
    with holding(run.path, command, take_stale=resume == "auto") as taken:
        check_run_dir(run, resume, taken.before)
        return _train_and_evaluate(cfg, run, command)


def _train_and_evaluate(cfg: RunConfig, run: RunDir, command: str | None) -> Path | None:
    from simclr.data.datamodule import SimCLRDataModule
    from simclr.evaluation.collect import check_evaluable, load_eval_data
    from simclr.models import feature_dim
    from simclr.models.inference import check_accepts
    from simclr.training.launch import check_launcher_supports, ddp_job_scope
    from simclr.training.module import SimCLRModule
    from simclr.training.preemption import exit_on_preemption
    from simclr.training.resume import ResumePoint, check_resumable
    from simclr.training.trainer import build_callbacks, build_trainer, training_summary

    resume_from = run.last_checkpoint if run.last_checkpoint.exists() else None
    # Read and compare the checkpoint before the data: a mismatch fails in a second.
    start = check_resumable(resume_from, cfg) if resume_from else ResumePoint(0, 0)
    pl.seed_everything(cfg.seed, workers=True)
    module = SimCLRModule(cfg)
    check_accepts(module.encoder, cfg.data.image_size, f"encoder {cfg.encoder.arch}")
    datamodule = SimCLRDataModule(  # reads the data: fails fast
        cfg.data,
        cfg.augment,
        seed=cfg.seed,
        start_epoch=start.epoch,
        start_batch=start.batches_done,
    )
    if cfg.eval.enabled:  # what evaluation needs, known before training starts
        check_evaluable(datamodule.splits if cfg.eval.data is None else load_eval_data(cfg))
    num_classes = len(datamodule.splits.classes) if datamodule.has_labeled_eval else None
    n_train = len(datamodule.pretrain_set)  # type: ignore[arg-type]
    callbacks = build_callbacks(cfg, run, feature_dim(module.encoder), num_classes, n_train)
    steps_per_epoch = n_train // cfg.data.batch_size
    trainer = build_trainer(cfg, run, callbacks, start.global_step, steps_per_epoch)
    check_launcher_supports(trainer.world_size)
    started = time.perf_counter()
    # ranks > 0 run this very job; afterwards the group is gone. A signal: last.ckpt, exit.
    with ddp_job_scope(), exit_on_preemption(trainer, run.path):
        ckpt_path = str(resume_from) if resume_from else None
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    pretrain_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return None
    log.info("checkpoint: %s", run.last_checkpoint)
    if not cfg.eval.enabled:
        run.pretrain_done.write_text(f"{pretrain_seconds:.1f}\n")
        return None
    from simclr.evaluation import evaluate_encoder
    from simclr.models.classifier import attach_head, plain_head
    from simclr.training.loggers import log_report

    report = evaluate_encoder(
        # The head goes along for fine-tuning from one of its layers (eval.finetune).
        attach_head(plain_encoder(module.encoder, cfg), plain_head(module.head, cfg.head)),
        cfg,
        run.path,
        checkpoint_path=run.last_checkpoint,
        pretrain_seconds=pretrain_seconds,
        command=command,
        training=training_summary(cfg, trainer, module),
    )
    log_report(trainer.loggers, report, trainer.global_step)  # artifacts, metrics: MLflow, W&B
    return report


def plain_encoder(trained: nn.Module, cfg: RunConfig) -> nn.Module:
    """A fresh copy of the trained encoder, as `build_encoder` makes it.

    Training may have turned its BatchNorms into SyncBatchNorm (which would wait on
    ranks that have exited) and compiled it; evaluation wants neither.
    """
    from simclr.models import build_encoder

    encoder = build_encoder(cfg.encoder)
    encoder.load_state_dict(trained.state_dict())
    return encoder
