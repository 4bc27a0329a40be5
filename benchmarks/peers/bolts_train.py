"""Worker (bolts' env): lightning-bolts 0.7 SimCLR on an image folder; prints one JSON line.

    PYTHONPATH=benchmarks benchmarks/.peers/bolts/bin/python benchmarks/peers/bolts_train.py \\
        --data DIR --out DIR

bolts' documented CIFAR-10 recipe (its `cli_main` for dataset=cifar10 and its README
command): its own ResNet-18 with first_conv=False, maxpool1=False (our CIFAR stem),
projection 512-512-128, LARS with lr 1.5 and BN/bias excluded from weight decay,
temperature 0.5, views without blur and colour strength 0.5, cifar10 normalisation.
bolts' transform also makes a third view for its online evaluator; no evaluator runs
here, so the worker keeps the two training views only (the same work as ours).
"""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch
from peer_common import ImageFiles, fit_and_report, image_root, parse_args, training_loader

warnings.filterwarnings("ignore")

from pl_bolts.models.self_supervised import SimCLR  # noqa: E402
from pl_bolts.transforms.dataset_normalizations import cifar10_normalization  # noqa: E402
from pl_bolts.transforms.self_supervised.simclr_transforms import (  # noqa: E402
    SimCLRTrainDataTransform,
)

NO_VIEW = torch.empty(0)


class TwoTrainingViews:
    """bolts' training views, with the unused online-evaluator view left out."""

    def __init__(self, bolts_transform: SimCLRTrainDataTransform) -> None:
        self.view = bolts_transform.train_transform

    def __call__(self, image):  # type: ignore[no-untyped-def]
        return self.view(image), self.view(image), NO_VIEW


def main() -> None:
    args = parse_args(__doc__ or "")
    pl.seed_everything(args.seed)
    root = image_root(args.data)
    transform = SimCLRTrainDataTransform(
        input_height=args.image_size,
        gaussian_blur=False,
        jitter_strength=0.5,
        normalize=cifar10_normalization(),
    )
    dataset = ImageFiles(root, TwoTrainingViews(transform))
    loader = training_loader(dataset, args)
    # A short run gets a warm-up of 1/6 of its epochs (bolts' default of 10 is meant for
    # 800 epochs), as our digits preset has 2 of 12.
    warmup_epochs = max(1, round(args.epochs / 6))
    model = SimCLR(
        gpus=1 if args.accelerator != "cpu" else 0,
        num_samples=len(dataset),
        batch_size=args.batch_size,
        dataset="cifar10",
        arch="resnet18",
        hidden_mlp=512,
        feat_dim=128,
        first_conv=False,
        maxpool1=False,
        optimizer="lars",
        learning_rate=1.5,
        exclude_bn_bias=True,
        temperature=0.5,
        warmup_epochs=warmup_epochs,
        max_epochs=args.epochs,
    )
    fit_and_report("bolts", args, model, loader)


if __name__ == "__main__":
    main()
