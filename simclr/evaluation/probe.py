"""What every evaluator returns, and the shared helpers for frozen-feature probes.

An evaluator is fitted on the labeled subset alone: its `fit` function never sees
the test split, so nothing it chooses (a regularisation strength, a number of
epochs) can depend on the test labels. The protocol scores the fitted probe on
the test split afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

Hyper = float | int | str


@dataclass
class FittedProbe:
    """A classifier fitted on the labeled subset.

    `chosen` holds the hyperparameters selected inside the subset (for the
    report and for the leakage test); `notes` says where a choice had to fall
    back to a default, e.g. when a class has one example and no CV is possible.
    """

    predict: Callable[[np.ndarray], np.ndarray]
    chosen: dict[str, Hyper] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of `x` whose predicted class equals `y`."""
        return float(np.mean(self.predict(x) == np.asarray(y)))


def min_class_count(y: np.ndarray) -> int:
    """Examples in the rarest class of `y`."""
    return int(np.bincount(np.unique(y, return_inverse=True)[1]).min())


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS, OpenMP and torch on one thread while probes fit.

    The probes' matrices are small: with several threads every product waits for
    the slowest thread, and on a shared machine that is 10-50x slower than one.
    """
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(torch_threads)
