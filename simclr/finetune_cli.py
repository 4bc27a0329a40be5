"""`simclr-finetune`: fine-tune a pretrained encoder on a label subset, keep the classifier.

    simclr-finetune checkpoint=outputs/2026-11-23/10-00-00 eval.finetune.fraction=0.01 seed=0
    simclr-finetune -m checkpoint=RUN eval.finetune.fraction=0.01,0.1 seed=0,1,2

The label subset is the one the evaluation protocol draws for the same fraction
and seed (nested, stratified: :mod:`simclr.evaluate.subsets`), fine-tuning is the
protocol's (`eval.finetune.*`, from `eval.finetune.from_head_layer` of the
projection head), and the classifier is scored on the test split. The run
directory receives `classifier.ckpt` (read by `load_classifier`, and by
`load_encoder` / `simclr-export` for its encoder), `finetune.json` and `finetune.md`.
As with `simclr-eval`, the encoder and data come from the checkpoint's training
config unless `data` is given on the command line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from simclr.config import register_configs
from simclr.config.validate import validate_data, validate_eval
from simclr.errors import ConfigError, DataError, OutputError, SimclrError
from simclr.pretrain import CONF_DIR, report_user_error, run_directory

PROGRAM = "simclr-finetune"
CLASSIFIER_FILE = "classifier.ckpt"


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
    from simclr.augment import build_eval_transform
    from simclr.data import build_datasets
    from simclr.evaluate.finetune import finetune, predict_images
    from simclr.evaluate.pipeline import eval_data_config
    from simclr.evaluate.subsets import nested_subsets
    from simclr.hub.classifier import load_encoder_with_head, save_classifier
    from simclr.hub.weights import merged_config

    started = time.perf_counter()
    if not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(f"eval.finetune.fraction={fraction} must be in (0, 1]")
    out = Path(out_dir)
    if (out / CLASSIFIER_FILE).exists():
        raise OutputError(
            f"{out / CLASSIFIER_FILE}: already exists; choose another output directory"
        )
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
    out.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(run_cfg, resolve=True)
    assert isinstance(config, dict)
    path = save_classifier(model.cpu(), out / CLASSIFIER_FILE, config, info)  # type: ignore[arg-type]
    write_report(info, out)
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


def run_finetune_command(cfg: DictConfig, overrides: Sequence[str], out_dir: Path) -> Path:
    """`cfg.checkpoint` fine-tuned as this command's `eval.finetune` and `seed` say."""
    from simclr.evaluate.cli import data_overridden, effective_config
    from simclr.evaluate.pipeline import eval_data_config
    from simclr.hub.loading import read_weights

    if not cfg.checkpoint:
        raise ConfigError(
            "checkpoint is not set: pass checkpoint=PATH (a simclr-pretrain run directory, "
            "a .ckpt or a .safetensors file)"
        )
    validate_eval(cfg.eval)
    _, weights = read_weights(str(cfg.checkpoint))  # fails here, in a second, if unreadable
    run_cfg = effective_config(cfg, weights.config, data_overridden(overrides))
    validate_data(eval_data_config(run_cfg), key="eval.data" if cfg.eval.data else "data")
    return finetune_checkpoint(
        str(cfg.checkpoint),
        float(cfg.eval.finetune.fraction),
        int(cfg.seed),
        out_dir,
        cfg=run_cfg,
        command=" ".join([PROGRAM, *overrides]),
    )


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> Any:
    overrides = list(HydraConfig.get().overrides.task)
    try:
        path = run_finetune_command(cfg, overrides, run_directory())
    except SimclrError as err:
        report_user_error(err, PROGRAM)
        if HydraConfig.get().mode == hydra.types.RunMode.MULTIRUN:
            return None
        sys.exit(2)
    print(f"classifier: {path}")
    info = json.loads((path.parent / "finetune.json").read_text())
    return info["test_accuracy"]  # what a Hydra sweeper maximises


def cli() -> None:
    """Console entry point of `simclr-finetune`."""
    from simclr.cli import run_app

    register_configs()
    run_app(PROGRAM, _main, CONF_DIR)  # bad overrides: one line, exit 2


if __name__ == "__main__":
    cli()
