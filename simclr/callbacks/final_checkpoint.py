"""`last.ckpt` always holds the weights training ended with.

The `last` ModelCheckpoint saves every `trainer.checkpoint_every_n_epochs` epochs;
when training stops between two of those saves (max_epochs not a multiple of it,
a time budget, a max_steps limit), this callback writes the final state there.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint


class FinalCheckpoint(Callback):
    """Save `periodic`'s file at the end of training unless it already holds the last step."""

    def __init__(self, periodic: ModelCheckpoint, path: str) -> None:
        self.periodic = periodic
        self.path = path

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning's own record of the step the periodic checkpoint last saved.
        if getattr(self.periodic, "_last_global_step_saved", -1) != trainer.global_step:
            trainer.save_checkpoint(self.path)  # every rank calls it; rank 0 writes
