"""The cheaper protocol keeps its guarantees: identical subsets are fitted once and
counted once, a large subset chooses C on one fold as an independent loop would, and
the torch probes give the CPU's answers on a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from simclr.config.schema import EvalConfig, LinearProbeConfig, MlpProbeConfig
from simclr.evaluation import protocol
from simclr.evaluation.features import FeatureSet
from simclr.evaluation.knn import knn_predict
from simclr.evaluation.linear import LARGE_VALIDATION, cross_validated_c, fit_linear, folds_used
from simclr.evaluation.mlp import fit_mlp
from simclr.evaluation.probe import single_threaded

gpu = pytest.mark.gpu


def blobs(n: int, classes: int = 4, dim: int = 8, seed: int = 0, spread: float = 1.5):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(classes, dim))
    y = np.arange(n) % classes
    return (centres[y] + spread * rng.normal(size=(n, dim))).astype(np.float32), y


def features(n_train: int = 200, n_test: int = 80, **kw) -> FeatureSet:
    x, y = blobs(n_train + n_test, **kw)
    return FeatureSet(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def eval_cfg(**overrides):
    base = EvalConfig(mlp=MlpProbeConfig(hidden_dim=16, epochs=10), **overrides)
    return OmegaConf.structured(base)


def test_every_seed_at_100_percent_is_one_fit_counted_once():
    ev = eval_cfg(fractions=[0.1, 1.0], seeds=3, seeds_full=3)
    notes: dict = {}
    runs = protocol.run_feature_probes({"simclr": features()}, ev, ["linear", "knn", "mlp"], notes)
    full = [r for r in runs if r.fraction == 1.0]
    assert sorted((r.evaluator, r.seed) for r in full) == [("knn", 0), ("linear", 0), ("mlp", 0)]
    partial = [r for r in runs if r.fraction == 0.1]
    assert len(partial) == 9  # 3 seeds x 3 evaluators: their labels differ
    rows = {(r.evaluator, r.fraction): r for r in protocol.summarise(runs, notes)}
    assert rows[("linear", 1.0)].n_seeds == 1 and rows[("linear", 0.1)].n_seeds == 3
    assert "all 3 seeds draw the same labels: fitted once" in rows[("mlp", 1.0)].notes
    assert not any("fitted once" in n for n in rows[("mlp", 0.1)].notes)


def test_one_example_per_class_is_the_same_subset_for_every_seed():
    fs = features(n_train=4, n_test=20)  # 4 classes, one example each
    ev = eval_cfg(fractions=[0.5], seeds=5)
    runs = protocol.run_feature_probes({"simclr": fs}, ev, ["knn"])
    assert [r.seed for r in runs] == [0]


def test_distinct_seeds_keeps_first_draws_and_counts_the_rest():
    a, b = np.array([0, 1]), np.array([0, 2])
    subsets = {0: {0.5: a}, 1: {0.5: a.copy()}, 2: {0.5: b}, 3: {0.5: b.copy()}}
    kept, note = protocol.distinct_seeds(subsets, 0.5, 4)
    assert kept == [0, 2] and note == "2 of 4 seeds drew an earlier seed's labels: not refitted"
    assert protocol.distinct_seeds(subsets, 0.5, 1) == ([0], None)


def test_large_subsets_fit_one_fold():
    assert folds_used(3 * LARGE_VALIDATION, 3) == 1
    assert folds_used(3 * LARGE_VALIDATION - 1, 3) == 3
    assert folds_used(10**6, 1) == 1 and folds_used(50, 2) == 2


def test_one_fold_search_matches_an_independent_loop():
    """C chosen on the first of three stratified folds, as a plain loop of cold fits
    (its own scaler per fold) chooses it."""
    x, y = blobs(3 * LARGE_VALIDATION, classes=10, dim=12, spread=3.0)
    cs = [0.001, 0.01, 0.1, 1.0]
    with single_threaded():
        best, scores = cross_validated_c(x, y, cs, folds=3, seed=7, max_iter=1000)
        fit_idx, val_idx = next(StratifiedKFold(3, shuffle=True, random_state=7).split(x, y))
        scaler = StandardScaler().fit(x[fit_idx])
        reference = {
            c: LogisticRegression(C=c, max_iter=1000)
            .fit(scaler.transform(x[fit_idx]), y[fit_idx])
            .score(scaler.transform(x[val_idx]), y[val_idx])
            for c in cs
        }
    for c in cs:
        assert scores[c] == pytest.approx(reference[c], abs=0.003), c
    assert best == max(sorted(reference), key=lambda c: (reference[c], -c))
    probe = fit_linear(x, y, OmegaConf.structured(LinearProbeConfig(Cs=cs)), seed=7)
    assert probe.chosen == {"C": best, "cv_folds": 3, "folds_fitted": 1}


def test_knn_on_an_explicit_device_is_the_default_answer():
    x, y = blobs(100)
    q, _ = blobs(30, seed=1)
    np.testing.assert_array_equal(
        knn_predict(x, y, q, 5, 0.1, 4), knn_predict(x, y, q, 5, 0.1, 4, device="cpu")
    )


@gpu
def test_torch_probes_on_the_gpu_agree_with_the_cpu(monkeypatch):
    from simclr.evaluation import mlp as mlp_module

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x, y = blobs(400, classes=4)
    q, qy = blobs(200, classes=4, seed=1)
    on_cpu = knn_predict(x, y, q, 10, 0.1, 4, device="cpu")
    on_gpu = knn_predict(x, y, q, 10, 0.1, 4, device="cuda")
    assert np.mean(on_cpu == on_gpu) > 0.98
    cfg = OmegaConf.structured(MlpProbeConfig(hidden_dim=32, epochs=40))
    gpu_probe = fit_mlp(x, y, cfg, 0)
    monkeypatch.setattr(mlp_module, "probe_device", lambda: torch.device("cpu"))
    cpu_probe = fit_mlp(x, y, cfg, 0)
    assert abs(gpu_probe.accuracy(q, qy) - cpu_probe.accuracy(q, qy)) < 0.03
    assert abs(int(gpu_probe.chosen["epochs"]) - int(cpu_probe.chosen["epochs"])) <= 3
