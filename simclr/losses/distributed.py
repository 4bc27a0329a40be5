"""Small helpers around torch.distributed: who am I, and gathering across ranks.

Every gather here concatenates along dim 0 in rank order: the rows from rank 0
come first, then rank 1, and so on. Code that indexes into a gathered tensor
(the NT-Xent positives, for one) relies on that order, so rank r's own rows sit
at ``[r * n, (r + 1) * n)`` when every rank contributes ``n`` rows.

When torch.distributed is not initialised, or the world has one process, every
function is the single-process identity, so callers need no special case.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed._functional_collectives import all_gather_single, wait_tensor


def is_distributed() -> bool:
    """True when torch.distributed is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank in the default group (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def _all_gather(t: Tensor) -> Tensor:
    """All-gather along dim 0 with autograd, finished before returning.

    ``all_gather_single`` hands back an AsyncCollectiveTensor that completes on its
    first use by an op; code that reads the storage directly (``torch.save``, numpy)
    would see unfinished data, so wait here (``wait_tensor``'s backward is identity).
    """
    group = dist.group.WORLD
    if group is None:  # callers check is_distributed() first; this is for the type checker
        raise RuntimeError("torch.distributed is not initialised")
    return wait_tensor(all_gather_single(t.contiguous(), 0, group))


def gather_with_grad(t: Tensor) -> Tensor:
    """Concatenate ``t`` from every rank along dim 0, keeping the autograd graph.

    The backward pass sums, for each rank's slice, the gradients that every rank
    computed for it (a reduce-scatter), so a loss that uses other ranks' rows sends
    their share of the gradient back to where those rows were computed. All ranks
    must pass tensors of the same shape.

    ``torch.distributed.nn.functional.all_gather`` does the same but is deprecated
    in favour of ``all_gather_single``, which also works under ``torch.compile``.
    """
    if not is_distributed():
        return t
    return _all_gather(t)


@torch.no_grad()
def gather_no_grad(t: Tensor) -> Tensor:
    """Concatenate ``t`` from every rank along dim 0, detached (for metrics).

    Ranks may hold different numbers of rows (the last, short batch of an
    evaluation loader): each pads to the longest, gathers, and the padding is cut
    away again, so the result has exactly the sum of the ranks' rows.
    """
    if not is_distributed():
        return t.detach()
    t = t.detach().contiguous()
    n_local = torch.tensor([t.shape[0]], device=t.device)
    counts = _all_gather(n_local).tolist()
    longest = max(counts)
    if t.shape[0] < longest:
        pad = t.new_zeros((longest - t.shape[0], *t.shape[1:]))
        t = torch.cat([t, pad])
    gathered = _all_gather(t)
    chunks = gathered.split(longest)
    return torch.cat([chunk[:n] for chunk, n in zip(chunks, counts, strict=True)])
