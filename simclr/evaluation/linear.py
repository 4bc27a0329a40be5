"""Linear probe: multinomial logistic regression (scikit-learn) on standardised features.

The inverse regularisation strength C is chosen by stratified k-fold
cross-validation inside the labeled subset (standardisation is refitted in each
fold, so a fold's validation part is never seen by its scaler). With one example
in some class no fold split exists: C falls back to `default_C`, and the note
says so in the report.

Two economies keep the search cheap without changing what it chooses from:

* each fold walks the grid of C upwards from the strongest regularisation, every
  fit starting from the previous solution (a warm-started regularisation path);
  the final fit on the whole subset starts cold: on 10k x 512 features a cold fit
  at the chosen C took fewer seconds than walking the path up to it;
* when the subset is large, one fold of the k is enough: once a validation part
  holds `LARGE_VALIDATION` examples or more (3,000+ labels with 3 folds), its
  accuracy is already known to about 1.5 points, and k of them cost k times as much.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from simclr.config.schema import LinearProbeConfig
from simclr.evaluation.probe import FittedProbe, Hyper, min_class_count

# Validation examples in one fold from which that fold alone chooses C.
LARGE_VALIDATION = 1000


def _fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> Pipeline:
    # An unconverged lbfgs at a weak regularisation is still a usable probe; the
    # warning would repeat for every fold and seed, so it is counted elsewhere.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter)).fit(x, y)


def folds_used(n: int, folds: int) -> int:
    """How many of `folds` stratified folds of `n` examples the search fits: all of
    them, or one when its validation part alone holds `LARGE_VALIDATION` examples."""
    return 1 if folds >= 2 and n // folds >= LARGE_VALIDATION else folds


def cross_validated_c(
    x: np.ndarray, y: np.ndarray, cs: list[float], folds: int, seed: int, max_iter: int
) -> tuple[float, dict[float, float]]:
    """The C with the best mean validation accuracy over stratified folds of `(x, y)`.

    The split is `folds`-fold; only the first `folds_used(len(x), folds)` folds are
    fitted. Ties go to the smaller C (stronger regularisation). Returns
    `(C, {C: accuracy})`.
    """
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    used = folds_used(len(x), folds)
    scores = {float(c): 0.0 for c in sorted(cs)}
    for k, (fit_idx, val_idx) in enumerate(splitter.split(x, y)):
        if k == used:
            break
        scaler = StandardScaler().fit(x[fit_idx])
        x_fit, x_val = scaler.transform(x[fit_idx]), scaler.transform(x[val_idx])
        model = LogisticRegression(max_iter=max_iter, warm_start=True)
        for c in scores:  # the warm-started path, scored at every C on the way
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.set_params(C=c).fit(x_fit, y[fit_idx])
            scores[c] += float(model.score(x_val, y[val_idx])) / used
    best = max(sorted(scores), key=lambda c: (scores[c], -c))
    return best, scores


def fit_linear(x: np.ndarray, y: np.ndarray, cfg: LinearProbeConfig, seed: int) -> FittedProbe:
    """Fit the linear probe described by `cfg` (an `eval.linear` node) on `(x, y)`."""
    folds = min(cfg.cv_folds, min_class_count(y))
    notes: list[str] = []
    cs = sorted(float(c) for c in cfg.Cs)
    if len(cs) == 1:
        c, used = cs[0], 0
    elif folds >= 2:
        c, _ = cross_validated_c(x, y, cs, folds, seed, cfg.max_iter)
        used = folds_used(len(x), folds)
    else:
        c, used = cfg.default_C, 0
        notes.append(f"C fixed at {c:g}: a class has 1 labeled example, no CV split exists")
    model = _fit(x, y, c, cfg.max_iter)
    chosen: dict[str, Hyper] = {"C": c, "cv_folds": folds if folds >= 2 else 0}
    if used and used < folds:
        chosen["folds_fitted"] = used
    return FittedProbe(predict=model.predict, chosen=chosen, notes=notes)
