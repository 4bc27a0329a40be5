"""Gradient caching: a contrastive loss over the whole batch in the memory of one chunk.

Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup" (arXiv 2101.06983). NT-Xent couples every projection of the batch to every
other, so the batch cannot simply be split into accumulated micro-batches: each
would see only its own negatives. The loss is, however, cheap next to the encoder,
and its gradient reaches the parameters only through the projections ``z``:

    dL/dtheta = sum_chunks (dz_chunk/dtheta)^T  dL/dz_chunk

So one step is

1. :func:`forward_chunks`: the projections of the whole batch, chunk by chunk
   under ``no_grad`` (no activations kept), recording the random-generator state
   at the start of every chunk;
2. :func:`projection_gradient`: the loss on the full batch (cross-rank gathering
   included) and its gradient with respect to the projections, ``G = dL/dz``;
3. :func:`backward_chunks`: for every chunk, the forward again with the graph,
   from the same generator state (dropout draws the same masks), then
   ``z_chunk.backward(G_chunk)``; the parameter gradients sum over the chunks.

Peak activation memory is that of one chunk; the negatives are those of the batch.
The result equals the full-batch gradient for any model whose output on an image
does not depend on the other images of its pass. BatchNorm in training mode does
depend on them: with chunks its statistics are those of each chunk, as they are of
each device under DDP without SyncBatchNorm (docs/distributed.md). The running
statistics are updated once per chunk, by the first pass; the second pass leaves
them as they were (:func:`frozen_norm_statistics`).

Under DDP, step 2's gather is the one of :func:`simclr.losses.ntxent.nt_xent`, whose
backward hands each rank the gradient that every rank's loss put on its
projections; summing the chunk gradients and letting DDP average them over ranks
then gives the single-process gradient, as without chunks (see simclr/losses/ntxent.py).
The parameter all-reduce must run once, after the last chunk: ``no_sync`` keeps
it off the other chunks' backward passes.

Nothing here knows Lightning: :func:`gradcache_backward` runs the whole step for a
plain model, `simclr.training.chunked_step` for the LightningModule.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

T = TypeVar("T")


@dataclass(frozen=True)
class RngState:
    """The CPU generator's state and, for inputs on a CUDA device, that device's."""

    cpu: Tensor
    device: torch.device
    accelerator: Tensor | None

    @classmethod
    def capture(cls, device: torch.device) -> RngState:
        """The current states of the generators that a pass on `device` draws from."""
        accelerator = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return cls(torch.get_rng_state(), device, accelerator)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the body from this state; the generators are restored afterwards."""
        devices = [self.device] if self.accelerator is not None else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.set_rng_state(self.cpu)
            if self.accelerator is not None:
                torch.cuda.set_rng_state(self.accelerator, self.device)
            yield


def chunk_slices(total: int, chunk_size: int) -> list[slice]:
    """As few consecutive slices of at most `chunk_size` rows as cover `range(total)`.

    Their sizes differ by at most one (16 rows in chunks of 5: 4, 4, 4, 4), so no
    chunk is a small remainder: BatchNorm's statistics are over similar counts, and
    never over a single image, which BatchNorm refuses in training.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size} must be >= 1")
    count = -(-total // chunk_size)
    bounds = [round(i * total / count) for i in range(count + 1)] if count else [0]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def forward_chunks(
    fn: Callable[[Tensor], T], inputs: Tensor, chunk_size: int
) -> tuple[list[T], list[RngState]]:
    """`fn` on each chunk of `inputs` (rows) without a graph, and each chunk's RNG state.

    `fn` may return anything (a tensor, a tuple of tensors); the outputs are returned
    per chunk, in order, for the caller to concatenate.
    """
    outputs: list[T] = []
    states: list[RngState] = []
    with torch.no_grad():
        for rows in chunk_slices(inputs.shape[0], chunk_size):
            states.append(RngState.capture(inputs.device))
            outputs.append(fn(inputs[rows]))
    return outputs, states


def projection_gradient(loss_fn: Callable[[Tensor], Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
    """The loss of the detached projections `z` and its gradient with respect to them.

    Under DDP every rank must call this (the loss's gather is a collective).
    """
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(z)
        (grad,) = torch.autograd.grad(loss, z)
    return loss.detach(), grad


@contextlib.contextmanager
def frozen_norm_statistics(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Keep the running statistics of every norm layer in `modules` as they are.

    The second (graph-building) pass of a chunk must not update BatchNorm's running
    mean and variance a second time; the layers still normalise with the chunk's
    own statistics, as in the first pass, so both passes compute the same outputs.
    """
    saved: list[tuple[_NormBase, dict[str, Tensor]]] = []
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, _NormBase) and layer.track_running_stats:
                buffers = {
                    name: buf.clone()
                    for name, buf in layer.named_buffers(recurse=False)
                    if buf is not None
                }
                saved.append((layer, buffers))
    try:
        yield
    finally:
        with torch.no_grad():
            for layer, buffers in saved:
                for name, value in buffers.items():
                    getattr(layer, name).copy_(value)


def _plain_backward(z: Tensor, grad: Tensor) -> None:
    z.backward(grad)


def backward_chunks(
    project: Callable[[Tensor], Tensor],
    inputs: Tensor,
    grad: Tensor,
    chunk_size: int,
    states: list[RngState],
    *,
    backward: Callable[[Tensor, Tensor], None] = _plain_backward,
    no_sync: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    norm_modules: Iterable[nn.Module] = (),
) -> None:
    """Accumulate into the parameters' ``.grad`` the gradient that `grad` (dL/dz) implies.

    Args:
        project: inputs -> projections, the same function the first pass ran.
        inputs: the whole batch, as given to :func:`forward_chunks`.
        grad: dL/dz for the whole batch, from :func:`projection_gradient`.
        chunk_size: as in the first pass.
        states: the first pass's generator states, one per chunk.
        backward: ``(z_chunk, grad_chunk) -> None``; Lightning's ``manual_backward``
            (which applies the precision plugin's loss scaling) or ``z.backward(g)``.
        no_sync: a context in which the backward does not all-reduce the gradients
            (``DistributedDataParallel.no_sync``); all chunks but the last run in it.
        norm_modules: whose norm layers keep their running statistics in this pass.
    """
    slices = chunk_slices(inputs.shape[0], chunk_size)
    if len(states) != len(slices):
        raise ValueError(f"{len(states)} generator states for {len(slices)} chunks")
    for i, (rows, state) in enumerate(zip(slices, states, strict=True)):
        last = i == len(slices) - 1
        with (
            contextlib.nullcontext() if last else no_sync(),
            frozen_norm_statistics(norm_modules),
        ):
            with state.replay(), torch.enable_grad():
                z = project(inputs[rows])
            backward(z, grad[rows].to(z.dtype))


def gradcache_backward(
    project: Callable[[Tensor], Tensor],
    inputs: Tensor,
    loss_fn: Callable[[Tensor], Tensor],
    chunk_size: int,
    *,
    backward: Callable[[Tensor, Tensor], None] = _plain_backward,
    no_sync: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    norm_modules: Iterable[nn.Module] = (),
) -> Tensor:
    """One gradient-cached step: the loss of the whole batch, gradients in ``.grad``.

    Args:
        project: the model, inputs -> projections (rows in, rows out).
        inputs: the whole batch (for SimCLR: both views' images, 2N rows).
        loss_fn: projections of the whole batch -> scalar loss.
        chunk_size: rows per pass through `project`.
        backward, no_sync, norm_modules: see :func:`backward_chunks`.

    Returns:
        The detached loss. If it is not finite no backward pass runs and the
        gradients are left untouched.
    """
    outputs, states = forward_chunks(project, inputs, chunk_size)
    loss, grad = projection_gradient(loss_fn, torch.cat(outputs))
    if torch.isfinite(loss):
        backward_chunks(
            project,
            inputs,
            grad,
            chunk_size,
            states,
            backward=backward,
            no_sync=no_sync,
            norm_modules=norm_modules,
        )
    return loss
