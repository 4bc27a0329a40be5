"""Data sources (digits, torchvision sets, image folders) and the Lightning DataModule."""

from __future__ import annotations

from simclr.config.choices import DataName
from simclr.config.schema import DataConfig
from simclr.data.splits import DataSplits
from simclr.errors import ConfigError


def build_datasets(cfg: DataConfig) -> DataSplits:
    """The splits of the data set described by a `data` config node.

    Fails at once, naming the problem, if the data are missing; never downloads.
    """
    if getattr(cfg, "download", False):
        raise ConfigError(
            "data.download=true: this toolkit never downloads; put the files under data.root"
        )
    name = DataName.parse(cfg.name, "data.name")
    if name is DataName.digits:
        from simclr.data.builtin import digits_splits

        return digits_splits(cfg.test_fraction, cfg.split_seed)
    if name is DataName.folder:
        from simclr.data.folder import folder_splits

        # A config saved before the field existed lacks it: the schema's default then.
        limit = getattr(cfg, "max_image_pixels", DataConfig.max_image_pixels)
        return folder_splits(cfg.root, cfg.on_bad_image, limit)
    if name is DataName.stream:
        from simclr.data.stream import stream_splits

        return stream_splits(cfg.root)
    from simclr.data.builtin import torchvision_splits  # cifar10, cifar100, stl10

    return torchvision_splits(name, cfg.root, bool(cfg.stl10_unlabeled))


__all__ = ["DataSplits", "build_datasets"]
