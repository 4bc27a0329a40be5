"""Range checks of single config values: one table, `RANGES`, a (key, check) row per
schema field that has a range, and the small predicates the rows are built from.
`simclr.config.validate` applies them to a composed config with the rules that relate
several keys."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from simclr.config.checks import (
    FRACTION,
    MAX_JITTER_STRENGTH,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SEED,
    Check,
    _at_least_one_or_unbounded,
    _chunk_size,
    _devices,
    _duration,
    _limit_batches,
    _name,
    _show,
    _wandb_project,
    anything,
    finite,
    integer,
    interval,
    items,
    number,
    optional,
)
from simclr.errors import ConfigError

RANGES: list[tuple[str, Check]] = [
    ("data.image_size", integer(1, expected="> 0")),
    ("data.batch_size", integer(2, why="NT-Xent needs negatives")),
    ("data.num_workers", integer(0)),
    ("data.split_seed", SEED),
    ("data.test_fraction", number(0.0, 1.0, low_open=True, high_open=True)),
    ("data.max_image_pixels", optional(integer(1))),
    ("augment.crop_scale", interval(0.0, 1.0)),
    ("augment.crop_ratio", interval(0.0, math.inf)),
    ("augment.hflip_p", PROBABILITY),
    ("augment.jitter_strength", number(0.0, MAX_JITTER_STRENGTH, why="hue jitter 0.2 x it <= 0.5")),
    ("augment.jitter_p", PROBABILITY),
    ("augment.grayscale_p", PROBABILITY),
    ("augment.blur_p", PROBABILITY),
    ("augment.blur_kernel_fraction", FRACTION),
    ("augment.blur_sigma", interval(0.0, math.inf)),
    ("augment.mean", items(finite, length=3, what="channel value")),
    ("augment.std", items(POSITIVE, length=3, what="channel value")),
    ("augment.eval_resize_fraction", FRACTION),
    ("head.hidden_dim", optional(integer(1, expected="> 0"))),
    ("head.output_dim", integer(1, expected="> 0")),
    ("loss.temperature", POSITIVE),
    ("loss.chunk_size", _chunk_size),
    ("optim.lr", POSITIVE),
    ("optim.weight_decay", NON_NEGATIVE),
    ("optim.momentum", number(0.0, 1.0, high_open=True)),
    ("optim.trust_coefficient", POSITIVE),
    ("optim.betas", items(number(0.0, 1.0, high_open=True), length=2, what="beta")),
    ("optim.warmup_epochs", NON_NEGATIVE),
    ("optim.final_lr_fraction", PROBABILITY),
    ("trainer.max_epochs", _at_least_one_or_unbounded),
    ("trainer.max_steps", _at_least_one_or_unbounded),
    ("trainer.devices", _devices),
    ("trainer.num_nodes", integer(1)),
    ("trainer.accumulate_grad_batches", integer(1)),
    ("trainer.gradient_clip_val", optional(number(0.0, why="0: no clipping"))),
    ("trainer.log_every_n_steps", integer(1)),
    ("trainer.limit_train_batches", _limit_batches),
    ("trainer.max_time", _duration),
    ("trainer.mlflow_experiment", _name),
    ("trainer.wandb_project", _wandb_project),
    (
        "trainer.checkpoint_every_n_epochs",
        integer(1, why="the last checkpoint is what evaluation and resume=auto read"),
    ),
    (
        "eval.evaluators",
        items(anything, distinct=True, what="evaluator", empty="name one, or pass eval=none"),
    ),
    ("eval.fractions", items(FRACTION, distinct=True, what="fraction")),
    ("eval.seeds", integer(1)),
    ("eval.seeds_full", integer(1)),
    ("eval.baselines", items(anything, distinct=True, what="baseline", empty=None)),
    ("eval.batch_size", integer(1)),
    ("eval.headline_fraction", optional(FRACTION)),
    ("eval.linear.Cs", items(POSITIVE, what="C")),
    ("eval.linear.cv_folds", integer(2, why="cross-validation needs two folds")),
    ("eval.linear.max_iter", integer(1)),
    ("eval.linear.default_C", POSITIVE),
    ("eval.mlp.hidden_dim", integer(1)),
    ("eval.mlp.epochs", integer(1)),
    ("eval.mlp.lr", POSITIVE),
    ("eval.mlp.weight_decay", NON_NEGATIVE),
    ("eval.mlp.patience", integer(1)),
    ("eval.mlp.holdout_fraction", number(0.0, 1.0, high_open=True, why="0: no early stopping")),
    ("eval.knn.k", integer(1)),
    ("eval.knn.temperature", POSITIVE),
    ("eval.finetune.frozen_epochs", integer(0)),
    ("eval.finetune.unfrozen_epochs", integer(0)),
    ("eval.finetune.lr", POSITIVE),
    ("eval.finetune.lr_decay_per_stage", FRACTION),
    ("eval.finetune.batch_size", integer(2, why="BatchNorm trains on two images or more")),
    ("eval.finetune.weight_decay", NON_NEGATIVE),
    ("eval.finetune.fractions", items(FRACTION, distinct=True, what="fraction")),
    ("eval.finetune.from_head_layer", optional(integer(0))),
    ("eval.finetune.fraction", FRACTION),
    ("eval.raw_pixels_size", integer(1)),
    ("eval.random_init_seed", SEED),
    ("online_probe.lr", POSITIVE),
    ("monitor.max_samples", integer(2, why="RankMe needs two rows")),
    ("monitor.collapse_rank_fraction", PROBABILITY),
    ("monitor.collapse_std_fraction", PROBABILITY),
    ("distill.temperature", POSITIVE),
    ("distill.labeled_weight", NON_NEGATIVE),
    ("seed", SEED),
]
_CHECKS = dict(RANGES)
_MISSING = object()


def _select(node: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(node, (DictConfig, dict)):
            if part not in node:
                return _MISSING
            node = node[part]
        else:
            node = getattr(node, part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def check_value(key: str, value: Any, shown_key: str | None = None) -> None:
    """ConfigError if `value` is out of the range :data:`RANGES` gives `key`."""
    problem = _CHECKS[key](value)
    if problem is not None:
        raise ConfigError(f"{shown_key or key}={_show(value)} {problem}")


def check_section(node: Any, section: str, shown: str | None = None) -> None:
    """Check every key of :data:`RANGES` under `section` (e.g. `optim`) in `node`.

    `shown` is the section's name in messages (`eval.data` for a `data` node there).
    A key the node lacks (a partial node built by a library caller) is not checked.
    """
    prefix = f"{section}."
    for key, _ in RANGES:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        value = _select(node, rest)
        if value is not _MISSING:
            check_value(key, value, f"{shown or section}.{rest}")
