"""How the report words its numbers: chance levels, and the sentences beside the tables.

Chance levels of a labeled evaluation: what guessing scores, for report.md and the figures.

Two reference points a reader needs beside an accuracy:

- uniform chance, 1 / (number of classes): the expected accuracy of a random guess;
- the majority-class rate: the test accuracy of always answering the train split's
  most frequent class (a classifier that learnt only the class balance). On
  balanced data it equals uniform chance and is not shown separately.

The words of the report and its figures, defined once: numbers, seeds, captions.

report.md, the figures and the sweep table all format a mean, a spread, a
duration and a seed count through these functions, so a single-seed cell reads
the same everywhere (the number alone) and a caption in report.md says exactly
what the figure's own caption says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simclr.evaluation.report_schema import DataInfo, Report, ResultRow

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


def seeds_text(n: int) -> str:
    """`1 seed`, `10 seeds`."""
    return f"{n} seed" if n == 1 else f"{n} seeds"


def percent(mean: float | None, std: float | None = None, n_seeds: int = 0) -> str:
    """`85.9 ± 1.0` for a mean over two seeds or more, `85.9` for one (a spread of
    one value is no spread), `n/a` for none."""
    if mean is None:
        return "n/a"
    if std is None or n_seeds < 2:
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def duration(seconds: float | None) -> str:
    """`7m 45s`, `18s`, or `n/a`."""
    if seconds is None:
        return "n/a"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def seeds_by_fraction(results: Sequence[ResultRow]) -> dict[float, int]:
    seen: dict[float, int] = {}
    for r in results:
        seen[r.fraction] = max(seen.get(r.fraction, 0), r.n_seeds)
    return dict(sorted(seen.items()))


def error_bar_caption(results: Sequence[ResultRow]) -> str:
    """What the error bars of `label_efficiency.png` are, e.g. `bars: ± 1 sample std
    over 10 seeds at 1%, 10%; 3 seeds at 100%`: the same words in the figure and in
    report.md."""
    groups: dict[int, list[str]] = defaultdict(list)
    for fraction, n in seeds_by_fraction(results).items():
        groups[n if n >= 2 else 1].append(f"{100 * fraction:g}%")
    multi = sorted((n for n in groups if n >= 2), reverse=True)
    if not multi:
        return "one seed per point: no error bars"
    if len(multi) == 1 and 1 not in groups:
        return f"bars: ± 1 sample std over {seeds_text(multi[0])}"
    text = "bars: ± 1 sample std over " + "; ".join(
        f"{seeds_text(n)} at {', '.join(groups[n])}" for n in multi
    )
    if 1 in groups:
        text += f"; no bar at {', '.join(groups[1])} (one seed)"
    return text


def data_title(data: DataInfo) -> str:
    """The data and its counts, for figure titles: `digits: 540 test images, 10 classes
    (labels drawn from 1257 train images)`."""
    return (
        f"{data.name}: {data.n_test} test images, {len(data.classes)} classes "
        f"(labels drawn from {data.n_train} train images)"
    )


def embedding_method(report: Report) -> str:
    """`pca` or `tsne`: how embedding.png maps the features to 2-D."""
    return str(report.config.get("eval", {}).get("embedding_method", "pca"))


def figure_captions(report: Report) -> dict[str, str]:
    """What each figure shows, keyed by figure ('label_efficiency', 'embedding')."""
    levels = chance_levels(report.data)
    chance = (
        f"grey dashed line: chance ({percent(levels.uniform)} %, 1 of {levels.n_classes} classes)"
    )
    if levels.majority_differs:
        chance += f", dotted: majority class ({percent(levels.majority)} %)"
    method = "t-SNE (axes have no units)" if embedding_method(report) == "tsne" else "PCA"
    return {
        "label_efficiency": (
            "test accuracy against the share of train labels, one panel per evaluator on a "
            f"shared y-axis; {error_bar_caption(report.results)}; {chance}"
        ),
        "embedding": (
            f"the {report.data.n_test} test-split features of each representation mapped to 2-D "
            f"by {method} of the standardised features, coloured by class"
        ),
    }
