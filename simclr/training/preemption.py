"""Pre-emption: stop at a step boundary with `checkpoints/last.ckpt`, say how to continue.

What Lightning 2 already does (pytorch_lightning/trainer/connectors/signal_connector.py
and the training loops), and what is used as is:

* **SIGTERM**: its handler sets ``trainer.received_sigterm``; the training loop
  finishes the current step and raises ``SIGTERMException`` (a ``SystemExit``).
  Under DDP the launching rank forwards the signal to the ranks it started, and the
  flag is broadcast, so all ranks stop after the same step.
* **SLURM** (a SLURM job is detected; ``SLURMEnvironment(auto_requeue=True)`` is the
  default): ``SIGUSR1`` (``#SBATCH --signal=SIGUSR1@90``) saves
  ``hpc_ckpt_<n>.ckpt`` in the run directory and runs ``scontrol requeue <job id>``;
  SLURM then ends the job with SIGTERM (above) and later starts it again with the
  same job id, hence the same run directory.

What it does not do, and :class:`PreemptionCheckpoint` adds:

* save anything on SIGTERM: the callback saves ``checkpoints/last.ckpt`` (atomically,
  through the run's CheckpointIO) when the loop stops for it. That checkpoint is taken
  after a whole step, so it also records where in the epoch the run was; ``resume=auto``
  continues from there with the data order the epoch had (simclr.training.resume);
* stop cleanly on **Ctrl-C**: Lightning lets ``KeyboardInterrupt`` land wherever it
  is, mid-step, and exits with status 1. The callback routes SIGINT to the SIGTERM
  handling above, so Ctrl-C too stops after the step with ``last.ckpt``.

:func:`exit_on_preemption` then ends the command with one line saying how to continue,
and exit status 128 + the signal number: **143** for SIGTERM (also what a SLURM job
requeued after SIGUSR1 ends with), **130** for Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.exceptions import SIGTERMException


class PreemptionCheckpoint(Callback):
    """Save `path` when Lightning stops training for a signal; route Ctrl-C to that stop.

    Args:
        path: the checkpoint to write, ``<run dir>/checkpoints/last.ckpt``, the file
            ``resume=auto`` continues from.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.signal: int | None = None  # the signal that stopped training
        self.saved = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning has installed its SIGTERM handler by now (Trainer._run); it restores
        # every handler it found, ours included, when fit ends.
        sigterm = signal.getsignal(signal.SIGTERM)

        def stop(signum: int, frame: FrameType | None) -> None:
            if self.signal is None:
                self.signal = signum
            if callable(sigterm):
                sigterm(signal.SIGTERM, frame)

        if threading.current_thread() is threading.main_thread():  # where signals go
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, stop)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return  # a crash: last.ckpt stays the last good one (resume=auto uses it)
        if self.signal is None:
            self.signal = signal.SIGTERM  # under DDP a rank may learn it by broadcast
        trainer.save_checkpoint(self.path)  # every rank: it synchronises them
        self.saved = True


def _callback(trainer: pl.Trainer) -> PreemptionCheckpoint | None:
    return next((c for c in trainer.callbacks if isinstance(c, PreemptionCheckpoint)), None)  # type: ignore[attr-defined]


def stop_message(trainer: pl.Trainer, callback: PreemptionCheckpoint, run_dir: Path) -> str:
    """The one line printed when a signal stopped training."""
    name = signal.Signals(callback.signal or signal.SIGTERM).name
    where = (
        f"after global step {trainer.global_step} (epoch {trainer.current_epoch}, "
        f"{trainer.fit_loop.epoch_loop.batch_progress.current.completed} batches into it)"
    )
    saved = f"saved {callback.path}" if callback.saved else "no checkpoint saved"
    return (
        f"simclr-pretrain: stopped by {name} {where}; {saved}; to continue, run the same "
        f"command with: resume=auto hydra.run.dir={run_dir}"
    )


@contextmanager
def exit_on_preemption(trainer: pl.Trainer, run_dir: Path) -> Iterator[None]:
    """Around ``trainer.fit``: a stop for a signal becomes one line and exit 128 + signal."""
    try:
        yield
    except SIGTERMException:
        callback = _callback(trainer)
        if callback is None:
            raise
        if trainer.is_global_zero:
            print(stop_message(trainer, callback, run_dir), file=sys.stderr, flush=True)
        raise SystemExit(128 + int(callback.signal or signal.SIGTERM)) from None
