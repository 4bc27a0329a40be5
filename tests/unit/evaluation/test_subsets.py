"""Label subsets: nested, stratified, deterministic, one per class at least, train only."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simclr.errors import ConfigError
from simclr.evaluation.subsets import nested_subsets, seeds_for

FRACTIONS = [0.01, 0.1, 0.5, 1.0]


def imbalanced_labels(seed: int = 0) -> np.ndarray:
    """Classes of 300, 120, 40, 7 and 2 examples, shuffled."""
    counts = [300, 120, 40, 7, 2]
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    return np.random.default_rng(seed).permutation(labels)


@pytest.mark.parametrize("seed", range(5))
def test_subsets_are_nested(seed):
    subsets = nested_subsets(imbalanced_labels(), FRACTIONS, seed)
    for small, large in itertools.pairwise(FRACTIONS):
        assert set(subsets[small]) <= set(subsets[large])
    assert len(subsets[1.0]) == len(imbalanced_labels())


@pytest.mark.parametrize("seed", range(5))
def test_every_class_has_at_least_one_and_about_its_share(seed):
    labels = imbalanced_labels()
    for f, idx in nested_subsets(labels, FRACTIONS, seed).items():
        picked = np.bincount(labels[idx], minlength=5)
        available = np.bincount(labels, minlength=5)
        assert (picked >= 1).all(), (f, picked)
        # Stratified: each class within one example of its share (or the minimum of 1).
        assert (np.abs(picked - np.maximum(1, f * available)) <= 1).all(), (f, picked)


def test_deterministic_given_the_seed_and_different_across_seeds():
    labels = imbalanced_labels()
    a = nested_subsets(labels, FRACTIONS, seed=3)
    b = nested_subsets(labels, FRACTIONS, seed=3)
    c = nested_subsets(labels, FRACTIONS, seed=4)
    for f in FRACTIONS:
        np.testing.assert_array_equal(a[f], b[f])
    assert not np.array_equal(a[0.1], c[0.1])


def test_subset_does_not_depend_on_which_other_fractions_are_asked():
    labels = imbalanced_labels()
    alone = nested_subsets(labels, [0.1], seed=7)[0.1]
    together = nested_subsets(labels, FRACTIONS, seed=7)[0.1]
    np.testing.assert_array_equal(alone, together)


def test_indices_stay_inside_the_train_split():
    labels = imbalanced_labels()
    for idx in nested_subsets(labels, FRACTIONS, seed=0).values():
        assert idx.min() >= 0 and idx.max() < len(labels)
        assert len(np.unique(idx)) == len(idx)


def test_digits_one_percent_is_one_example_per_class():
    from sklearn.datasets import load_digits

    labels = load_digits().target[:1257]
    idx = nested_subsets(labels, [0.01], seed=0)[0.01]
    assert sorted(labels[idx].tolist()) == list(range(10))


def test_bad_fraction_is_a_config_error():
    with pytest.raises(ConfigError, match="fractions"):
        nested_subsets(np.arange(10) % 2, [0.0], seed=0)


def test_seed_counts():
    assert seeds_for(0.01, 10, 3) == 10
    assert seeds_for(1.0, 10, 3) == 3
