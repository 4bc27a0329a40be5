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
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from simclr.config.schema import merged_config
from simclr.config.validate import check_value
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
    cfg: DictConfig | None = None,
    command: str | None = None,
) -> Path:
    """Fine-tune the encoder in `checkpoint` on `fraction` of the train labels; return
    the `classifier.ckpt` written into `out_dir` (with finetune.json and finetune.md).

    Args:
        checkpoint: a simclr-pretrain run directory, .ckpt or .safetensors file.
        fraction: share of the train split's labels, in (0, 1].
        seed: picks the label subset (as the protocol does) and the training draws.
        cfg: the run config to use (`eval.finetune`, the data); default: the
            checkpoint's training config.
    """
    from simclr.data import build_datasets
    from simclr.data.views import build_eval_transform
    from simclr.evaluation.collect import eval_data_config
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
    run_cfg = cfg if cfg is not None else merged_config(meta["config"])
    data_cfg = eval_data_config(run_cfg)
    splits = build_datasets(data_cfg)
    if splits.train is None or splits.test is None:
        raise DataError(f"{splits.source}: fine-tuning needs labeled train and test splits")
    train_y, test_y = dataset_labels(splits.train), dataset_labels(splits.test)
    indices = nested_subsets(train_y, [float(fraction)], int(seed))[float(fraction)]
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    image_size = int(data_cfg.image_size)
    model, chosen = finetune(
        encoder,
        splits.train,
        indices.tolist(),
        num_classes,
        run_cfg.augment,
        image_size,
        run_cfg.eval.finetune,
        int(seed),
        num_workers=int(data_cfg.num_workers),
    )
    transform = build_eval_transform(run_cfg.augment, image_size)
    predicted = predict_images(model, splits.test, transform, int(run_cfg.eval.batch_size))
    info = {
        "source": str(meta["source"]),
        "fraction": float(fraction),
        "seed": int(seed),
        "n_labels": len(indices),
        "test_accuracy": float(np.mean(predicted == test_y)),
        "classes": [str(c) for c in splits.classes],
        "data": splits.source or str(data_cfg.name),
        "chosen": {k: v for k, v in chosen.items() if v is not None},
        "seconds": round(time.perf_counter() - started, 1),
        "command": command or "",
    }
    out.path.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(run_cfg, resolve=True, enum_to_str=True)
    assert isinstance(config, dict)
    path = save_classifier(model.cpu(), out.classifier, config, info)  # type: ignore[arg-type]
    write_report(info, out.path)
    return path


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
