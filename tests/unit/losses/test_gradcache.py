"""Gradient caching gives the full-batch gradient, chunk by chunk (float64, tight).

References are computed independently: one pass of the model over the whole batch
with the graph kept, then the loss's backward; with dropout or BatchNorm, the same
chunked passes kept with their graphs (the model the chunks define).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simclr.losses import gradcache
from simclr.losses.gradcache import chunk_slices, gradcache_backward
from simclr.losses.ntxent import nt_xent

N, DIM = 5, 6  # images per batch (10 views), input features
TEMPERATURE = 0.3


def _views(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2 * N, DIM, generator=gen, dtype=torch.float64)


def _model(*extra: nn.Module) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(DIM, 8), nn.Tanh(), *extra, nn.Linear(8, 4)).double()


def _loss(z: torch.Tensor) -> torch.Tensor:
    z1, z2 = z.chunk(2)
    return nt_xent(z1, z2, TEMPERATURE)


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        out[name] = p.grad.clone()
    return out


def _reference(model: nn.Module, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Loss backward through passes kept with their graphs (one pass, or one per chunk)."""
    model.zero_grad()
    if chunk is None:
        z = model(x)
    else:
        z = torch.cat([model(x[rows]) for rows in chunk_slices(x.shape[0], chunk)])
    loss = _loss(z)
    loss.backward()
    return loss.detach()


@pytest.mark.parametrize("chunk", [1, 3, 4, 2 * N, 64])
def test_gradients_equal_the_full_batch_ones(chunk: int) -> None:
    x = _views()
    model = _model()
    expected_loss = _reference(model, x)
    expected = _grads(model)
    model.zero_grad()
    loss = gradcache_backward(model, x, _loss, chunk)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-13, atol=1e-14)
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-12, atol=1e-14)


def test_the_cached_gradient_is_not_that_of_independent_chunks() -> None:
    # The point of caching: accumulating each chunk's own loss gives another gradient.
    x = _views()
    model = _model()
    gradcache_backward(model, x, _loss, 4)
    cached = _grads(model)
    model.zero_grad()
    for rows in chunk_slices(2 * N, 4):
        part = x[rows]
        if part.shape[0] % 2 == 0:
            _loss(model(part)).backward()
    assert not torch.allclose(_grads(model)["0.weight"], cached["0.weight"])


def test_dropout_is_replayed_from_each_chunks_generator_state(monkeypatch) -> None:
    x = _views()
    model = _model(nn.Dropout(0.4))
    torch.manual_seed(7)
    _reference(model, x, chunk=3)  # the masks that chunked passes draw from this state
    expected = _grads(model)
    model.zero_grad()
    torch.manual_seed(7)
    gradcache_backward(model, x, _loss, 3)
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-12, atol=1e-14)
    # Without the replay the second pass draws new masks: another (wrong) gradient.
    monkeypatch.setattr(gradcache.RngState, "replay", lambda self: torch.enable_grad())
    model.zero_grad()
    torch.manual_seed(7)
    gradcache_backward(model, x, _loss, 3)
    assert not torch.allclose(_grads(model)["0.weight"], expected["0.weight"])


def test_batchnorm_uses_per_chunk_statistics_and_updates_running_ones_once() -> None:
    x = _views()
    model = _model(nn.BatchNorm1d(8))
    _reference(model, x, chunk=4)  # statistics per chunk of 4, 3 and 3 views
    expected = _grads(model)
    bn = model[2]
    assert isinstance(bn, nn.BatchNorm1d)
    expected_stats = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked)
    bn.reset_running_stats()
    model.zero_grad()
    gradcache_backward(model, x, _loss, 4, norm_modules=[model])
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-12, atol=1e-14)
    # Three chunks, three updates: the first pass's, not the second's on top.
    assert int(bn.num_batches_tracked) == int(expected_stats[2]) == 3
    torch.testing.assert_close(bn.running_mean, expected_stats[0], rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, expected_stats[1], rtol=0, atol=0)


def test_nonfinite_loss_runs_no_backward() -> None:
    model = _model()
    x = _views()
    x[0, 0] = float("nan")
    loss = gradcache_backward(model, x, _loss, 3)
    assert not torch.isfinite(loss)
    assert all(p.grad is None for p in model.parameters())


def test_only_the_last_chunk_leaves_no_sync() -> None:
    entered: list[int] = []
    calls: list[int] = []

    class Counting:
        def __enter__(self) -> None:
            entered.append(len(calls))

        def __exit__(self, *args: object) -> None:
            return None

    model = _model()
    gradcache_backward(
        model,
        _views(),
        _loss,
        4,
        no_sync=Counting,
        backward=lambda z, g: calls.append(1) or z.backward(g),
    )
    assert entered == [0, 1] and len(calls) == 3  # chunks 1 and 2 in no_sync, chunk 3 not


def test_chunk_slices_cover_the_rows_once_in_even_sizes() -> None:
    for total in range(0, 40):
        for chunk in range(1, 12):
            slices = chunk_slices(total, chunk)
            rows = [i for s in slices for i in range(total)[s]]
            assert rows == list(range(total))
            sizes = [s.stop - s.start for s in slices]
            assert len(slices) == -(-total // chunk)  # as few passes as the size allows
            assert all(size <= chunk for size in sizes)
            assert not sizes or max(sizes) - min(sizes) <= 1
    assert chunk_slices(16, 5) == [slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 16)]
    with pytest.raises(ValueError, match="chunk_size=0"):
        chunk_slices(3, 0)
