"""The representation monitors under two gloo processes equal one process on the same rows.

Each rank feeds its half of every batch (as DistributedSampler would split it)
into the monitor callbacks; rank 0 saves what they computed, and the test
compares it with one process fed every row.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simclr.training.callbacks.online import OnlineKnn
from simclr.training.callbacks.representation import RepresentationMonitor
from tests.support.gloo_harness import run_on_gloo_ranks

pytestmark = pytest.mark.distributed

WORLD = 2
BATCHES, PER_RANK, QUERIES = 3, 10, 14  # rows per rank per batch; validation rows per rank


def _data() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    rows = BATCHES * WORLD * PER_RANK
    centres = torch.randn(3, 12, generator=gen) * 2
    labels = torch.randint(0, 3, (rows,), generator=gen)
    labels[::7] = -1  # some unlabeled images
    features = centres[labels.clamp_min(0)] + torch.randn(rows, 12, generator=gen)
    query_y = torch.randint(0, 3, (WORLD * QUERIES,), generator=gen)
    return {
        "features": features,
        "labels": labels,
        "z1": torch.randn(rows, 6, generator=gen),
        "z2": torch.randn(rows, 6, generator=gen),
        "query_x": centres[query_y] + torch.randn(WORLD * QUERIES, 12, generator=gen),
        "query_y": query_y,
    }


def _run(rank: int, world: int) -> dict[str, float | None]:
    """Feed this rank's share of the data through the monitors, as the hooks do."""
    data = _data()
    monitor = RepresentationMonitor(max_samples=10_000)
    knn = OnlineKnn(num_classes=3, k=5, temperature=0.1, max_samples=10_000)
    batch = WORLD * PER_RANK  # the global batch, split among `world` ranks
    for b in range(BATCHES):
        start = b * batch + rank * (batch // world)
        rows = slice(start, start + batch // world)
        monitor.add(data["features"][rows], data["z1"][rows], data["z2"][rows])
        knn.add_train(data["features"][rows], data["labels"][rows])
    health = monitor.compute(epoch=0)
    assert health is not None
    knn.start_queries()
    share = len(data["query_y"]) // world
    q = slice(rank * share, (rank + 1) * share)
    knn.add_queries(data["query_x"][q], data["query_y"][q])
    return {**health, "knn_acc": knn.finish_queries()}


def _check(rank: int) -> dict[str, float | None]:
    return _run(rank, WORLD)


def test_two_ranks_compute_what_one_process_computes(tmp_path: Path) -> None:
    distributed = run_on_gloo_ranks(_check, WORLD, tmp_path)
    single = _run(0, 1)
    assert set(distributed) == set(single)
    for name, value in single.items():
        assert value is not None, name
        assert distributed[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert 0.0 < single["knn_acc"] <= 1.0
