"""Linear and MLP probes: separable data near 100%, shuffled labels at chance,
hyperparameters chosen by cross-validation like an independent GridSearchCV."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from simclr.config.schema import LinearProbeConfig, MlpProbeConfig
from simclr.evaluation.linear import cross_validated_c, fit_linear
from simclr.evaluation.mlp import fit_mlp, holdout_split
from simclr.evaluation.probe import single_threaded

LINEAR = OmegaConf.structured(LinearProbeConfig)
MLP = OmegaConf.structured(MlpProbeConfig(hidden_dim=64, epochs=60))


def separable(n: int, noise_seed: int = 0, dim: int = 16, classes: int = 5):
    """Gaussian blobs far apart (fixed centres): separable with a wide margin."""
    centres = np.random.default_rng(0).normal(size=(classes, dim)) * 8.0
    y = np.arange(n) % classes
    noise = np.random.default_rng(100 + noise_seed).normal(size=(n, dim))
    return (centres[y] + noise).astype(np.float32), y


def shuffled(n: int, seed: int):
    """Features with no relation to the labels."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 20)).astype(np.float32), rng.integers(0, 10, n)


@pytest.mark.parametrize("fit,cfg", [(fit_linear, LINEAR), (fit_mlp, MLP)], ids=["linear", "mlp"])
def test_separable_features_reach_about_100_percent(fit, cfg):
    x, y = separable(50)
    xt, yt = separable(300, noise_seed=1)
    with single_threaded():
        probe = fit(x, y, cfg, 0)
    assert probe.accuracy(xt, yt) >= 0.99


@pytest.mark.parametrize("fit,cfg", [(fit_linear, LINEAR), (fit_mlp, MLP)], ids=["linear", "mlp"])
def test_shuffled_labels_give_chance(fit, cfg):
    x, y = shuffled(400, seed=0)
    xt, yt = shuffled(3000, seed=1)
    with single_threaded():
        acc = fit(x, y, cfg, 0).accuracy(xt, yt)
    assert abs(acc - 0.1) < 0.04, acc


def test_cv_choice_agrees_with_grid_search():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 30)).astype(np.float32)
    y = (x[:, :3] @ np.array([1.0, -1.0, 0.5]) + 1.5 * rng.normal(size=150) > 0).astype(int)
    cs = [0.001, 0.01, 0.1, 1.0, 10.0]
    best, scores = cross_validated_c(x, y, cs, folds=3, seed=5, max_iter=2000)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        {"logisticregression__C": cs},
        cv=StratifiedKFold(3, shuffle=True, random_state=5),
    ).fit(x, y)
    reference = grid.cv_results_["mean_test_score"]
    np.testing.assert_allclose([scores[c] for c in cs], reference, atol=0.02)
    assert scores[best] >= max(reference) - 0.02


def test_one_example_per_class_falls_back_to_default_c_and_says_so():
    x, y = separable(5)
    probe = fit_linear(x, y, LINEAR, seed=0)
    assert probe.chosen == {"C": LINEAR.default_C, "cv_folds": 0}
    assert probe.notes and "1 labeled example" in probe.notes[0]


def test_cv_folds_shrink_to_the_rarest_class():
    x, y = separable(10)  # 2 per class
    assert fit_linear(x, y, LINEAR, seed=0).chosen["cv_folds"] == 2


def test_holdout_is_stratified_and_keeps_one_fit_example_per_class():
    y = np.array([0] * 10 + [1] * 5 + [2] * 1)
    fit, held = holdout_split(y, 0.2, seed=0)
    assert set(fit) | set(held) == set(range(16)) and not set(fit) & set(held)
    assert sorted(np.bincount(y[held], minlength=3).tolist()) == [0, 1, 2]
    assert (np.bincount(y[fit], minlength=3) >= 1).all()


def test_mlp_is_deterministic_given_the_seed_and_stops_early():
    x, y = separable(200)
    with single_threaded():
        a, b = fit_mlp(x, y, MLP, 4), fit_mlp(x, y, MLP, 4)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert a.chosen == b.chosen and 1 <= int(a.chosen["epochs"]) <= MLP.epochs


def test_mlp_without_a_holdout_trains_all_epochs_and_says_so():
    x, y = separable(5)
    probe = fit_mlp(x, y, MLP, 0)
    assert probe.chosen["epochs"] == MLP.epochs and probe.notes
