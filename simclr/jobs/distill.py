"""`distill_student`: train a student on every train image to match a fine-tuned teacher.

SimCLRv2's third step (arXiv 2006.10029, §2.3): the teacher (a classifier from
simclr-finetune) labels every training image, labeled or not, with its
temperature-scaled class distribution, and the student learns to reproduce it
(optionally plus the labeled cross-entropy on the teacher's own label subset).
Student and teacher see the same view of each image: crop + flip by default.
Data loading, optimizer, schedule and Trainer are pretraining's.

The run directory receives `checkpoints/last.ckpt` (the student, readable by
`load_encoder`), `classifier.ckpt` (the student as a classifier, readable by
`load_classifier`, so it can teach in turn), `distill.json` / `distill.md`, and
the usual evaluation report of the student encoder unless `eval=none`.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset

from simclr.config.choices import DistillViews
from simclr.config.schema import RunConfig, node_of
from simclr.data.splits import DataSplits
from simclr.errors import ConfigError, DataError, OutputError
from simclr.runs.rundir import RunDir

VIEWS = tuple(v.value for v in DistillViews)


class MaskedLabels(Dataset):
    """`(transform(image), label)` where only the indices in `labeled` keep their label (else -1)."""

    def __init__(self, base: Dataset, transform: Any, labeled: set[int]) -> None:
        self.base, self.transform, self.labeled = base, transform, labeled

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.base[index]
        return self.transform(image), int(label) if index in self.labeled else -1


class RecalibrateAtEnd(pl.Callback):
    """After the last epoch, re-estimate the student's BatchNorm statistics on `images`.

    The reason fine-tuning does it (:func:`simclr.evaluation.finetune.recalibrate_batchnorm`):
    after a short run the running averages lag behind the weights, and eval-mode
    predictions suffer. Runs before the last checkpoint is written (Lightning calls
    checkpoint callbacks last), so the checkpoints hold the re-estimated statistics.
    """

    def __init__(self, images: Dataset, transform: Any, seed: int, num_workers: int) -> None:
        self.images, self.transform, self.seed, self.workers = images, transform, seed, num_workers

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs:
            from simclr.evaluation.finetune import recalibrate_batchnorm

            encoder = pl_module.encoder
            assert isinstance(encoder, nn.Module)
            recalibrate_batchnorm(encoder, self.images, self.transform, self.seed, self.workers)


def check_distill(cfg: RunConfig) -> None:
    """ConfigError for the first bad `distill.*` value, before anything is read."""
    from simclr.config.validate import check_section

    d = cfg.distill
    if not d.teacher:
        raise ConfigError(
            "distill.teacher is not set: pass distill.teacher=PATH (a classifier.ckpt written "
            "by simclr-finetune, or its run directory)"
        )
    check_section(d, "distill")  # the ranges of simclr/config/validate.py
    DistillViews.parse(d.views, "distill.views")


def view_transform(cfg: RunConfig) -> Any:
    """The training view of `distill.views` (one view: teacher and student share it)."""
    from simclr.data.views import build_eval_transform, build_view_transform
    from simclr.evaluation.finetune import finetune_transform

    size = cfg.data.image_size
    if cfg.distill.views == "crop_flip":
        return finetune_transform(cfg.augment, size)
    if cfg.distill.views == "simclr":
        return build_view_transform(cfg.augment, size)
    return build_eval_transform(cfg.augment, size)


def _loader(dataset: Dataset, cfg: RunConfig, shuffle: bool) -> DataLoader:
    batch = cfg.data.batch_size
    workers = cfg.data.num_workers
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=shuffle,
        drop_last=shuffle and cfg.data.drop_last and len(dataset) > batch,  # type: ignore[arg-type]
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def distill_student(cfg: RunConfig, run_dir: Path, command: str | None = None) -> Path | None:
    """Train the student `cfg` describes; return its classifier.ckpt (None on ranks > 0).

    `cfg` is a full run config: `encoder` is the student, `data`/`augment` must
    be those the teacher was fine-tuned with (the two see the same tensors), and
    `distill.teacher` names the teacher.
    """
    from simclr.hub.classifier import load_classifier
    from simclr.training.distill_module import DistillModule
    from simclr.training.launch import check_launcher_supports, ddp_job_scope
    from simclr.training.trainer import build_trainer

    check_distill(cfg)
    run = RunDir(Path(run_dir))
    for done in (run.classifier, run.last_checkpoint):
        if done.exists():
            raise OutputError(f"{done}: already exists; choose another hydra.run.dir")
    teacher = load_classifier(str(cfg.distill.teacher))
    data = StudentData.read(cfg, getattr(teacher, "meta", {}))
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)
    module = DistillModule(cfg, data.num_classes, teacher)
    trainer_cfg = copy.deepcopy(cfg)
    trainer_cfg.online_probe.enabled = bool(data.val)  # validation on
    trainer = build_trainer(trainer_cfg, run, _callbacks(cfg, run, data))
    check_launcher_supports(trainer.world_size)
    with ddp_job_scope():
        trainer.fit(
            module,
            train_dataloaders=_loader(data.images, cfg, shuffle=True),
            val_dataloaders=data.val,
        )
    if not trainer.is_global_zero:
        return None
    return _finish(cfg, run, module, teacher, data, time.perf_counter() - started, command)


@dataclass
class StudentData:
    """What a student trains and is tested on: every train image, the teacher's labels."""

    splits: DataSplits
    images: MaskedLabels  # every pretraining image; labels kept only on the teacher's subset
    eval_transform: Any
    val: list[DataLoader]  # the test split, for the agreement shown while training
    num_classes: int
    teacher_meta: dict[str, Any]

    @classmethod
    def read(cls, cfg: RunConfig, teacher_meta: dict[str, Any]) -> StudentData:
        """The data of `cfg`, checked against the teacher (its classes, its label subset)."""
        from simclr.data import build_datasets
        from simclr.data.splits import TransformedDataset
        from simclr.data.views import build_eval_transform
        from simclr.evaluation.subsets import nested_subsets
        from simclr.jobs.finetune import dataset_labels

        info: dict[str, Any] = teacher_meta["classifier"]
        splits = build_datasets(cfg.data)
        num_classes = int(info["num_classes"])
        if splits.classes and len(splits.classes) != num_classes:
            raise DataError(
                f"{splits.source}: {len(splits.classes)} classes, but the teacher "
                f"{cfg.distill.teacher} predicts {num_classes}"
            )
        labeled: set[int] = set()
        if cfg.distill.labeled_weight > 0 and splits.train is not None:
            # The teacher's own label subset, drawn again as simclr-finetune drew it.
            fraction = float(info["fraction"])
            subset = nested_subsets(dataset_labels(splits.train), [fraction], int(info["seed"]))
            labeled = set(subset[fraction].tolist())  # train comes first in pretraining_set()
        images = MaskedLabels(splits.pretraining_set(), view_transform(cfg), labeled)
        eval_transform = build_eval_transform(cfg.augment, cfg.data.image_size)
        val = []
        if splits.test is not None:
            test = TransformedDataset(splits.test, eval_transform)
            val = [_loader(test, cfg, shuffle=False)]
        return cls(splits, images, eval_transform, val, num_classes, teacher_meta)


def _callbacks(cfg: RunConfig, run: RunDir, data: StudentData) -> list[pl.Callback]:
    from pytorch_lightning.callbacks import LearningRateMonitor

    from simclr.training.callbacks.budget import budget_callbacks
    from simclr.training.checkpoints import last_checkpoint

    callbacks: list[pl.Callback] = [last_checkpoint(run)]
    if cfg.trainer.logger != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    images = data.splits.pretraining_set()
    callbacks.append(RecalibrateAtEnd(images, data.eval_transform, cfg.seed, cfg.data.num_workers))
    # trainer.max_time: stop at the budget with the schedule planned to end there, as
    # pretraining does (DistillModule shares its optimizer set-up and schedule plan).
    return callbacks + budget_callbacks(cfg)


def _finish(
    cfg: RunConfig,
    run: RunDir,
    module: Any,
    teacher: nn.Module,
    data: StudentData,
    seconds: float,
    command: str | None,
) -> Path:
    """The student as a classifier (classifier.ckpt), distill.json/.md, and its evaluation."""
    from simclr.hub.classifier import save_classifier
    from simclr.models.classifier import Classifier

    head = module.classifier["head"]
    assert isinstance(head, nn.Linear)
    student = Classifier(module.encoder, data.num_classes, head.in_features)
    student.head.load_state_dict(head.state_dict())
    result = _result(cfg, data, len(data.images), seconds, command)
    result |= _test_accuracies(cfg, student, teacher, data)
    config = OmegaConf.to_container(node_of(cfg), resolve=True, enum_to_str=True)
    path = save_classifier(student.cpu(), run.classifier, config, result)  # type: ignore[arg-type]
    write_distill_report(result, run.path)
    if cfg.eval.enabled:
        from simclr.evaluation import evaluate_encoder
        from simclr.jobs.pretrain import plain_encoder

        evaluate_encoder(
            plain_encoder(module.encoder, cfg),
            cfg,
            run.path,
            checkpoint_path=run.last_checkpoint,
            command=command,
        )
    return path


def _result(
    cfg: RunConfig, data: StudentData, n_images: int, seconds: float, command: str | None
) -> dict[str, Any]:
    info: dict[str, Any] = data.teacher_meta["classifier"]
    encoder = cfg.encoder
    return {
        "teacher": str(data.teacher_meta["source"]),
        "teacher_fraction": info.get("fraction"),
        "teacher_seed": info.get("seed"),
        "teacher_from_head_layer": info.get("from_head_layer"),
        "temperature": cfg.distill.temperature,
        "labeled_weight": cfg.distill.labeled_weight,
        "views": str(cfg.distill.views),
        "student": str(encoder.arch if encoder.arch != "timm" else encoder.timm_name),
        "n_images": n_images,
        "seconds": round(seconds, 1),
        "command": command or "",
        "classes": [str(c) for c in data.splits.classes],
    }


def _test_accuracies(
    cfg: RunConfig, student: nn.Module, teacher: nn.Module, data: StudentData
) -> dict[str, float]:
    """Student's and teacher's test accuracy and their agreement ({} without a test split)."""
    from simclr.evaluation.finetune import predict_images
    from simclr.jobs.finetune import dataset_labels

    test = data.splits.test
    if test is None:
        return {}
    test_y = dataset_labels(test)
    batch = cfg.eval.batch_size
    s_pred = predict_images(student, test, data.eval_transform, batch)
    t_pred = predict_images(teacher, test, data.eval_transform, batch)
    return {
        "test_accuracy": float(np.mean(s_pred == test_y)),
        "teacher_test_accuracy": float(np.mean(t_pred == test_y)),
        "test_agreement": float(np.mean(s_pred == t_pred)),
    }


def write_distill_report(result: dict[str, Any], out: Path) -> None:
    """distill.json (everything) and distill.md (the accuracies and the setup)."""
    (out / "distill.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    def pct(key: str) -> str:
        value = result.get(key)
        return "n/a" if value is None else f"{100 * value:.1f} %"

    lines = [
        "# Distilled student",
        "",
        f"Student test accuracy **{pct('test_accuracy')}**, teacher {pct('teacher_test_accuracy')}, "
        f"agreement with the teacher {pct('test_agreement')}.",
        "",
        "| | |",
        "|---|---|",
        *(
            f"| {k} | {result[k]} |"
            for k in ("teacher", "student", "temperature", "labeled_weight")
        ),
        *(f"| {k} | {result[k]} |" for k in ("views", "n_images", "seconds", "command")),
    ]
    (out / "distill.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
