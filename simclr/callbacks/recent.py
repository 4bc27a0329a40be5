"""The latest rows a training epoch produced, kept on their device for epoch-end metrics."""

from __future__ import annotations

import torch
from torch import Tensor

from simclr.distributed import gather_no_grad


class RecentRows:
    """At most `capacity` of the most recent rows of a few named tensors.

    Rows are appended batch by batch (detached) and the oldest dropped once more
    than `capacity` are held, so memory is bounded however long the epoch.
    :meth:`gathered` concatenates every rank's rows (rank order); all ranks must
    call it together, as with any collective.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be >= 1")
        self.capacity = int(capacity)
        self._chunks: list[dict[str, Tensor]] = []
        self._rows = 0

    def __len__(self) -> int:
        return min(self._rows, self.capacity)

    def clear(self) -> None:
        self._chunks, self._rows = [], 0

    def add(self, **tensors: Tensor) -> None:
        """Append one batch: tensors with the same number of rows."""
        sizes = {int(t.shape[0]) for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"rows of one batch must agree, got sizes {sorted(sizes)}")
        self._chunks.append({k: t.detach() for k, t in tensors.items()})
        self._rows += sizes.pop()
        while self._chunks and self._rows - _rows(self._chunks[0]) >= self.capacity:
            self._rows -= _rows(self._chunks.pop(0))

    def local(self) -> dict[str, Tensor] | None:
        """This process's rows, oldest first (None when nothing was added)."""
        if not self._chunks:
            return None
        keys = self._chunks[0].keys()
        return {k: torch.cat([c[k] for c in self._chunks])[-self.capacity :] for k in keys}

    def gathered(self) -> dict[str, Tensor] | None:
        """Every rank's rows, rank 0's first (None when this rank has none)."""
        rows = self.local()
        if rows is None:
            return None
        return {k: gather_no_grad(v) for k, v in rows.items()}


def _rows(chunk: dict[str, Tensor]) -> int:
    return int(next(iter(chunk.values())).shape[0])
