"""The layout of one run directory, named once.

Every module that reads or writes a run's files (pretraining, evaluation, the
hub, resume, the sweep report, the console layer) goes through :class:`RunDir`,
so a file's name and place are decided here and nowhere else::

    <run>/
      .hydra/                 Hydra's record of the composed config and overrides
      checkpoints/last.ckpt   the final (or latest) weights; what resume=auto continues
      checkpoints/best.ckpt   the best epoch by the online probe (or the loss)
      logs/                   the Lightning logger's files (metrics.csv, TensorBoard)
      mlruns/, wandb/         MLflow's file store and W&B's offline runs, when logged to
      features/               the evaluation's feature cache
      report.md, report.json  the evaluation report (schema: docs/report-schema.md)
      label_efficiency.png, embedding.png   its figures
      pretrain_done           marker of a run pretrained with eval=none (its seconds)
      error.txt               the one-line error a failed run stopped with
      pretrain.log            the full training log
      .lock                   the process training into the run (simclr/runs/lock.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHECKPOINTS = "checkpoints"
LAST = "last"
BEST = "best"
CHECKPOINT_SUFFIX = ".ckpt"


@dataclass(frozen=True)
class RunDir:
    """The paths inside one run directory (nothing is created by naming them)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def checkpoints(self) -> Path:
        """Directory of the Lightning checkpoints."""
        return self.path / CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        """The latest weights, rewritten every `trainer.checkpoint_every_n_epochs`."""
        return self.checkpoints / f"{LAST}{CHECKPOINT_SUFFIX}"

    @property
    def best_checkpoint(self) -> Path:
        """The weights of the best epoch by the monitored metric."""
        return self.checkpoints / f"{BEST}{CHECKPOINT_SUFFIX}"

    @property
    def weights_preference(self) -> tuple[Path, Path]:
        """Checkpoints in the order a reader of this run prefers them: final first."""
        return (self.last_checkpoint, self.best_checkpoint)

    @property
    def logs(self) -> Path:
        """The logger's directory (`metrics.csv` for the CSV logger)."""
        return self.path / "logs"

    @property
    def metrics_csv(self) -> Path:
        """The CSV logger's metrics file."""
        return self.logs / "metrics.csv"

    @property
    def mlruns(self) -> Path:
        """The MLflow file store of `trainer.logger=mlflow` (by default)."""
        return self.path / "mlruns"

    @property
    def features(self) -> Path:
        """The evaluation's feature cache."""
        return self.path / "features"

    @property
    def report_json(self) -> Path:
        """The machine-readable evaluation report."""
        return self.path / "report.json"

    @property
    def report_md(self) -> Path:
        """The human-readable evaluation report."""
        return self.path / "report.md"

    @property
    def label_efficiency_png(self) -> Path:
        """The report's figure of accuracy against the share of labels."""
        return self.path / "label_efficiency.png"

    @property
    def embedding_png(self) -> Path:
        """The report's 2-D map of the test features."""
        return self.path / "embedding.png"

    @property
    def pretrain_done(self) -> Path:
        """Marker of a finished `eval=none` run; holds its pretraining seconds."""
        return self.path / "pretrain_done"

    @property
    def error_file(self) -> Path:
        """The one-line error a failed run stopped with."""
        return self.path / "error.txt"

    @property
    def hydra(self) -> Path:
        """Hydra's output subdirectory (config.yaml, overrides.yaml)."""
        return self.path / ".hydra"

    @property
    def training_log(self) -> Path:
        """The full log of the run."""
        return self.path / "pretrain.log"

    @property
    def lock(self) -> Path:
        """The lock file naming the process that trains into this run."""
        return self.path / ".lock"

    @property
    def evaluations(self) -> Path:
        """Where `simclr-eval` writes its reports of this run's checkpoint, one folder each."""
        return self.path / "eval"

    @property
    def classifier(self) -> Path:
        """A fine-tuned or distilled classifier (`simclr-finetune`, `simclr-distill`)."""
        return self.path / "classifier.ckpt"

    @property
    def eval_config(self) -> Path:
        """The config a `simclr-eval` run evaluated with."""
        return self.path / "eval_config.yaml"

    @property
    def finished_markers(self) -> tuple[Path, Path]:
        """Files whose presence means the run finished (evaluated, or eval=none)."""
        return (self.report_json, self.pretrain_done)

    def finished_marker(self) -> Path | None:
        """The marker that says this run finished, if one exists."""
        return next((m for m in self.finished_markers if m.exists()), None)

    def pretrain_seconds(self) -> float | None:
        """The pretraining wall time recorded by the `eval=none` marker, if any."""
        try:
            return float(self.pretrain_done.read_text().strip())
        except (OSError, ValueError):
            return None

    @classmethod
    def of_checkpoint(cls, weights: Path) -> RunDir | None:
        """The run a checkpoint lies in (`<run>/checkpoints/x.ckpt`), if it is one of ours."""
        parent = Path(weights).parent
        if parent.name != CHECKPOINTS:
            return None
        run = cls(parent.parent)
        return run if run.hydra.is_dir() or run.report_json.is_file() else None
