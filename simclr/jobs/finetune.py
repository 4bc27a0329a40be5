"""Fine-tuning a pretrained encoder on a label subset, kept as a classifier (the library
side of `simclr-finetune`, :mod:`simclr.console.finetune`).

The label subset is the one the evaluation protocol draws for the same fraction
and seed (nested, stratified: :mod:`simclr.evaluation.subsets`), fine-tuning is the
protocol's (`eval.finetune.*`, from `eval.finetune.from_head_layer` of the
projection head), and the classifier is scored on the test split. The run
directory receives `classifier.ckpt` (read by `load_classifier`, and by
`load_encoder` / `simclr-export` for its encoder), `finetune.json` and `finetune.md`.
As with `simclr-eval`, the encoder and data come from the checkpoint's training
config unless `data` is given on the command line.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from simclr.config.schema import DataConfig, RunConfig, node_of, typed_config
from simclr.config.validate import check_value
from simclr.data.splits import DataSplits
from simclr.errors import DataError, OutputError
from simclr.runs.rundir import RunDir


def dataset_labels(dataset: Any) -> np.ndarray:
    """The labels of a labeled split in order, without decoding images where it can."""
    for name in ("labels", "targets"):
        values = getattr(dataset, name, None)
        if values is not None and len(values) == len(dataset):
            return np.asarray(values, dtype=np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def finetune_checkpoint(
    checkpoint: str | Path,
    fraction: float,
    seed: int,
    out_dir: str | Path,
    *,
    cfg: RunConfig | None = None,
    command: str | None = None,
) -> Path:
    """Fine-tune the encoder in `checkpoint` (a run directory, .ckpt or .safetensors) on
    `fraction` (in (0, 1]) of the train labels, the subset `seed` picks as the protocol
    does; return the `classifier.ckpt` written into `out_dir` (with finetune.json and
    finetune.md). `cfg` (`eval.finetune`, the data) defaults to the checkpoint's config.
    """
    from simclr.data.views import build_eval_transform
    from simclr.evaluation.finetune import finetune, predict_images
    from simclr.evaluation.subsets import nested_subsets
    from simclr.hub.classifier import load_encoder_with_head, save_classifier

    started = time.perf_counter()
    check_value("eval.finetune.fraction", float(fraction))
    out = RunDir(Path(out_dir))
    if out.classifier.exists():
        raise OutputError(f"{out.classifier}: already exists; choose another output directory")
    encoder = load_encoder_with_head(checkpoint)
    meta: dict[str, Any] = encoder.meta  # type: ignore[assignment]
    run_cfg = cfg if cfg is not None else typed_config(meta["config"])
    data = LabeledData.read(run_cfg)
    indices = nested_subsets(data.train_y, [float(fraction)], seed)[float(fraction)]
    image_size = data.config.image_size
    model, chosen = finetune(
        encoder,
        data.train,
        indices.tolist(),
        data.num_classes,
        run_cfg.augment,
        image_size,
        run_cfg.eval.finetune,
        seed,
        num_workers=data.config.num_workers,
    )
    transform = build_eval_transform(run_cfg.augment, image_size)
    predicted = predict_images(model, data.test, transform, run_cfg.eval.batch_size)
    info = {
        "source": str(meta["source"]),
        "fraction": float(fraction),
        "seed": int(seed),
        "n_labels": len(indices),
        "test_accuracy": float(np.mean(predicted == data.test_y)),
        **data.describe(),
        "chosen": {k: v for k, v in chosen.items() if v is not None},
        "seconds": round(time.perf_counter() - started, 1),
        "command": command or "",
    }
    out.path.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(node_of(run_cfg), resolve=True, enum_to_str=True)
    assert isinstance(config, dict)
    path = save_classifier(model.cpu(), out.classifier, config, info)  # type: ignore[arg-type]
    write_report(info, out.path)
    return path


@dataclass
class LabeledData:
    """The labeled splits a fine-tuning reads, with their labels read once."""

    splits: DataSplits
    config: DataConfig  # the `data` (or `eval.data`) node they were read with
    train: Dataset  # splits.train and splits.test, known to be there
    test: Dataset
    train_y: np.ndarray
    test_y: np.ndarray

    def describe(self) -> dict[str, Any]:
        """The classes and the data's name, for finetune.json."""
        return {
            "classes": [str(c) for c in self.splits.classes],
            "data": self.splits.source or str(self.config.name),
        }

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1

    @classmethod
    def read(cls, run_cfg: RunConfig) -> LabeledData:
        """The evaluation data of `run_cfg`; DataError unless it has train and test labels."""
        from simclr.data import build_datasets
        from simclr.evaluation.collect import eval_data_config

        config = eval_data_config(run_cfg)
        splits = build_datasets(config)
        if splits.train is None or splits.test is None:
            raise DataError(f"{splits.source}: fine-tuning needs labeled train and test splits")
        train, test = splits.train, splits.test
        return cls(splits, config, train, test, dataset_labels(train), dataset_labels(test))


def write_report(info: dict[str, Any], out: Path) -> None:
    """finetune.json (everything in `info`) and a few lines of finetune.md."""
    (out / "finetune.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Fine-tuned classifier",
        "",
        f"**Test accuracy: {100 * info['test_accuracy']:.1f} %** "
        f"({info['n_labels']} labels = {100 * info['fraction']:g}% of the train split, "
        f"seed {info['seed']}, from head layer {info['chosen'].get('from_head_layer', 0)})",
        "",
        "| | |",
        "|---|---|",
        f"| Pretrained encoder | `{info['source']}` |",
        f"| Data | {info['data']} |",
        f"| Chosen | {info['chosen']} |",
        f"| Wall time | {info['seconds']} s |",
        f"| Command | `{info['command']}` |",
    ]
    (out / "finetune.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
