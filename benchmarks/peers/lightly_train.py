"""Worker (lightly's env): lightly's SimCLR recipe on an image folder; prints one JSON line.

    PYTHONPATH=benchmarks benchmarks/.peers/lightly/bin/python benchmarks/peers/lightly_train.py \\
        --data DIR --out DIR

lightly's documented SimCLR set-up (its SimCLR example and CIFAR-10 benchmark):
`LightlyDataset` over the folder, `SimCLRTransform(input_size, cj_strength=0.5,
gaussian_blur=0.0)`, `SimCLRProjectionHead(512, 512, 128)`, `NTXentLoss()`
(temperature 0.5), SGD with lr 0.06 x batch/128, momentum 0.9, weight decay 5e-4 and
a cosine schedule over the epochs. The backbone is torchvision's ResNet-18 with the
CIFAR stem (3x3/1 conv, no max-pool), the same network as ours and bolts'.
`--save-encoder` writes the backbone's state dict in torchvision's key layout.
"""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch
import torchvision
from peer_common import fit_and_report, image_root, parse_args, training_loader
from torch import nn

warnings.filterwarnings("ignore")

from lightly.data import LightlyDataset  # noqa: E402
from lightly.loss import NTXentLoss  # noqa: E402
from lightly.models.modules import SimCLRProjectionHead  # noqa: E402
from lightly.transforms import SimCLRTransform  # noqa: E402


def cifar_resnet18() -> nn.Module:
    """torchvision ResNet-18 with a 3x3 stride-1 first conv, no max-pool and no fc."""
    model = torchvision.models.resnet18()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return model


class LightlySimCLR(pl.LightningModule):
    def __init__(self, batch_size: int, max_epochs: int) -> None:
        super().__init__()
        self.backbone = cifar_resnet18()
        self.projection_head = SimCLRProjectionHead(512, 512, 128)
        self.criterion = NTXentLoss()
        self.batch_size = batch_size
        self.max_epochs = max_epochs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.backbone(x).flatten(start_dim=1))

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        (x0, x1) = batch[0]
        loss = self.criterion(self.forward(x0), self.forward(x1))
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        lr = 0.06 * self.batch_size / 128
        optim = torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optim, self.max_epochs)
        return [optim], [scheduler]


def main() -> None:
    args = parse_args(__doc__ or "")
    pl.seed_everything(args.seed)
    root = image_root(args.data)
    transform = SimCLRTransform(input_size=args.image_size, cj_strength=0.5, gaussian_blur=0.0)
    dataset = LightlyDataset(input_dir=str(root), transform=transform)
    loader = training_loader(dataset, args)
    model = LightlySimCLR(args.batch_size, args.epochs)
    fit_and_report("lightly", args, model, loader)
    if args.save_encoder:
        torch.save(model.backbone.state_dict(), args.save_encoder)


if __name__ == "__main__":
    main()
