"""Data order and augmentations as pure functions of (seed, epoch, image index).

A run resumed from the checkpoint at the end of epoch k must see the same epoch
k+1 as the uninterrupted run: the same order of images and the same random
crops, flips and colour changes. Neither may therefore depend on how much of
the global random stream was used before (by model initialisation, by earlier
epochs, by DataLoader workers started anew after the restart).

:class:`EpochShuffleSampler` draws each epoch's permutation from its own
generator seeded with (seed, epoch) and yields `(epoch, index)` pairs;
:class:`EpochSeededDataset` transforms item `index` of epoch `epoch` under a
generator state seeded with (seed, epoch, index). The result does not depend
on the number of workers, on persistent workers, or on where a run was resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def derived_seed(*entropy: int) -> int:
    """A 63-bit seed from integers, well mixed (numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


# A sampler's key: (epoch, index), or (epoch, index, view size) under progressive resizing.
EpochKey: TypeAlias = tuple[int, int] | tuple[int, int, int]


class EpochShuffleSampler(Sampler[EpochKey]):
    """A new permutation of `range(n)` each epoch, fixed by `(seed, epoch)`.

    Lightning calls :meth:`set_epoch` before every epoch; `start_epoch` covers the
    first epoch after a resume, whose loader is created before that call. A run
    resumed mid-epoch passes `skip`, the images its epoch `start_epoch` already
    trained on: that epoch then yields the rest of its permutation only. The length
    stays `n`, so Lightning's count of batches (and the learning-rate schedule) is
    that of the uninterrupted run.

    With `size_of_batch` (progressive resizing, simclr.data.resolution) each key also
    carries its batch's view size: `size_of_batch(epoch, batch)` is asked once per
    batch of `batch_size` keys, as the loader hands the batch to a worker (the sampler
    runs in the main process, where the run's current plan is, so a re-planned budget
    moves the growth of the batches still to come).
    """

    def __init__(
        self,
        n: int,
        seed: int,
        start_epoch: int = 0,
        skip: int = 0,
        size_of_batch: Callable[[int, int], int] | None = None,
        batch_size: int = 1,
    ) -> None:
        self.n = n
        self.seed = seed
        self.epoch = start_epoch
        self._skip = (start_epoch, int(skip))
        self.size_of_batch = size_of_batch
        self.batch_size = max(1, int(batch_size))

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of `epoch` from the next iteration on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[EpochKey]:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        epoch = self.epoch
        skip_epoch, skip = self._skip
        start = skip if epoch == skip_epoch else 0
        self._skip = (skip_epoch, 0)  # only the first pass over that epoch is cut
        order = torch.randperm(self.n, generator=generator).tolist()[start:]
        if self.size_of_batch is None:
            yield from ((epoch, index) for index in order)
            return
        size = 0
        for place, index in enumerate(order, start=start):  # place in the whole epoch
            batch, first = divmod(place, self.batch_size)
            if first == 0 or size == 0:
                size = int(self.size_of_batch(epoch, batch))
            yield epoch, index, size


class EpochSeededDataset(Dataset):
    """`(transform(image), label)` of `base[index]`, random draws seeded per item and epoch.

    Takes `(epoch, index)` pairs from :class:`EpochShuffleSampler`; a plain int
    index uses the global generator as usual. An `(epoch, index, size)` key uses
    `transform_at(size)` (built once per size, in each worker).
    """

    def __init__(
        self,
        base: Dataset,
        transform: Callable[[Any], Any],
        seed: int,
        transform_at: Callable[[int], Callable[[Any], Any]] | None = None,
    ) -> None:
        self.base = base
        self.transform = transform
        self.seed = seed
        self.transform_at = transform_at
        self._sized: dict[int, Callable[[Any], Any]] = {}

    def _transform(self, key: EpochKey) -> Callable[[Any], Any]:
        if len(key) == 2 or self.transform_at is None:
            return self.transform
        size = key[2]
        if size not in self._sized:
            self._sized[size] = self.transform_at(size)
        return self._sized[size]

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: int | EpochKey) -> tuple[Any, int]:
        if not isinstance(key, tuple):
            image, label = self.base[key]
            return self.transform(image), int(label)
        epoch, index = key[0], key[1]
        transform = self._transform(key)
        image, label = self.base[index]
        # torchvision's transforms draw from the global CPU generator: fork it, so the
        # caller's stream is untouched, and seed it for this item.
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(derived_seed(self.seed, epoch, index))
            return transform(image), int(label)


def reseed_globals(seed: int, epoch: int, rank: int = 0) -> None:
    """Seed torch, numpy and `random` from (seed, epoch, rank) at the start of an epoch."""
    import random

    value = derived_seed(seed, epoch, rank)
    torch.manual_seed(value)
    np.random.seed(value % 2**32)
    random.seed(value)
