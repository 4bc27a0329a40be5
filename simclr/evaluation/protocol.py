"""The evaluation protocol: representations x evaluators x label fractions x seeds.

For a given seed every representation and evaluator sees the same nested label
subsets (they depend on the train labels and the seed only), so differences
between rows of the report are differences between representations, not draws.
Evaluators are fitted on the subset alone and scored on the test split after.
A subset that an earlier seed drew already (every seed's, at 100%) is not fitted
again: `n_seeds` in the report counts distinct subsets (see `distinct_seeds`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from simclr.config.schema import AugmentConfig, RunConfig
from simclr.evaluation.collect import Collected
from simclr.evaluation.features import FeatureSet, random_init_encoder
from simclr.evaluation.knn import fit_knn
from simclr.evaluation.linear import fit_linear
from simclr.evaluation.mlp import fit_mlp
from simclr.evaluation.probe import FittedProbe, single_threaded
from simclr.evaluation.report_schema import ResultRow, SeedRun
from simclr.evaluation.subsets import nested_subsets, seeds_for

FitFn = Callable[[np.ndarray, np.ndarray, Any, int], FittedProbe]
FEATURE_EVALUATORS: dict[str, FitFn] = {"linear": fit_linear, "mlp": fit_mlp, "knn": fit_knn}


Cell = tuple[str, str, float]  # (representation, evaluator, fraction): one report row


@dataclass
class ProtocolResult:
    """What the protocol produced, as report rows."""

    runs: list[SeedRun]  # one per fit, in fitting order
    results: list[ResultRow]  # one per cell, in first-fitted order
    notes: list[str] = field(default_factory=list)  # about the evaluation as a whole


def fraction_plan(ev: Any) -> list[tuple[float, int]]:
    """`(fraction, number of seeds)` for every fraction of an `eval` node, ascending."""
    return [(float(f), seeds_for(float(f), ev.seeds, ev.seeds_full)) for f in sorted(ev.fractions)]


def subsets_by_seed(
    train_y: np.ndarray, plan: Sequence[tuple[float, int]]
) -> dict[int, dict[float, np.ndarray]]:
    """Label subsets for every seed any fraction needs (seeds 0..n-1)."""
    n_seeds = max(n for _, n in plan)
    fractions = [f for f, _ in plan]
    return {seed: nested_subsets(train_y, fractions, seed) for seed in range(n_seeds)}


def distinct_seeds(
    subsets: Mapping[int, Mapping[float, np.ndarray]], fraction: float, n_seeds: int
) -> tuple[list[int], str | None]:
    """The seeds among 0..n_seeds-1 whose subset at `fraction` no earlier seed drew,
    and a note when some were dropped.

    A subset every seed draws alike (all of them at 100%; at any fraction when each
    class has one example) would be fitted again on the very same labels: that
    repeats the evaluator's own randomness (CV folds, MLP initialisation), not the
    label draw the seeds stand for, so it is fitted once and counted once.
    """
    seen: set[bytes] = set()
    kept = []
    for seed in range(n_seeds):
        key = np.asarray(subsets[seed][fraction]).tobytes()
        if key not in seen:
            seen.add(key)
            kept.append(seed)
    if len(kept) == n_seeds:
        return kept, None
    if len(kept) == 1:
        return kept, f"all {n_seeds} seeds draw the same labels: fitted once"
    return (
        kept,
        f"{n_seeds - len(kept)} of {n_seeds} seeds drew an earlier seed's labels: not refitted",
    )


def _note_folded(
    notes: dict[Cell, set[str]] | None,
    seeds: Mapping[float, tuple[list[int], str | None]],
    pairs: Iterable[tuple[str, str]],
) -> None:
    """Add each fraction's `distinct_seeds` note to the cells of every (representation,
    evaluator) pair."""
    if notes is None:
        return
    for rep, evaluator in pairs:
        for f, (_, note) in seeds.items():
            if note:
                notes.setdefault((rep, evaluator, f), set()).add(note)


def run_feature_probes(
    features: Mapping[str, FeatureSet],
    ev: Any,
    evaluators: Sequence[str],
    notes: dict[Cell, set[str]] | None = None,
) -> list[SeedRun]:
    """Fit every feature evaluator on every representation's subsets; score on test.

    The fallbacks a fit took (its notes) are added to `notes[cell]` when given.
    """
    names = list(features)
    train_y = features[names[0]].train_y
    for name in names[1:]:  # the same images in the same order, or the subsets would differ
        if not np.array_equal(features[name].train_y, train_y):
            raise ValueError(f"representation {name!r} has other train labels than {names[0]!r}")
    plan = fraction_plan(ev)
    subsets = subsets_by_seed(train_y, plan)
    seeds = {f: distinct_seeds(subsets, f, n_seeds) for f, n_seeds in plan}
    jobs = [
        (rep, evaluator, f, seed)
        for f, _ in plan
        for seed in seeds[f][0]
        for evaluator in evaluators
        for rep in names
    ]
    _note_folded(notes, seeds, [(rep, e) for e in evaluators for rep in names])
    results = []
    for rep, evaluator, f, seed in tqdm(jobs, desc="probes", unit="fit", leave=False):
        fs, idx = features[rep], subsets[seed][f]
        with single_threaded():
            probe = FEATURE_EVALUATORS[evaluator](
                fs.train_x[idx], fs.train_y[idx], ev[evaluator], seed
            )
            acc = probe.accuracy(fs.test_x, fs.test_y)
        results.append(SeedRun(rep, evaluator, f, seed, len(idx), acc, probe.chosen))
        if notes is not None:
            notes.setdefault((rep, evaluator, f), set()).update(probe.notes)
    return results


def summarise(
    runs: Sequence[SeedRun], notes: Mapping[Cell, Iterable[str]] | None = None
) -> list[ResultRow]:
    """One row per (representation, evaluator, fraction), in first-seen order: mean and
    sample standard deviation of the accuracy over seeds, and the cell's `notes`."""
    cells: dict[Cell, list[SeedRun]] = defaultdict(list)
    for r in runs:
        cells[(r.representation, r.evaluator, r.fraction)].append(r)
    rows = []
    for cell, rs in cells.items():
        accs = [r.accuracy for r in rs]
        std = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
        n_labels = round(float(np.mean([r.n_labels for r in rs])))
        cell_notes = sorted(set((notes or {}).get(cell, ())))
        rows.append(
            ResultRow(*cell, float(np.mean(accs)), std, len(rs), n_labels, accs, cell_notes)
        )
    return rows


def run_finetune(
    encoders: Mapping[str, tuple[Any, bool]],
    splits: Any,
    train_y: np.ndarray,
    test_y: np.ndarray,
    ev: Any,
    augment_cfg: AugmentConfig,
    image_size: int,
    eval_transform: Any,
    num_workers: int = 0,
    notes: dict[Cell, set[str]] | None = None,
) -> list[SeedRun]:
    """Fine-tune each `name: (encoder, pretrained)` on the fine-tuning fractions' subsets.

    The subsets are the ones the feature probes use for the same seed; `train_y` and
    `test_y` are the labels of `splits.train` / `splits.test` in order.
    """
    from simclr.evaluation.finetune import finetune, predict_images

    plan = [(f, n) for f, n in fraction_plan(ev) if f in {float(x) for x in ev.finetune.fractions}]
    if not plan:
        return []
    subsets = subsets_by_seed(train_y, plan)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    seeds = {f: distinct_seeds(subsets, f, n) for f, n in plan}
    _note_folded(notes, seeds, [(name, "finetune") for name in encoders])
    jobs = [(name, f, seed) for f, _ in plan for seed in seeds[f][0] for name in encoders]
    results = []
    for name, f, seed in tqdm(jobs, desc="finetune", unit="run", leave=False):
        encoder, pretrained = encoders[name]
        idx = subsets[seed][f]
        model, chosen = finetune(
            encoder,
            splits.train,
            idx.tolist(),
            num_classes,
            augment_cfg,
            image_size,
            ev.finetune,
            seed,
            pretrained=pretrained,
            num_workers=num_workers,
        )
        pred = predict_images(model, splits.test, eval_transform, int(ev.batch_size))
        acc = float(np.mean(pred == test_y))
        results.append(SeedRun(name, "finetune", f, seed, len(idx), acc, chosen))
    return results


def run_protocol(encoder: nn.Module, cfg: RunConfig, collected: Collected) -> ProtocolResult:
    """Step 2 of an evaluation: the feature probes `cfg.eval.evaluators` names on
    every representation's features, then fine-tuning (of the encoder, and of the
    `supervised` baseline when asked) on the same label subsets."""
    ev, features = cfg.eval, collected.features
    cell_notes: dict[Cell, set[str]] = {}
    feature_evals = [e for e in ev.evaluators if e != "finetune"]
    runs = run_feature_probes(features, ev, feature_evals, cell_notes) if feature_evals else []
    notes: list[str] = []
    if "finetune" in ev.evaluators:
        tuned: dict[str, tuple[nn.Module, bool]] = {"simclr": (encoder, True)}
        if "supervised" in ev.baselines:
            tuned["supervised"] = (random_init_encoder(cfg), False)
        labels = features["simclr"]
        runs += run_finetune(
            tuned,
            collected.splits,
            labels.train_y,
            labels.test_y,
            ev,
            cfg.augment,
            collected.image_size,
            collected.transform,
            int(getattr(collected.data_cfg, "num_workers", 0)),
            cell_notes,
        )
    elif "supervised" in ev.baselines:
        notes.append("supervised baseline skipped: it needs the finetune evaluator")
    return ProtocolResult(runs, summarise(runs, cell_notes), notes)
