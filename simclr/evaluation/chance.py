"""Chance levels of a labeled evaluation: what guessing scores, for report.md and the figures.

Two reference points a reader needs beside an accuracy:

- uniform chance, 1 / (number of classes): the expected accuracy of a random guess;
- the majority-class rate: the test accuracy of always answering the train split's
  most frequent class (a classifier that learnt only the class balance). On
  balanced data it equals uniform chance and is not shown separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simclr.evaluation.report_schema import DataInfo

# Below this the majority-class rate is "the same" as uniform chance (it rounds alike
# to the 0.1 % the report shows).
_SAME = 5e-4


@dataclass(frozen=True)
class ChanceLevels:
    """Uniform chance and, when the class balance is known, the majority-class rate."""

    n_classes: int
    uniform: float
    majority: float | None = None  # None when the counts are unknown
    majority_class: str | None = None

    @property
    def majority_differs(self) -> bool:
        """True when the majority-class rate is worth showing beside uniform chance."""
        return self.majority is not None and abs(self.majority - self.uniform) >= _SAME


def class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    """Examples per class (labels 0..n_classes-1), in label order."""
    return [int(c) for c in np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)]


def chance_levels(data: DataInfo) -> ChanceLevels:
    """The chance levels of the evaluation data `data` describes."""
    k = max(len(data.classes), 1)
    train, test = data.train_counts, data.test_counts
    if not train or not test or len(train) != len(test) or sum(test) == 0:
        return ChanceLevels(k, 1.0 / k)
    top = int(np.argmax(train))  # ties: the first class, as a classifier's argmax would
    name = data.classes[top] if top < len(data.classes) else str(top)
    return ChanceLevels(k, 1.0 / k, test[top] / sum(test), name)
