"""NT-Xent across two gloo processes equals the single-process loss and gradient.

One spawn runs every check (tests/support/gloo_harness.py); the tests compare rank 0's
results with a single-process computation.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from simclr.losses import distributed
from simclr.losses.ntxent import nt_xent
from tests.support.gloo_harness import run_on_gloo_ranks

WORLD = 2
PER_RANK = 3  # images per rank
TEMPERATURE = 0.5

pytestmark = pytest.mark.distributed


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.nn.Linear]:
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(WORLD * PER_RANK, 5, generator=gen, dtype=torch.float64)
    x2 = torch.randn(WORLD * PER_RANK, 5, generator=gen, dtype=torch.float64)
    layer = torch.nn.Linear(5, 4).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(4, 5, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(4, generator=gen, dtype=torch.float64))
    return x1, x2, layer


def _rank_grads(rank: int, x1: torch.Tensor, x2: torch.Tensor, gather: bool) -> dict:
    _, _, layer = _batch()
    rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    loss = nt_xent(layer(x1[rows]), layer(x2[rows]), TEMPERATURE, gather=gather)
    loss.backward()
    losses = [torch.zeros((), dtype=torch.float64) for _ in range(WORLD)]
    dist.all_gather(losses, loss.detach())
    out = {"losses": torch.stack(losses)}
    for name, p in layer.named_parameters():
        assert p.grad is not None
        grad = p.grad.clone()
        dist.all_reduce(grad)  # what DDP does: sum, then divide by the world size
        out[name] = grad / WORLD
    return out


def _check(rank: int) -> dict:
    x1, x2, _ = _batch()
    return {
        "world_size": distributed.world_size(),
        "rank_seen": distributed.rank(),
        "gather": _rank_grads(rank, x1, x2, gather=True),
        "no_gather": _rank_grads(rank, x1, x2, gather=False),
        # Uneven rows per rank: rank 0 sends 1 row, rank 1 sends 2.
        "uneven": distributed.gather_no_grad(torch.full((rank + 1, 2), float(rank))),
        "with_grad": distributed.gather_with_grad(torch.full((2, 1), float(rank))),
        "with_grad_type": type(distributed.gather_with_grad(torch.zeros(1))),
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_on_gloo_ranks(_check, WORLD, tmp_path_factory.mktemp("dist"))


def _single_process() -> tuple[torch.Tensor, dict]:
    x1, x2, layer = _batch()
    loss = nt_xent(layer(x1), layer(x2), TEMPERATURE)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in layer.named_parameters()}


def test_helpers_report_world(results: dict) -> None:
    assert results["world_size"] == WORLD
    assert results["rank_seen"] == 0


def test_mean_of_rank_losses_equals_single_process_loss(results: dict) -> None:
    full_loss, _ = _single_process()
    torch.testing.assert_close(results["gather"]["losses"].mean(), full_loss)


def test_averaged_gradients_equal_single_process_gradients(results: dict) -> None:
    _, full_grads = _single_process()
    for name, grad in full_grads.items():
        torch.testing.assert_close(results["gather"][name], grad)


def test_without_gather_each_rank_sees_only_its_own_negatives(results: dict) -> None:
    full_loss, full_grads = _single_process()
    no_gather = results["no_gather"]
    assert not torch.allclose(no_gather["losses"].mean(), full_loss)
    assert not torch.allclose(no_gather["weight"], full_grads["weight"])
    # Each rank's loss is the plain single-process loss on its own half.
    x1, x2, layer = _batch()
    for r in range(WORLD):
        rows = slice(r * PER_RANK, (r + 1) * PER_RANK)
        with torch.no_grad():
            own = nt_xent(layer(x1[rows]), layer(x2[rows]), TEMPERATURE)
        torch.testing.assert_close(no_gather["losses"][r], own)


def test_gathers_concatenate_in_rank_order(results: dict) -> None:
    torch.testing.assert_close(
        results["uneven"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    )
    torch.testing.assert_close(results["with_grad"], torch.tensor([[0.0], [0.0], [1.0], [1.0]]))
    # A finished, plain tensor: safe to save or hand to numpy straight away.
    assert results["with_grad_type"] is torch.Tensor


def test_helpers_without_process_group() -> None:
    t = torch.ones(2, 3, requires_grad=True)
    assert not distributed.is_distributed()
    assert distributed.world_size() == 1
    assert distributed.rank() == 0
    assert distributed.gather_with_grad(t) is t
    assert not distributed.gather_no_grad(t).requires_grad
