"""Representation monitors: each metric against an independent slow reference.

RankMe against NumPy's SVD, alignment/uniformity/std against plain loops, the
online kNN against a brute-force vote, the collapse warning on a constant
embedding, and a tiny pretraining run that logs every monitor and draws the curves.
"""

from __future__ import annotations

import csv
import logging
import math

import numpy as np
import pytest
import torch

from simclr.evaluation import health as monitoring
from simclr.evaluation.knn import knn_predict
from simclr.training.callbacks.online import OnlineKnn
from simclr.training.callbacks.representation import RecentRows, RepresentationMonitor


def _gaussian(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rankme_numpy(z: np.ndarray, eps: float = 1e-7) -> float:
    s = np.linalg.svd(z, compute_uv=False)
    p = s / np.sum(np.abs(s)) + eps
    return float(np.exp(-np.sum(p * np.log(p))))


@pytest.mark.parametrize("shape", [(50, 8), (8, 50), (200, 32)])
def test_rankme_matches_numpy_svd(shape):
    z = _gaussian(*shape)
    z[:, 0] *= 10  # unequal singular values: the entropy is not just log(min(N, D))
    assert monitoring.rankme(z) == pytest.approx(_rankme_numpy(z.numpy()), rel=1e-9)
    assert monitoring.rankme(z.float()) == pytest.approx(_rankme_numpy(z.numpy()), rel=1e-4)


def test_rankme_of_low_rank_and_zero_matrices():
    low = _gaussian(100, 3) @ _gaussian(3, 40, seed=1)  # rank 3
    assert monitoring.rankme(low) == pytest.approx(_rankme_numpy(low.numpy()), rel=1e-9)
    assert monitoring.rankme(low) < 3.0 + 1e-3
    line = torch.ones(64, 16)  # every row the same: one direction
    assert monitoring.rankme(line) == pytest.approx(1.0, abs=1e-3)
    assert math.isfinite(monitoring.rankme(torch.zeros(10, 4)))


def _unit(z: np.ndarray) -> np.ndarray:
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_alignment_and_uniformity_match_double_loops():
    z1, z2 = _gaussian(23, 5).numpy(), _gaussian(23, 5, seed=1).numpy()
    u1, u2 = _unit(z1), _unit(z2)
    align = np.mean([np.sum((u1[i] - u2[i]) ** 2) for i in range(len(u1))])
    terms = [
        math.exp(-2 * np.sum((u1[i] - u1[j]) ** 2))
        for i in range(len(u1))
        for j in range(i + 1, len(u1))
    ]
    uniform = math.log(sum(terms) / len(terms))
    t1, t2 = torch.from_numpy(z1), torch.from_numpy(z2)
    assert monitoring.alignment(t1, t2) == pytest.approx(align, rel=1e-9)
    assert monitoring.uniformity(t1) == pytest.approx(uniform, rel=1e-9)


def test_uniformity_in_blocks_equals_one_block(monkeypatch):
    z = _gaussian(70, 6)
    whole = monitoring.uniformity(z)
    monkeypatch.setattr(monitoring, "_CHUNK", 16)  # several blocks, a short last one
    assert monitoring.uniformity(z) == pytest.approx(whole, rel=1e-12)


def test_normalized_std_matches_numpy_and_is_about_one_over_sqrt_d():
    z = _gaussian(4000, 64)
    u = _unit(z.numpy())
    expected = float(np.mean(np.std(u, axis=0, ddof=1)))
    assert monitoring.normalized_std(z) == pytest.approx(expected, rel=1e-9)
    assert monitoring.normalized_std(z) == pytest.approx(1 / math.sqrt(64), rel=0.02)
    assert monitoring.normalized_std(torch.ones(10, 64)) == pytest.approx(0.0, abs=1e-12)


def _knn_loop(bank, bank_y, queries, k, t, num_classes):
    """Brute force: cosine similarity to every bank row, the k largest vote exp(s / t)."""
    out = []
    for q in queries:
        sims = [float(np.dot(q, b) / (np.linalg.norm(q) * np.linalg.norm(b))) for b in bank]
        nearest = sorted(range(len(bank)), key=lambda i: -sims[i])[:k]
        votes = [0.0] * num_classes
        for i in nearest:
            votes[int(bank_y[i])] += math.exp(sims[i] / t)
        out.append(int(np.argmax(votes)))
    return np.array(out)


def _clusters(n: int, seed: int, classes: int = 3, d: int = 6, noise: float = 1.5):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(classes, d)) * 2
    y = rng.integers(0, classes, n)
    return (centres[y] + noise * rng.normal(size=(n, d))).astype(np.float32), y


def test_online_knn_matches_a_brute_force_loop():
    bank_x, bank_y = _clusters(60, seed=0)
    query_x, query_y = _clusters(40, seed=1)
    k, t = 7, 0.5
    expected = _knn_loop(bank_x, bank_y, query_x, k, t, 3)
    assert (
        0.3 < np.mean(expected == query_y) < 1.0
    )  # an informative case: neither trivial nor hopeless

    knn = OnlineKnn(num_classes=3, k=k, temperature=t, max_samples=1000)
    bx, by = torch.from_numpy(bank_x), torch.from_numpy(bank_y)
    for rows in np.array_split(np.arange(60), 4):  # batch by batch, as training hands them over
        knn.add_train(bx[rows], by[rows])
    knn.add_train(torch.randn(5, 6), torch.full((5,), -1))  # unlabeled rows stay out of the bank
    knn.start_queries()
    qx, qy = torch.from_numpy(query_x), torch.from_numpy(query_y)
    knn.add_queries(qx[:25], qy[:25])
    knn.add_queries(qx[25:], qy[25:])
    assert knn.finish_queries() == pytest.approx(np.mean(expected == query_y))
    # The final kNN evaluation shares the vote.
    pred = knn_predict(bank_x, bank_y, query_x, k, t, 3)
    np.testing.assert_array_equal(pred, expected)


def test_recent_rows_keep_the_latest_rows_up_to_capacity():
    rows = RecentRows(5)
    for start in range(0, 12, 3):
        rows.add(x=torch.arange(start, start + 3))
    kept = rows.local()
    assert kept is not None
    assert kept["x"].tolist() == [7, 8, 9, 10, 11]
    assert len(rows) == 5
    rows.clear()
    assert rows.local() is None


def test_collapse_warning_fires_once_on_a_constant_embedding(caplog):
    monitor = RepresentationMonitor(max_samples=512)
    healthy = _gaussian(256, 32).float()
    monitor.add(healthy, _gaussian(256, 16, seed=1).float(), _gaussian(256, 16, seed=2).float())
    with caplog.at_level(logging.WARNING, logger="simclr.training.callbacks.representation"):
        values = monitor.compute(epoch=0)
        assert values is not None and values["collapsed"] == 0.0
        assert not caplog.records

        for epoch in (3, 4):  # collapsed two epochs running: one line, naming the first
            monitor.rows.clear()
            constant = torch.ones(256, 32)
            monitor.add(constant, torch.ones(256, 16), torch.ones(256, 16))
            values = monitor.compute(epoch=epoch)
            assert values is not None and values["collapsed"] == 1.0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "epoch 3" in lines[0] and "RankMe" in lines[0] and "std" in lines[0]
    assert values["rankme"] == pytest.approx(1.0, abs=1e-3)
    assert values["projection_std"] == pytest.approx(0.0, abs=1e-6)


def test_pretraining_logs_the_monitors_and_the_report_draws_the_curves(
    labeled_folder, tmp_path, capfd
):
    from simclr.console import pretrain
    from tests.support.cli_harness import run_cli, tiny_run
    from tests.unit.console.test_sweeps import TINY_EVAL

    run_dir = tmp_path / "run"
    argv = [*tiny_run(epochs=2, batches=2), *TINY_EVAL, f"data.root={labeled_folder}"]
    result = run_cli(pretrain.cli, "simclr-pretrain", [*argv, f"hydra.run.dir={run_dir}"], capfd)
    assert result.code == 0, result.stderr[-3000:]
    with (run_dir / "logs" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for name in ("knn_acc", "rankme", "rankme_projection", "projection_std", "alignment"):
        values = [float(r[f"monitor/{name}"]) for r in rows if r.get(f"monitor/{name}")]
        assert len(values) == 2, name  # once per epoch
        assert all(math.isfinite(v) for v in values), name
    assert (run_dir / "training_curves.png").stat().st_size > 0
