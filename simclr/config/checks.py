"""The predicates range checks are built from: each takes a value and says what is wrong
with it ("must be > 0"), or None when it is in range."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from omegaconf import ListConfig

from simclr.config.choices import (
    HeadVersion,
)
from simclr.duration import parse_duration

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
