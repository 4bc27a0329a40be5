"""Fine-tuning: head first on a frozen encoder, then all layers, early layers slowest."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset

from simclr.config.schema import AugmentConfig, FinetuneConfig
from simclr.data.builtin import ArrayImageDataset
from simclr.data.splits import TransformedDataset
from simclr.data.views import build_eval_transform
from simclr.evaluation.finetune import (
    Classifier,
    discriminative_groups,
    encoder_stages,
    finetune,
    predict_images,
    recalibrate_batchnorm,
    train_phase,
)
from simclr.models import ProjectionHead, build_encoder
from simclr.models.classifier import attach_head, attached_head

SIZE = 8


@pytest.fixture(autouse=True)
def one_thread():
    # Small convolutions on a shared 2-core machine: one thread is many times faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


AUG = OmegaConf.structured(AugmentConfig(mean=[0.5] * 3, std=[0.5] * 3, hflip_p=0.0))
EVAL = build_eval_transform(AUG, SIZE)


def tiny_digits(n: int = 24) -> ArrayImageDataset:
    bunch = load_digits(n_class=3)
    images = np.clip(bunch.images[:n] * 16, 0, 255).astype(np.uint8)
    return ArrayImageDataset(images, bunch.target[:n])


def tiny_model() -> Classifier:
    torch.manual_seed(0)
    encoder = build_encoder(SimpleNamespace(arch="resnet18", stem="cifar"))
    return Classifier(encoder, num_classes=3, feature_dim=encoder.feature_dim)


def loader(dataset) -> DataLoader:
    data = TransformedDataset(dataset, build_eval_transform(AUG, SIZE))
    return DataLoader(data, batch_size=8, shuffle=True, drop_last=True)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module, prefix: str) -> bool:
    after = module.state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


class RecordRates(pl.Callback):
    """The optimizer's peak rate per parameter group, by group name."""

    def __init__(self) -> None:
        self.rates: dict[str, float] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for g in trainer.optimizers[0].param_groups:
            self.rates[g.get("name", "head")] = g["max_lr"]


def test_early_layers_change_only_after_unfreezing_and_learn_slowest():
    model, data = tiny_model(), loader(tiny_digits())
    common = {"lr": 1e-2, "decay": 0.3, "weight_decay": 0.0}
    before = snapshot(model)
    train_phase(model, data, frozen=True, epochs=1, **common)
    # Phase 1: the head moved; no encoder weight and no BatchNorm statistic did.
    assert changed(before, model, "head.")
    assert not changed(before, model, "encoder.")

    after_frozen = snapshot(model)
    rates = RecordRates()
    train_phase(model, data, frozen=False, epochs=1, callbacks=[rates], **common)
    assert changed(after_frozen, model, "encoder.conv1.")
    assert changed(after_frozen, model, "encoder.layer1.")
    # Discriminative rates: the stem slowest, each later stage faster, the head fastest.
    order = [rates.rates[f"stage{i}"] for i in range(5)] + [rates.rates["head"]]
    assert order == sorted(order) and len(set(order)) == len(order)
    np.testing.assert_allclose(order[0], 1e-2 * 0.3**5)


def test_stages_of_a_resnet_cover_every_encoder_parameter_once():
    model = tiny_model()
    stages = encoder_stages(model.encoder)
    assert len(stages) == 5
    ids = [id(p) for s in stages for p in s]
    assert sorted(ids) == sorted(id(p) for p in model.encoder.parameters())
    groups = discriminative_groups(model, 1.0, 0.5)
    assert [g["lr"] for g in groups] == [0.5**5, 0.5**4, 0.5**3, 0.5**2, 0.5, 1.0]


class Colours(Dataset):
    """An easy, separable image problem: class c is an 8x8 image whose channel c is bright."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.labels = np.arange(n) % 3
        pixels = rng.normal(60, 25, (n, SIZE, SIZE, 3))
        pixels[np.arange(n), :, :, self.labels] += 140
        self.images = np.clip(pixels, 0, 255).astype(np.uint8)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[i]), int(self.labels[i])


def test_finetune_and_scratch_baseline_learn_an_easy_problem():
    train, test = Colours(24, seed=0), Colours(30, seed=1)
    cfg = OmegaConf.structured(
        FinetuneConfig(frozen_epochs=1, unfrozen_epochs=1, batch_size=8, lr=1e-2)
    )
    model = tiny_model()
    head = ProjectionHead(512, 64, 16)
    # A stand-in for a pretrained encoder: random weights, but BatchNorm statistics of
    # these images (a fresh encoder's are 0 and 1, which no trained one has).
    recalibrate_batchnorm(torch.nn.Sequential(model.encoder, head), train, EVAL, seed=0)
    encoder = attach_head(model.encoder, head)
    before = snapshot(encoder)
    for pretrained, layer in ((True, 0), (True, None), (False, None)):
        cfg.from_head_layer = layer
        tuned, chosen = finetune(
            encoder, train, list(range(24)), 3, AUG, SIZE, cfg, seed=0, pretrained=pretrained
        )
        pred = predict_images(tuned, test, EVAL, batch_size=16)
        assert pred.shape == (30,)
        # Chance is 1/3: a classifier that learned nothing (or predicts from the wrong
        # weights) fails this.
        assert np.mean(pred == test.labels) >= 0.85, (pretrained, layer)
        assert chosen["lr"] == cfg.lr
        # The default for a 3-layer head is its first layer; the scratch baseline has no head.
        assert chosen["from_head_layer"] == (1 if pretrained and layer is None else 0)
    assert not changed(before, encoder, "")  # fine-tuning works on a copy
    assert not changed(snapshot(head), attached_head(encoder), "")


def test_batchnorm_statistics_are_re_estimated_on_the_images():
    model, data = tiny_model(), tiny_digits()
    transform = build_eval_transform(AUG, SIZE)
    recalibrate_batchnorm(model, data, transform, seed=0)
    images = torch.stack([transform(data[i][0]) for i in range(len(data))])
    with torch.no_grad():
        first = model.encoder.conv1(images)  # what bn1 normalises
    torch.testing.assert_close(model.encoder.bn1.running_mean, first.mean(dim=(0, 2, 3)))
    var = first.var(dim=(0, 2, 3), unbiased=True)
    torch.testing.assert_close(model.encoder.bn1.running_var, var, rtol=1e-4, atol=1e-5)
