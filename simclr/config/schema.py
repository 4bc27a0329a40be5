"""The run config's schema: one dataclass per group (every default, once), and its typed boundary.

The defaults are defined here only; a YAML file in conf/ holds what differs from them.
A key with a fixed list of values is typed with its enum from
:mod:`simclr.config.choices`; range checks a type cannot express live in
:mod:`simclr.config.validate`. `conf/config.yaml` lists `simclr_schema` (registered
by :func:`register_configs`) first in its defaults, so every group file is merged
into a typed, struct-mode node: unknown keys and values of the wrong type fail at
composition, before any data is read. :func:`typed_config` lays a saved config
over these defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from simclr.config.choices import (
    AugmentBackend,
    AugmentDecode,
    Baseline,
    DataName,
    DistillViews,
    EmbeddingMethod,
    EncoderArch,
    EncoderStem,
    Evaluator,
    HeadVersion,
    LossName,
    LrScaling,
    OnBadImage,
    OptimName,
    ResumeMode,
    Schedule,
    WandbMode,
)
from simclr.config.resolvers import literal, register_resolvers

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass
class DataConfig:
    """Where the images come from and how they are batched."""

    name: DataName = DataName.digits
    root: str | None = None  # local directory for cifar*/stl10/folder; shards (or URI): stream
    image_size: int = 32  # side of the square views fed to the encoder
    # Progressive resizing (simclr/data/resolution.py): views grow from start_size px to
    # image_size, the last full_size_share of the run at image_size; null: fixed size.
    start_size: int | None = None
    full_size_share: float = 0.25
    batch_size: int = 256  # per device
    num_workers: int = 2
    download: bool = False  # never possible offline; asking for it is an error
    split_seed: int = 0  # digits: stratified train/test split
    test_fraction: float = 0.3  # digits only
    drop_last: bool = True
    pin_memory: bool = True
    persistent_workers: bool = True
    on_bad_image: OnBadImage = OnBadImage.fail
    # An image with more pixels is a bad image (a "decompression bomb", see on_bad_image);
    # null: no limit. Default: PIL's own Image.MAX_IMAGE_PIXELS (simclr/data/images.py).
    max_image_pixels: int | None = 89_478_485
    stl10_unlabeled: bool = True  # stl10: pretrain on train+unlabeled


@dataclass
class AugmentConfig:
    """The SimCLR view pipeline (Chen et al. 2020, appendix A)."""

    name: str = "imagenet"
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    hflip_p: float = 0.5
    jitter_strength: float = 1.0  # s: brightness/contrast/saturation 0.8s, hue 0.2s
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5  # 0 turns blur off (the CIFAR recipe)
    blur_kernel_fraction: float = 0.1  # kernel side as a fraction of image_size
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    eval_resize_fraction: float = 1.0  # eval: resize to size/fraction, then center-crop
    # auto: gpu on CUDA, else cpu; decode auto: on the GPU with GPU views and image files
    # on CUDA (simclr/config/step.py).
    backend: AugmentBackend = AugmentBackend.auto
    decode: AugmentDecode = AugmentDecode.auto


@dataclass
class EncoderConfig:
    """The backbone whose features are the representation."""

    arch: EncoderArch = EncoderArch.resnet50
    stem: EncoderStem = EncoderStem.imagenet
    timm_name: str | None = None  # with arch=timm, any timm model name
    zero_init_residual: bool = False
    sync_batchnorm: bool = False
    # auto | true | false; auto: true where NHWC is faster (simclr/config/hardware.py).
    # `Any`: OmegaConf 2.3 has no Union of a bool and a string.
    channels_last: Any = "auto"
    # auto | true | false: torch.compile of the step's forward (encoder, head, loss); auto:
    # on CUDA, off elsewhere (simclr/config/step.py). `Any`, as for channels_last.
    compile: Any = "auto"


@dataclass
class HeadConfig:
    """Projection MLP between the features and the loss."""

    version: HeadVersion = HeadVersion.v2
    hidden_dim: int | None = None  # None: the encoder's feature dimension
    output_dim: int = 128
    batch_norm: bool = True


@dataclass
class LossConfig:
    """NT-Xent."""

    name: LossName = LossName.ntxent
    temperature: float = 0.5
    gather: bool = True  # use every rank's projections as negatives
    skip_nonfinite: bool = False  # skip (and count) a step whose loss is NaN/inf
    # Gradient caching (simclr/losses/gradcache.py): views per encoder pass, the loss still on
    # the full batch; 0 or null: off (one pass over all 2 x batch_size views).
    chunk_size: int | None = None


@dataclass
class OptimConfig:
    """Optimizer, learning-rate scaling and schedule."""

    name: OptimName = OptimName.lars
    lr: float = 0.3  # base rate, scaled by `lr_scaling`
    lr_scaling: LrScaling = LrScaling.linear
    weight_decay: float = 1e-6
    momentum: float = 0.9
    trust_coefficient: float = 0.001
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adamw
    exclude_bn_bias: bool = True  # no weight decay and no LARS scaling for BN and biases
    warmup_epochs: float = 10.0
    schedule: Schedule = Schedule.cosine
    final_lr_fraction: float = 0.0


@dataclass
class TrainerConfig:
    """Arguments passed to Lightning's Trainer (and a few around it)."""

    max_epochs: int = 100
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    # auto: bf16-mixed where bf16 runs natively, else 32-true (simclr/config/hardware.py)
    precision: str = "auto"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    deterministic: bool = False
    log_every_n_steps: int = 10
    limit_train_batches: Any = None
    # Wall-clock budget of pretraining: Lightning's DD:HH:MM:SS, or 20m, 1h30m, 90s, 2d.
    # The LR schedule is planned to end at the budget (simclr/training/callbacks/budget.py).
    max_time: str | None = None
    enable_progress_bar: bool = True
    enable_model_summary: bool = False  # Lightning's layer table; on with -v
    # One name or a list (`trainer.logger=[csv,mlflow]`) of LoggerName values. `Any`:
    # OmegaConf 2.3 has no Union of a string and a list; validate_config checks the names.
    logger: Any = field(default_factory=lambda: ["csv"])
    mlflow_tracking_uri: str | None = None  # None: a file store in <run dir>/mlruns
    mlflow_experiment: str = "simclr"
    wandb_mode: str = WandbMode.offline.value  # a WandbMode, checked by validate_config
    wandb_project: str = "simclr"
    checkpoint_every_n_epochs: int = 1


@dataclass
class LinearProbeConfig:
    """Logistic regression on standardised frozen features."""

    Cs: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0])
    cv_folds: int = 3
    max_iter: int = 1000
    default_C: float = 1.0  # used when a class has a single label and no CV split exists


@dataclass
class MlpProbeConfig:
    """One-hidden-layer classifier on frozen features."""

    hidden_dim: int = 512
    epochs: int = 100  # at most; early stopping picks the number
    lr: float = 3e-3  # AdamW, full batch
    weight_decay: float = 1e-4
    patience: int = 20
    holdout_fraction: float = 0.2


@dataclass
class KnnConfig:
    """Cosine-similarity weighted kNN."""

    k: int = 20
    temperature: float = 0.07


@dataclass
class FinetuneConfig:
    """Semi-supervised fine-tuning (frozen head first, then all layers)."""

    frozen_epochs: int = 5
    unfrozen_epochs: int = 20
    lr: float = 1e-3
    lr_decay_per_stage: float = 0.3  # discriminative rates: earlier stages get lr * decay^k
    batch_size: int = 64
    weight_decay: float = 0.01  # AdamW
    lr_finder: bool = False
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.1])
    # 0: from the encoder output; k: on top of the first k projection-head layers, with their
    # pretrained weights; None: 1 for a 3-layer (v2) head, else 0 (SimCLRv2 section 2.2).
    from_head_layer: int | None = None
    fraction: float = 0.01  # simclr-finetune: the share of the train labels it fine-tunes on


@dataclass
class EvalConfig:
    """Few-label evaluation of the frozen encoder."""

    name: str = "default"
    enabled: bool = True
    evaluators: list[Evaluator] = field(
        default_factory=lambda: [Evaluator.linear, Evaluator.knn, Evaluator.mlp]
    )
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0])
    seeds: int = 10  # seeds for fractions below 1
    seeds_full: int = 3  # seeds for fraction 1.0
    baselines: list[Baseline] = field(
        default_factory=lambda: [Baseline.random_init, Baseline.raw_pixels]
    )
    batch_size: int = 256
    data: DataConfig | None = None  # None: the pretraining data's labeled splits
    # None: linear (else the first evaluator) at 10% (else the smallest fraction evaluated);
    # a value set here must be evaluated (see `headline_choice` in simclr/config/validate.py).
    headline_evaluator: Evaluator | None = None
    headline_fraction: float | None = None
    linear: LinearProbeConfig = field(default_factory=LinearProbeConfig)
    mlp: MlpProbeConfig = field(default_factory=MlpProbeConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    embedding_method: EmbeddingMethod = EmbeddingMethod.pca
    raw_pixels_size: int = 16  # raw-pixel baseline: eval image average-pooled to this side
    random_init_seed: int = 0  # weights of the random-init baseline encoder


@dataclass
class OnlineProbeConfig:
    """Linear classifier trained on detached features during pretraining."""

    enabled: bool = True
    lr: float = 1e-3


@dataclass
class MonitorConfig:
    """Representation health logged during pretraining (simclr/training/callbacks/, simclr/evaluation/health.py)."""

    enabled: bool = True  # RankMe, projection std, alignment, uniformity, collapse warning
    knn: bool = True  # online kNN accuracy on the labeled test split (eval.knn's k, T)
    max_samples: int = 8192  # latest training rows per epoch the metrics and the kNN bank use
    collapse_rank_fraction: float = 0.01  # collapse: RankMe < this x min(N, D) (and < 2 always)
    collapse_std_fraction: float = 0.1  # collapse: normalised std < this / sqrt(D)


@dataclass
class DistillConfig:
    """simclr-distill: a student trained on every train image to match a fine-tuned teacher."""

    teacher: str | None = None  # a classifier.ckpt written by simclr-finetune (or its directory)
    temperature: float = 1.0  # tau of both softmaxes (SimCLRv2 section 2.3 uses 1)
    labeled_weight: float = 0.0  # alpha: + alpha x cross-entropy on the teacher's labeled subset
    views: DistillViews = DistillViews.crop_flip


@dataclass
class RunConfig:
    """Everything one `simclr-pretrain` run reads."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    online_probe: OnlineProbeConfig = field(default_factory=OnlineProbeConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    seed: int = 0
    resume: ResumeMode = ResumeMode.never
    checkpoint: str | None = None  # simclr-eval: the checkpoint or run dir to evaluate
    preset: str = "none"  # the experiment preset that set this run up, for the report


def default_config() -> dict[str, Any]:
    """Every RunConfig key with its default, as a plain dict."""
    plain = OmegaConf.to_container(OmegaConf.structured(RunConfig), resolve=True, enum_to_str=True)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}


def root_path(data: DataConfig | None) -> Path | None:
    """The folder `data.root` names, `~` expanded (None where it names none).

    The one reading of a data root as a path, for the checks that keep outputs apart
    from inputs (console preflight, simclr-eval, simclr-distill).
    """
    return Path(str(data.root)).expanduser() if data is not None and data.root else None


def node_of(cfg: object) -> DictConfig:
    """The OmegaConf node behind a config typed as its schema.

    Jobs and builders take the schema types (``RunConfig``, ``DataConfig``, ...):
    what Hydra composes is a struct-mode DictConfig of that schema, which reads like
    the dataclass. OmegaConf's own API (select, update, merge) wants the node.
    """
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a composed config (DictConfig), got {type(cfg).__name__}")
    return cfg


def as_run_config(node: DictConfig) -> RunConfig:
    """A composed DictConfig of the schema, typed as such (where Hydra hands one over)."""
    return cast(RunConfig, node)


def _known(saved: Mapping[str, Any], node: DictConfig) -> dict[str, Any]:
    """`saved` without the keys `node` (a schema node) lacks, recursively."""
    known: dict[str, Any] = {}
    for key, value in saved.items():
        if key not in node:
            continue  # a key an older schema had
        child = node.get(key)  # None for an unset optional group (eval.data): kept whole
        if isinstance(value, Mapping) and isinstance(child, DictConfig):
            known[key] = _known(value, child)
        else:
            known[key] = value
    return known


def typed_config(saved: Mapping[str, Any]) -> RunConfig:
    """A saved config (a checkpoint's plain dict) as a typed RunConfig.

    The one boundary where plain values become typed: laid over the schema's
    defaults, so keys a newer schema added get their defaults and old checkpoints stay
    readable; keys an older schema had are dropped; values are converted to their
    field's type (enum members from their strings) by OmegaConf. Its strings are data
    (:func:`~simclr.config.resolvers.literal`): a saved path holding `${` is text, not an interpolation.
    """
    schema = OmegaConf.structured(RunConfig)
    merged = OmegaConf.merge(schema, _known(literal(saved), schema))
    assert isinstance(merged, DictConfig)
    return as_run_config(merged)


SCHEMA_NAME = "simclr_schema"


def register_configs() -> None:
    """Register the top-level schema and our resolvers (idempotent)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=RunConfig)
    register_resolvers()
