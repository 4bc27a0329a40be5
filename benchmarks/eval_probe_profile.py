"""Where the evaluation's probe time goes: the default protocol on synthetic features.

    OMP_NUM_THREADS=1 python benchmarks/eval_probe_profile.py [--train 10000] [--test 2000]

Features are a 10-class Gaussian mixture in 512 dimensions (class means drawn once,
unit noise), so the probes have a problem of realistic difficulty to solve; the fit
cost depends on the sizes, not on what the features mean. Each (evaluator, fraction)
of the default `eval` config (linear, kNN, MLP at 1%, 10% and 100% of the labels,
its seeds) runs the protocol's own `run_feature_probes` for one representation; the
default report runs three (SimCLR, random init, raw pixels), so a whole evaluation's
probes cost about three times the total printed. Prints seconds and mean accuracy
per cell, and the total, as one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from omegaconf import OmegaConf

from simclr.config.schema import EvalConfig
from simclr.evaluation.features import FeatureSet
from simclr.evaluation.protocol import run_feature_probes


def synthetic(n_train: int, n_test: int, dim: int, classes: int, seed: int = 0) -> FeatureSet:
    """Gaussian mixture: class means N(0, separation^2 I), unit-variance noise."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=0.12, size=(classes, dim))
    y = rng.integers(0, classes, n_train + n_test)
    x = (means[y] + rng.normal(size=(len(y), dim))).astype(np.float32)
    return FeatureSet(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=10_000)
    p.add_argument("--test", type=int, default=2_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--evaluators", default="linear,knn,mlp")
    args = p.parse_args()
    features = {"simclr": synthetic(args.train, args.test, args.dim, args.classes)}
    base = OmegaConf.structured(EvalConfig)
    total = 0.0
    for evaluator in args.evaluators.split(","):
        for fraction in sorted(base.fractions):
            ev = base.copy()
            ev.fractions = [fraction]
            started = time.perf_counter()
            runs = run_feature_probes(features, ev, [evaluator])
            seconds = time.perf_counter() - started
            total += seconds
            accuracy = float(np.mean([r.accuracy for r in runs]))
            row = {"evaluator": evaluator, "fraction": fraction, "fits": len(runs)}
            print(json.dumps({**row, "seconds": round(seconds, 2), "accuracy": round(accuracy, 4)}))
    print(json.dumps({"total_seconds": round(total, 1)}))


if __name__ == "__main__":
    main()
