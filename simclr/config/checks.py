"""Value checks of the run config: durations as users write them and every numeric range.

Wall-clock durations as users write them: `20m`, `1h30m`, `90s`, `2d`, `00:01:30:00`.

The predicates range checks are built from: each takes a value and says what is wrong
with it ("must be > 0"), or None when it is in range.

Range checks of single config values: one table, `RANGES`, a (key, check) row per
schema field that has a range, and the small predicates the rows are built from.
`simclr.config.validate` applies them to a composed config with the rules that relate
several keys.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig

from simclr.config.choices import (
    HeadVersion,
)
from simclr.errors import ConfigError

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_COMPACT = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?"
)
_COLONS = re.compile(r"(\d+):(\d{1,2}):(\d{1,2}):(\d{1,2})")  # Lightning's DD:HH:MM:SS


def parse_duration(text: object, key: str = "trainer.max_time") -> dt.timedelta:
    """The duration `text` names, > 0; ConfigError naming `key` otherwise.

    Accepts Lightning's `DD:HH:MM:SS` (`00:12:00:00`) and unit suffixes in the
    order d, h, m, s (`20m`, `1h30m`, `1.5h`, `2d12h`, `45s`).
    """
    value = str(text).strip().lower().replace(" ", "")
    seconds: float | None = None
    colons = _COLONS.fullmatch(value)
    if colons:
        days, hours, minutes, secs = (int(g) for g in colons.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    else:
        compact = _COMPACT.fullmatch(value)
        if compact and any(compact.groups()):
            seconds = sum(
                float(g) * _UNITS[u]
                for g, u in zip(compact.groups(), "dhms", strict=True)
                if g is not None
            )
    if seconds is None:
        raise ConfigError(
            f"{key}={text!r} is not a duration: write DD:HH:MM:SS (00:00:20:00) or "
            "units d/h/m/s (20m, 1h30m, 90s)"
        )
    if seconds <= 0:
        raise ConfigError(f"{key}={text!r} must be a duration > 0")
    return dt.timedelta(seconds=seconds)


# What is wrong with a value ("must be > 0"), or None when it is in range.
Check = Callable[[Any], "str | None"]

# NumPy's and scikit-learn's seeds (torch takes more): the run's seed reaches all three.
SEED_MAX = 2**32 - 1
# Linear layers of the projection head of each version (simclr/models/head.py).
HEAD_LAYERS = {HeadVersion.v1: 2, HeadVersion.v2: 3}
# torchvision's ColorJitter takes a hue jitter in [0, 0.5]; ours is 0.2 x strength.
MAX_JITTER_STRENGTH = 2.5
# W&B refuses these characters in a project name (wandb.sdk.lib.runid / the server).
WANDB_FORBIDDEN = "/\\#?%:"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int, high: int | None = None, why: str = "", expected: str = "") -> Check:
    """An integer in [low, high]."""
    text = expected or (f"in [{low}, {high}]" if high is not None else f">= {low}")
    text += f" ({why})" if why else ""

    def check(value: Any) -> str | None:
        ok = _is_int(value) and value >= low and (high is None or value <= high)
        return None if ok else f"must be {text}"

    return check


def number(
    low: float,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    why: str = "",
) -> Check:
    """A finite number in the interval from `low` to `high` (open or closed at each end)."""
    if high is None:
        text = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        text = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    text += f" ({why})" if why else ""

    def check(value: Any) -> str | None:
        if not _is_finite(value):
            return f"must be {text}"
        above = value > low if low_open else value >= low
        below = high is None or (value < high if high_open else value <= high)
        return None if above and below else f"must be {text}"

    return check


PROBABILITY = number(0.0, 1.0)
FRACTION = number(0.0, 1.0, low_open=True)  # a share of something that must not be empty
POSITIVE = number(0.0, low_open=True)
NON_NEGATIVE = number(0.0)
SEED = integer(0, SEED_MAX, why="NumPy's seed range")


def optional(check: Check) -> Check:
    """`check`, or null."""

    def optional_check(value: Any) -> str | None:
        problem = None if value is None else check(value)
        return None if problem is None else f"{problem} or null"

    return optional_check


def interval(low: float, high: float) -> Check:
    """A pair [min, max] of finite numbers with low < min <= max <= high."""
    bound = "" if math.isinf(high) else f" <= {high:g}"
    text = f"must be [min, max] with {low:g} < min <= max{bound}"

    def check(value: Any) -> str | None:
        if len(value) != 2 or not all(_is_finite(v) for v in value):
            return text
        lo, hi = value
        return None if low < lo <= hi <= high else text

    return check


def items(
    each: Check,
    *,
    length: int | None = None,
    distinct: bool = False,
    what: str = "value",
    empty: str | None = "",
) -> Check:
    """A list (of `length` items) each passing `each`, optionally all different.

    `empty`: what to say of an empty list (None: an empty list is fine).
    """

    def check(value: Any) -> str | None:
        if length is not None and len(value) != length:
            return f"must have {length} {what}s"
        if not value and empty is not None:
            return f"is empty: {empty or f'give at least one {what}'}"
        for item in value:
            problem = each(item)
            if problem is not None:
                return f"contains {_show(item)}: each {what} {problem}"
        if distinct:
            seen: list[Any] = []
            for item in value:
                if item in seen:  # a repeat would be evaluated (and counted) twice
                    return f"repeats {_show(item)}; give each {what} once"
                seen.append(item)
        return None

    return check


def finite(value: Any) -> str | None:
    """Any finite number."""
    return None if _is_finite(value) else "must be a finite number"


def anything(value: Any) -> str | None:
    """Any value (its type, e.g. an enum, is checked while composing)."""
    return None


def _chunk_size(value: Any) -> str | None:
    if value is None or value == 0 or (_is_int(value) and value >= 2):
        return None
    return "must be >= 2 (BatchNorm needs two images per pass; 0 or null: no chunks)"


def _at_least_one_or_unbounded(value: Any) -> str | None:
    return (
        None if _is_int(value) and (value >= 1 or value == -1) else "must be >= 1 or -1 (no limit)"
    )


def _limit_batches(value: Any) -> str | None:
    if value is None or (_is_int(value) and value >= 1):
        return None
    if isinstance(value, float) and 0.0 < value <= 1.0:
        return None
    return "must be null, a number of batches >= 1, or a share of the batches in (0, 1]"


def _devices(value: Any) -> str | None:
    """Lightning's `devices`: auto, -1 (all), a count, or a list of device indices."""
    expected = "must be auto, -1 (all), a count >= 1, or a list of distinct device indices >= 0"
    if isinstance(value, str):
        text = value.strip()
        if text == "auto":
            return None
        try:
            parts = [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            return expected
        value = parts[0] if len(parts) == 1 and "," not in text else parts
    if _is_int(value):
        return None if value >= 1 or value == -1 else expected
    if isinstance(value, (list, ListConfig)):
        ok = bool(value) and all(_is_int(v) and v >= 0 for v in value)
        return None if ok and len(set(value)) == len(value) else expected
    return expected


def _name(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty name"


def _wandb_project(value: Any) -> str | None:
    if _name(value) is not None or any(c in value for c in WANDB_FORBIDDEN):
        return f"must be a non-empty name without any of {' '.join(WANDB_FORBIDDEN)}"
    return None


def _duration(value: Any) -> str | None:
    if value is not None:
        parse_duration(value)  # its own message says which forms it takes
    return None


# (key, check): each range defined once. Keys under `data.` also check `eval.data.`.


def _show(value: Any) -> str:
    if isinstance(value, ListConfig):
        value = list(value)
    return repr(value) if isinstance(value, str) else str(value)


RANGES: list[tuple[str, Check]] = [
    ("data.image_size", integer(1, expected="> 0")),
    ("data.start_size", optional(integer(1, expected="> 0"))),
    ("data.full_size_share", number(0.0, 1.0, low_open=True)),
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
