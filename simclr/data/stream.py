"""`data=stream`: training and evaluation from LitData shards written by simclr-prepare.

* **Pretraining** reads the shards through LitData's ``StreamingDataset`` and
  ``StreamingDataLoader``: local paths or object-store URIs, chunks downloaded ahead
  and cached, shuffled per epoch (chunks, then items within them, seeded by
  ``seed``), split between DDP ranks (each rank and each worker reads its own
  chunks: an image is seen once per epoch in the whole job). The two views are made
  in the loader workers, as for a folder, each image's under a generator seeded
  from (seed, epoch, index) (:mod:`simclr.data.epochs`).
* **Resuming** restores LitData's loader state from the checkpoint
  (:class:`StreamLoaderState`): mid-epoch, the rest of that epoch's order; after an
  epoch, the next epoch's.
* **Evaluation** and the online probe read the labeled splits by index
  (:class:`ShardSplit`, a map-style dataset over ``StreamingDataset``), decoding
  each image to RGB like :func:`simclr.data.images.load_rgb`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from litdata import StreamingDataLoader, StreamingDataset
from PIL import Image, UnidentifiedImageError
from pytorch_lightning.callbacks import Callback
from torch.utils.data import Dataset

from simclr.config.schema import DataConfig
from simclr.data.encoded import read_encoded
from simclr.data.epochs import derived_seed
from simclr.data.images import to_rgb
from simclr.data.prepare import PRETRAIN_SPLITS, check_shard_files, read_manifest, split_dir
from simclr.data.splits import DataSplits
from simclr.errors import DataError


def decode_rgb(data: bytes | memoryview, name: str) -> Image.Image:
    """An encoded image from a shard, decoded to 8-bit RGB; DataError names it."""
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.load()
            return to_rgb(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{name} (in the shards): not a readable image ({err})") from None


class ShardSplit(Dataset):
    """One split of the shards as a map-style dataset of `(RGB PIL image, label)`."""

    def __init__(self, input_dir: str, length: int) -> None:
        self.input_dir = input_dir
        self.length = int(length)
        self._dataset: StreamingDataset | None = None  # opened on first use, in each worker

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} images")
        index = index % self.length
        if self._dataset is None:
            self._dataset = StreamingDataset(self.input_dir)
        item = self._dataset[int(index)]
        return decode_rgb(item["image"], item["name"]), int(item["label"])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dataset": None}  # each process opens its own reader


def stream_splits(root: str | None) -> DataSplits:
    """The splits of the shard dataset at `root` (one-line DataError if there is none)."""
    if not root:
        raise DataError("data.root is not set: data.name=stream reads shards from simclr-prepare")
    manifest = read_manifest(root)
    counts: dict[str, int] = manifest.get("counts", {})
    check_shard_files(root, [s for s, n in counts.items() if n > 0])
    parts = {s: ShardSplit(split_dir(root, s), n) for s, n in counts.items() if n > 0}
    source = f"shards {root}"
    if not any(s in parts for s in PRETRAIN_SPLITS):
        raise DataError(f"data.root={root}: the shards hold no training images ({counts})")
    return DataSplits(
        parts.get("train"),
        parts.get("test"),
        parts.get("unlabeled"),
        list(manifest.get("classes", [])),
        source,
        list(manifest.get("skipped", [])),
    )


class ViewStream(StreamingDataset):
    """The pretraining shards, each item turned into `(views(image), label)`.

    The views' random draws are seeded from (seed, epoch, index) so that they do not
    depend on the worker, on the order, or on whether the run was resumed.
    """

    def __init__(
        self, input_dir: str, views: Callable[[Any], Any], seed: int, encoded: bool = False
    ) -> None:
        super().__init__(input_dir, shuffle=True, drop_last=True, seed=seed)
        self.views = views
        self.view_seed = int(seed)
        # True: `views` gets the stored bytes where nvJPEG can decode them (augment.decode=gpu,
        # simclr.data.encoded), decoded as decode_rgb does (no EXIF rotation) otherwise.
        self.encoded = bool(encoded)

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        position = int(getattr(index, "index", index))
        if self.encoded:
            image: Any = read_encoded(bytes(item["image"]), str(item["name"]), upright=False)
        else:
            image = decode_rgb(item["image"], item["name"])
        with torch.random.fork_rng(devices=[]):
            seed = derived_seed(self.view_seed, int(self.current_epoch), position)
            torch.random.default_generator.manual_seed(seed)
            return self.views(image), int(item["label"])


class ResumableStreamLoader(StreamingDataLoader):
    """LitData's loader, whose state says "next epoch" once Lightning ended an epoch.

    LitData resumes inside the epoch it was in whenever fewer images were yielded
    than the epoch holds, and keeps doing so until an epoch is iterated to its end.
    A Lightning epoch cut short by ``trainer.limit_train_batches`` ends before that;
    the uninterrupted run starts a new epoch there. :class:`StreamLoaderState` marks
    the end of each Lightning epoch, after which the state and the next iteration
    are those of a new epoch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch_ended = False

    def __iter__(self) -> Iterator[Any]:
        if self.epoch_ended:
            # LitData keeps replaying a resumed epoch until one is iterated to its end;
            # Lightning has ended this one (maybe early): the next is a new epoch.
            self.restore = False
        self.epoch_ended = False
        yield from super().__iter__()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.epoch_ended:
            state["num_samples_yielded"] = 0  # load_state_dict then starts the next epoch
        return state


def stream_train_loader(
    data_cfg: DataConfig,
    views: Callable[[Any], Any],
    seed: int,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> StreamingDataLoader:
    """The shuffled, rank-sharded pretraining loader of `data=stream`.

    A `collate_fn` (simclr.data.encoded.EncodedCollate) makes it yield file bytes for
    decoding on the device.
    """
    splits = read_manifest(str(data_cfg.root)).get("counts", {})
    split = next(s for s in PRETRAIN_SPLITS if splits.get(s))
    encoded = collate_fn is not None
    dataset = ViewStream(split_dir(str(data_cfg.root), split), views, seed, encoded=encoded)
    workers = int(data_cfg.num_workers)
    return ResumableStreamLoader(
        dataset,
        batch_size=int(data_cfg.batch_size),
        collate_fn=collate_fn,
        num_workers=workers,
        drop_last=bool(data_cfg.drop_last),
        pin_memory=bool(data_cfg.pin_memory) and torch.cuda.is_available(),
        # Workers hold a copy of the dataset, epoch included: new workers each epoch.
        persistent_workers=False,
    )


class StreamLoaderState(Callback):
    """LitData's loader state across a resume, for `data=stream`.

    Lightning keeps a stateful loader's state in the checkpoint's loop state, but
    restores it only when it creates the loader after loading the checkpoint, which
    ``configure_optimizers`` asking for ``trainer.estimated_stepping_batches`` prevents
    (Lightning issue #20550), and never after a finished epoch (then LitData's epoch
    count would start again, and with it another shuffle). This callback keeps the
    state as its own (``state_dict``, saved with every checkpoint) and hands it to the
    loader before the first batch is drawn. It also marks the end of each epoch, so
    that a checkpoint taken there resumes at the next one (:class:`ResumableStreamLoader`).
    """

    def __init__(self) -> None:
        self._loader: ResumableStreamLoader | None = None
        self._to_load: dict[str, Any] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        self._loader = loader if isinstance(loader, ResumableStreamLoader) else None
        if self._loader is not None and self._to_load is not None:
            self._loader.load_state_dict(self._to_load)
        self._to_load = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._loader is not None:
            self._loader.epoch_ended = True

    def state_dict(self) -> dict[str, Any]:
        return {"loader": self._loader.state_dict()} if self._loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_load = state_dict.get("loader")
