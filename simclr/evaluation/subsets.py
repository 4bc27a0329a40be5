"""Nested, stratified label subsets of the labeled train split.

For one seed every class's examples are shuffled once; the subset at fraction f
takes the first ``max(1, round(f * n_c))`` of each class c. Because the count per
class only grows with f, the 1% subset lies inside the 10% subset, which lies
inside the 100% subset: a larger label budget adds labels, it never swaps them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simclr.config.validate import check_fractions


def per_class_count(n_class: int, fraction: float) -> int:
    """Examples of a class with `n_class` examples kept at `fraction` (at least one)."""
    return min(n_class, max(1, round(fraction * n_class)))


def nested_subsets(
    labels: np.ndarray, fractions: Sequence[float], seed: int
) -> dict[float, np.ndarray]:
    """Indices into `labels` of the subset at each fraction, sorted, for one seed.

    Stratified (each class keeps about `fraction` of its examples, at least one),
    nested across fractions, and a pure function of `(labels, fractions, seed)`.
    """
    labels = np.asarray(labels)
    check_fractions(fractions)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    orders = []
    for c in np.unique(labels):  # sorted, so the draw order does not depend on data order
        members = np.flatnonzero(labels == c)
        orders.append(members[rng.permutation(len(members))])
    return {
        float(f): np.sort(np.concatenate([o[: per_class_count(len(o), f)] for o in orders]))
        for f in fractions
    }


def seeds_for(fraction: float, seeds: int, seeds_full: int) -> int:
    """How many seeds a fraction gets: `seeds_full` for 100% (one subset), else `seeds`."""
    return seeds_full if fraction >= 1.0 else seeds
