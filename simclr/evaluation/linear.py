"""Linear probe: multinomial logistic regression (scikit-learn) on standardised features.

The inverse regularisation strength C is chosen by stratified k-fold
cross-validation inside the labeled subset (standardisation is refitted in each
fold, so a fold's validation part is never seen by its scaler). With one example
in some class no fold split exists: C falls back to `default_C`, and the note
says so in the report.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from simclr.evaluation.probe import FittedProbe, min_class_count


def _fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> Pipeline:
    # An unconverged lbfgs at a weak regularisation is still a usable probe; the
    # warning would repeat for every fold and seed, so it is counted elsewhere.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter)).fit(x, y)


def cross_validated_c(
    x: np.ndarray, y: np.ndarray, cs: list[float], folds: int, seed: int, max_iter: int
) -> tuple[float, dict[float, float]]:
    """The C with the best mean validation accuracy over stratified folds of `(x, y)`.

    Ties go to the smaller C (stronger regularisation). Returns `(C, {C: accuracy})`.
    """
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = {float(c): 0.0 for c in sorted(cs)}
    for fit_idx, val_idx in splitter.split(x, y):
        scaler = StandardScaler().fit(x[fit_idx])
        x_fit, x_val = scaler.transform(x[fit_idx]), scaler.transform(x[val_idx])
        # Walking C upwards from the strongest regularisation, each fit starts from
        # the previous solution: the same optimum, a fraction of the iterations.
        model = LogisticRegression(max_iter=max_iter, warm_start=True)
        for c in scores:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.set_params(C=c).fit(x_fit, y[fit_idx])
            scores[c] += float(model.score(x_val, y[val_idx])) / folds
    best = max(sorted(scores), key=lambda c: (scores[c], -c))
    return best, scores


def fit_linear(x: np.ndarray, y: np.ndarray, cfg: Any, seed: int) -> FittedProbe:
    """Fit the linear probe described by `cfg` (an `eval.linear` node) on `(x, y)`."""
    folds = min(int(cfg.cv_folds), min_class_count(y))
    notes: list[str] = []
    if len(cfg.Cs) == 1:
        c = float(cfg.Cs[0])
    elif folds >= 2:
        c, _ = cross_validated_c(x, y, list(cfg.Cs), folds, seed, int(cfg.max_iter))
    else:
        c = float(cfg.default_C)
        notes.append(f"C fixed at {c:g}: a class has 1 labeled example, no CV split exists")
    model = _fit(x, y, c, int(cfg.max_iter))
    return FittedProbe(
        predict=model.predict, chosen={"C": c, "cv_folds": folds if folds >= 2 else 0}, notes=notes
    )
