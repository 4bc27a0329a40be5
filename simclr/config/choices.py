"""Every list of allowed values a config key offers, each defined once.

The schemas (:mod:`simclr.config.schema`) type their fields with these enums, so
Hydra and OmegaConf refuse any other value while composing, with the key and the
choices named (the console turns that into one line). The builders dispatch on the
same members and check the arguments of their public functions against them.

A member is a ``str`` named by its value: YAML files and the command line keep
writing plain strings (``optim=lars``, ``optim.name=sgd``), comparisons with strings
hold, and ``str()``, f-strings, ``repr()`` and JSON give the bare value.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from simclr.errors import ConfigError

C = TypeVar("C", bound="Choice")


class Choice(str, Enum):
    """A `str` enum whose members print as their values."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)

    def __repr__(self) -> str:
        # Error messages write `key={value!r}`; a member reads like the string it stands for.
        return repr(str(self.value))

    @classmethod
    def listed(cls) -> str:
        """The allowed values, comma-separated, in definition order."""
        return ", ".join(str(m.value) for m in cls)

    @classmethod
    def parse(cls: type[C], value: object, key: str) -> C:
        """The member for `value`; a one-line ConfigError naming `key` otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r} is not one of {cls.listed()}") from None


class DataName(Choice):
    """`data.name`: the data set (see simclr/data/)."""

    digits = "digits"
    cifar10 = "cifar10"
    cifar100 = "cifar100"
    stl10 = "stl10"
    folder = "folder"
    stream = "stream"  # LitData shards written by simclr-prepare


class OnBadImage(Choice):
    """`data.on_bad_image`: what an unreadable image file does to the run."""

    fail = "fail"
    skip = "skip"


class AugmentBackend(Choice):
    """`augment.backend`: where the views are made."""

    auto = "auto"  # gpu on a CUDA device, else cpu (simclr/config/step.py)
    cpu = "cpu"  # torchvision v2 in the loader workers
    gpu = "gpu"  # crops in the workers, colour and blur batched on the device (kornia)


class AugmentDecode(Choice):
    """`augment.decode`: where JPEG files are decoded (simclr/data/encoded.py)."""

    auto = "auto"  # gpu with GPU views on a CUDA device for folder and stream data, else cpu
    cpu = "cpu"  # PIL in the loader workers
    gpu = "gpu"  # the workers hand over the file bytes; nvJPEG decodes each batch on the device


class EncoderArch(Choice):
    """`encoder.arch`: a torchvision ResNet depth, or any timm backbone."""

    resnet18 = "resnet18"
    resnet34 = "resnet34"
    resnet50 = "resnet50"
    resnet101 = "resnet101"
    resnet152 = "resnet152"
    timm = "timm"


class EncoderStem(Choice):
    """`encoder.stem` of a ResNet."""

    imagenet = "imagenet"  # 7x7/2 convolution + max-pool
    cifar = "cifar"  # 3x3/1 convolution, no max-pool
    # 7x7/2 convolution, no max-pool: lightning-bolts' STL-10 recipe (its checkpoints load).
    imagenet_nomaxpool = "imagenet_nomaxpool"


class HeadVersion(Choice):
    """`head.version`: the projection MLP's depth."""

    v1 = "v1"  # 2 layers
    v2 = "v2"  # 3 layers (SimCLRv2)


class LossName(Choice):
    """`loss.name`."""

    ntxent = "ntxent"


class OptimName(Choice):
    """`optim.name`."""

    lars = "lars"
    sgd = "sgd"
    adamw = "adamw"


class LrScaling(Choice):
    """`optim.lr_scaling`: how the base rate grows with the global batch B."""

    linear = "linear"  # lr * B / 256
    sqrt = "sqrt"  # lr * sqrt(B)
    none = "none"  # lr


class Schedule(Choice):
    """`optim.schedule` after the linear warm-up."""

    cosine = "cosine"
    constant = "constant"


class LoggerName(Choice):
    """`trainer.logger`: one of these, or a list of them (see simclr/training/loggers.py)."""

    csv = "csv"
    tensorboard = "tensorboard"
    mlflow = "mlflow"
    wandb = "wandb"
    none = "none"


class WandbMode(Choice):
    """`trainer.wandb_mode`."""

    offline = "offline"  # nothing is sent; `wandb sync` uploads later, if wanted
    online = "online"
    disabled = "disabled"


class ResumeMode(Choice):
    """`resume`: whether a run directory's last checkpoint is continued."""

    never = "never"
    auto = "auto"


class Evaluator(Choice):
    """`eval.evaluators` and `eval.headline_evaluator`."""

    linear = "linear"
    mlp = "mlp"
    knn = "knn"
    finetune = "finetune"


class Baseline(Choice):
    """`eval.baselines`: reference representations scored like the encoder."""

    random_init = "random_init"
    raw_pixels = "raw_pixels"
    supervised = "supervised"


class DistillViews(Choice):
    """`distill.views`: the one view teacher and student both see of each image."""

    crop_flip = "crop_flip"  # random crop + flip (SimCLRv2 section 2.3)
    simclr = "simclr"  # the pretraining views
    none = "none"  # the evaluation transform


class EmbeddingMethod(Choice):
    """`eval.embedding_method` of the report's 2-D feature plot."""

    pca = "pca"
    tsne = "tsne"
