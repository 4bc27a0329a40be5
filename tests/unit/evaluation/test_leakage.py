"""No test-set leakage: the test split never reaches a fit, so no choice depends on it."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from simclr.config.schema import EvalConfig, MlpProbeConfig
from simclr.evaluation import protocol
from simclr.evaluation.features import FeatureSet
from simclr.evaluation.probe import single_threaded
from simclr.evaluation.subsets import nested_subsets

EV = OmegaConf.structured(
    EvalConfig(
        fractions=[0.1, 0.5, 1.0],
        seeds=3,
        seeds_full=1,
        mlp=MlpProbeConfig(hidden_dim=32, epochs=40),
    )
)


def noisy_features(test_labels: str) -> FeatureSet:
    """A hard 4-class problem (the best C is not obvious); test labels true or permuted."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(30, 4))
    x = rng.normal(size=(500, 30)).astype(np.float32)
    y = np.argmax(x @ w + 2.0 * rng.normal(size=(500, 4)), axis=1)
    test_x, test_y = x[300:], y[300:]
    if test_labels == "permuted":
        test_y = np.random.default_rng(1).permutation(test_y)
    return FeatureSet(x[:300], y[:300], test_x, test_y)


def chosen(results):
    return [
        (r.representation, r.evaluator, r.fraction, r.seed, r.n_labels, r.chosen) for r in results
    ]


def test_hyperparameters_do_not_depend_on_the_test_labels():
    evaluators = ["linear", "mlp", "knn"]
    true = protocol.run_feature_probes({"simclr": noisy_features("true")}, EV, evaluators)
    permuted = protocol.run_feature_probes({"simclr": noisy_features("permuted")}, EV, evaluators)
    assert chosen(true) == chosen(permuted)
    assert {r.evaluator for r in true} == set(evaluators)


def test_the_check_above_would_catch_a_probe_that_picks_c_on_the_test_split():
    """On this data, choosing C by test accuracy gives other Cs once the test labels
    are permuted: had the linear probe done so, the test above would fail."""
    cs = list(EV.linear.Cs)

    def c_by_test_accuracy(fs: FeatureSet, idx: np.ndarray) -> float:
        scaler = StandardScaler().fit(fs.train_x[idx])
        accs = [
            LogisticRegression(C=c, max_iter=1000)
            .fit(scaler.transform(fs.train_x[idx]), fs.train_y[idx])
            .score(scaler.transform(fs.test_x), fs.test_y)
            for c in cs
        ]
        return cs[int(np.argmax(accs))]

    true, permuted = noisy_features("true"), noisy_features("permuted")
    picks = []
    with single_threaded():
        for seed in range(3):
            idx = nested_subsets(true.train_y, [0.5], seed)[0.5]
            picks.append((c_by_test_accuracy(true, idx), c_by_test_accuracy(permuted, idx)))
    assert any(a != b for a, b in picks), picks


def test_fits_only_ever_see_rows_of_the_labeled_train_split(monkeypatch):
    seen: list[np.ndarray] = []

    def spy(fit):
        def wrapped(x, y, cfg, seed):
            seen.append(np.asarray(x))
            return fit(x, y, cfg, seed)

        return wrapped

    spied = {name: spy(fit) for name, fit in protocol.FEATURE_EVALUATORS.items()}
    monkeypatch.setattr(protocol, "FEATURE_EVALUATORS", spied)
    fs = noisy_features("true")
    protocol.run_feature_probes({"simclr": fs}, EV, ["linear", "mlp", "knn"])
    train_rows = {row.tobytes() for row in fs.train_x}
    test_rows = {row.tobytes() for row in fs.test_x}
    rows = [row.tobytes() for x in seen for row in x]
    assert rows and all(r in train_rows and r not in test_rows for r in rows)
