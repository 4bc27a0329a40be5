"""Gradient caching across two gloo processes equals the single-process full-batch gradient.

Each rank holds its share of the batch, wraps the model in DistributedDataParallel
and runs :func:`gradcache_backward` in chunks, with the loss gathering every
rank's projections; DDP's averaged gradients must equal those of one process
computing the loss over the concatenated batch in one pass (float64, tight).
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from simclr.losses.gradcache import gradcache_backward
from simclr.losses.ntxent import nt_xent
from tests.support.gloo_harness import run_on_gloo_ranks

WORLD = 2
PER_RANK = 3  # images per rank: 6 views, chunks of 2
CHUNK = 2
TEMPERATURE = 0.5

pytestmark = pytest.mark.distributed


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(WORLD * PER_RANK, 5, generator=gen, dtype=torch.float64)
    x2 = torch.randn(WORLD * PER_RANK, 5, generator=gen, dtype=torch.float64)
    return x1, x2


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4)).double()


def _check(rank: int) -> dict:
    x1, x2 = _data()
    rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    views = torch.cat([x1[rows], x2[rows]])  # this rank's 2n views, view 1 first
    model = DistributedDataParallel(_model())
    reductions = []

    # Unannotated: DDP checks annotations, which `from __future__` turns into strings.
    def counting_allreduce(state, bucket):  # type: ignore[no-untyped-def]
        reductions.append(bucket.index())
        work = dist.all_reduce(bucket.buffer() / WORLD, async_op=True)
        return work.get_future().then(lambda fut: fut.value()[0])

    model.register_comm_hook(None, counting_allreduce)

    def loss_fn(z: torch.Tensor) -> torch.Tensor:
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, TEMPERATURE, gather=True)

    loss = gradcache_backward(model, views, loss_fn, CHUNK, no_sync=model.no_sync)
    losses = [torch.zeros((), dtype=torch.float64) for _ in range(WORLD)]
    dist.all_gather(losses, loss)
    grads = {n: p.grad.clone() for n, p in model.module.named_parameters()}  # type: ignore[union-attr]
    return {"losses": torch.stack(losses), "grads": grads, "reductions": reductions}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_on_gloo_ranks(_check, WORLD, tmp_path_factory.mktemp("gradcache"))


def test_chunked_ddp_gradients_equal_the_single_process_full_batch_ones(results: dict) -> None:
    x1, x2 = _data()
    model = _model()
    loss = nt_xent(model(x1), model(x2), TEMPERATURE)  # one process, whole batch, one pass
    loss.backward()
    torch.testing.assert_close(results["losses"].mean(), loss.detach(), rtol=1e-13, atol=0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(results["grads"][name], p.grad, rtol=1e-12, atol=1e-14)


def test_gradients_are_all_reduced_once_per_step(results: dict) -> None:
    # One bucket for this small model, reduced after the last of the three chunks only.
    assert results["reductions"] == [0]
