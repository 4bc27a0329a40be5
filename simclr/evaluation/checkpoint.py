"""Evaluating a trained encoder from its checkpoint (run dir, .ckpt or .safetensors).

The library side of `simclr-eval` (:mod:`simclr.console.evaluate`). The encoder, its eval normalisation and (unless `data` is given on the command
line) the evaluation data come from the checkpoint's training config; `eval.*`
comes from this command. The report goes to this command's Hydra output dir; the
feature cache goes to the training run's `features/`, so evaluating the same
checkpoint again skips extraction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from simclr.config.schema import RunConfig, node_of, root_path, typed_config
from simclr.config.validate import validate_data, validate_eval
from simclr.errors import ConfigError
from simclr.runs.output import check_apart
from simclr.runs.rundir import RunDir

# What `simclr-eval` takes from its command line; everything else comes from the checkpoint.
COMMAND_KEYS = ("eval", "seed", "checkpoint", "hydra")
# Groups and keys laid over the checkpoint's own (what is evaluated, and how it is shown).
LAYERED = ("data", "augment")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~").replace("/", ".")


def effective_config(
    cli_cfg: RunConfig, trained: dict[str, Any], overrides: Sequence[str]
) -> RunConfig:
    """The checkpoint's config with this command's `eval` and `seed`, and its `data.*` and
    `augment.*` overrides laid on top (nothing else of the command line's defaults).

    `data=NAME` switches the data set but keeps the checkpoint's image size, batch
    size and the rest; `data.KEY=VALUE` and `augment.KEY=VALUE` change one key. Any
    other key would have no effect here (the encoder, head and training come from the
    checkpoint) and is refused.
    """
    cfg = typed_config(trained)
    for name in COMMAND_KEYS:
        if name in node_of(cli_cfg):
            setattr(cfg, name, getattr(cli_cfg, name))
    for override in overrides:
        top = _key(override).split(".", 1)[0]
        if top not in (*COMMAND_KEYS, *LAYERED):
            raise ConfigError(
                f"{override}: has no effect in simclr-eval (the encoder, head and training come "
                "from the checkpoint); only eval.*, seed, data.* and augment.* apply"
            )
    lay_overrides(cfg, cli_cfg, overrides)
    return cfg


def lay_overrides(cfg: RunConfig, cli_cfg: RunConfig, overrides: Sequence[str]) -> None:
    """Lay the command line's `data`/`augment` overrides (only those) over `cfg`, in place.

    `data=NAME` switches the data set (its name and root) and keeps `cfg`'s image size,
    batch size and the rest; `data.KEY=VALUE` / `augment.KEY=VALUE` change one key.
    """
    for override in overrides:
        key = _key(override)
        if key.split(".", 1)[0] not in LAYERED:
            continue
        if key == "data":  # a data set preset: its name and root, the checkpoint's sizes
            cfg.data.name = cli_cfg.data.name
            cfg.data.root = OmegaConf.select(node_of(cli_cfg), "data.root", throw_on_missing=False)
        elif key == "augment":
            cfg.augment = cli_cfg.augment
        else:
            OmegaConf.update(
                node_of(cfg), key, OmegaConf.select(node_of(cli_cfg), key), merge=False
            )


def _pretrain_seconds(run: RunDir | None) -> float | None:
    """The training run's pretraining wall time, when its directory records it."""
    if run is None:
        return None
    if not run.report_json.is_file():
        return run.pretrain_seconds()
    try:
        value = json.loads(run.report_json.read_text())["timing"]["pretrain_seconds"]
        return None if value is None else float(value)
    except (OSError, KeyError, TypeError, ValueError):
        return None


def earlier_data(run: RunDir | None) -> tuple[dict[str, Any], Path] | None:
    """What the training run's own report saw of its evaluation data, if it has one."""
    report = run.report_json if run else None
    if report is None or not report.is_file():
        return None
    try:
        data = json.loads(report.read_text())["data"]
        return (data, report) if isinstance(data, dict) else None
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _writable_and_idle(run: RunDir) -> bool:
    """Whether the feature cache may go into `run`: writable, and no process training into it."""
    from simclr.runs.lock import read_holder

    holder = read_holder(run)
    return os.access(run.path, os.W_OK) and (holder is None or not holder.alive())


def check_request(cfg: RunConfig) -> Path:
    """The weights file `cfg.checkpoint` names, after checking it and `cfg.eval` (one line)."""
    from simclr.hub.loading import resolve

    if not cfg.checkpoint:
        raise ConfigError(
            "checkpoint is not set: pass checkpoint=PATH (a simclr-pretrain run directory, "
            "a .ckpt or a .safetensors file)"
        )
    validate_eval(cfg.eval)
    return resolve(str(cfg.checkpoint))


def evaluate_checkpoint(
    cfg: RunConfig, overrides: Sequence[str], out_dir: Path, command: str | None = None
) -> Path:
    """Load `cfg.checkpoint`, evaluate it as `cfg.eval` says, write the report into out_dir.

    `overrides` are the command line's (they decide whether its `data` replaces the
    checkpoint's); `command` is recorded in the report. Returns the report.md path.
    """
    from simclr.evaluation.collect import eval_data_config
    from simclr.evaluation.pipeline import evaluate_encoder
    from simclr.hub.classifier import load_encoder_with_head

    check_request(cfg)
    encoder = load_encoder_with_head(str(cfg.checkpoint))  # the head: eval.finetune.from_head_layer
    meta: dict[str, Any] = getattr(encoder, "meta", {})
    source = Path(meta["source"])
    run_cfg = effective_config(cfg, meta["config"], overrides)
    data_cfg = eval_data_config(run_cfg)
    key = "eval.data" if cfg.eval.data else "data"
    validate_data(data_cfg, key=key)
    check_apart("the output directory", out_dir, {f"{key}.root": root_path(data_cfg)})
    run = RunDir.of_checkpoint(source)
    cache = run.features if run and _writable_and_idle(run) else None  # else out_dir's own
    report = evaluate_encoder(
        encoder,
        run_cfg,
        out_dir,
        checkpoint_path=source,
        pretrain_seconds=_pretrain_seconds(run),
        command=command or " ".join(["simclr-eval", *overrides]),
        cache_dir=cache,
        earlier_data=earlier_data(run),
    )
    OmegaConf.save(run_cfg, RunDir(out_dir).eval_config, resolve=True)
    return report
