"""Weighted cosine kNN against a brute-force loop written independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from simclr.config.schema import KnnConfig
from simclr.evaluation.knn import fit_knn, knn_predict


def brute_force(train_x, train_y, query_x, k, temperature, num_classes):
    """For each query: cosine to every train row by hand, k best, vote exp(cos/T)."""
    out = []
    for q in query_x:
        sims = []
        for x, y in zip(train_x, train_y, strict=True):
            dot = sum(float(a) * float(b) for a, b in zip(q, x, strict=True))
            norm = math.sqrt(sum(float(a) ** 2 for a in q)) * math.sqrt(
                sum(float(b) ** 2 for b in x)
            )
            sims.append((dot / norm, int(y)))
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * num_classes
        for sim, y in sims[:k]:
            votes[y] += math.exp(sim / temperature)
        out.append(max(range(num_classes), key=lambda c: (votes[c], -c)))
    return np.array(out)


@pytest.mark.parametrize("k,temperature", [(1, 0.07), (5, 0.07), (7, 0.5), (200, 0.1)])
def test_matches_brute_force(k, temperature):
    rng = np.random.default_rng(k)
    train_x = rng.normal(size=(60, 6)).astype(np.float32)
    train_y = rng.integers(0, 4, 60)
    query_x = rng.normal(size=(25, 6)).astype(np.float32)
    got = knn_predict(train_x, train_y, query_x, k, temperature, 4, chunk=7)
    want = brute_force(train_x, train_y, query_x, min(k, 60), temperature, 4)
    np.testing.assert_array_equal(got, want)


def test_fit_knn_caps_k_at_the_subset_size_and_says_so():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), np.array([0, 1, 2, 0, 1])
    cfg = OmegaConf.structured(KnnConfig(k=20, temperature=0.07))
    probe = fit_knn(x, y, cfg, seed=0)
    assert probe.chosen["k"] == 5 and probe.notes
    np.testing.assert_array_equal(probe.predict(x), brute_force(x, y, x, 5, 0.07, 3))


def test_scale_does_not_matter():
    rng = np.random.default_rng(1)
    x, y, q = rng.normal(size=(30, 4)), rng.integers(0, 3, 30), rng.normal(size=(10, 4))
    a = knn_predict(x, y, q, 5, 0.1, 3)
    b = knn_predict(x * 100.0, y, q * 0.01, 5, 0.1, 3)
    np.testing.assert_array_equal(a, b)
