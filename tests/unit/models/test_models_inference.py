"""encode: a model over a loader in eval mode, float32, the model's mode restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from simclr.models.encoder import infer_feature_dim
from simclr.models.inference import encode


def small_net() -> nn.Module:
    # BatchNorm and dropout behave differently in train and eval mode, so an encode
    # that forgot model.eval() would not match the reference below.
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten()
    )


def images_and_labels(n: int = 10) -> TensorDataset:
    gen = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 3, 6, 6, generator=gen), torch.arange(n))


def test_encode_matches_a_loop_over_the_items_one_at_a_time():
    model, data = small_net(), images_and_labels()
    with torch.no_grad():  # the stats of a trained net, not the init's zeros and ones
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    got = encode(model.train(), DataLoader(data, batch_size=4))  # (images, labels) batches
    model.eval()
    with torch.no_grad():
        want = torch.stack([model(x.unsqueeze(0))[0] for x, _ in data])
    assert got.shape == (10, 4 * 4 * 4) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # Plain tensor batches give the same rows.
    only_images = [data.tensors[0][i : i + 3] for i in range(0, 10, 3)]
    torch.testing.assert_close(encode(model, only_images), got)


def test_a_model_in_train_mode_is_back_in_train_mode_after_encode():
    model = small_net().train()
    encode(model, DataLoader(images_and_labels(), batch_size=5))
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    encode(model, DataLoader(images_and_labels(), batch_size=5))
    assert not any(m.training for m in model.modules())


def test_mode_is_restored_when_the_forward_pass_fails():
    model = small_net().train()
    with pytest.raises(RuntimeError):
        encode(model, [torch.zeros(2, 5, 6, 6)])  # 5 channels into a 3-channel conv
    assert model.training


def test_output_is_float32_without_autograd_and_statistics_unchanged():
    model = small_net().double().train()
    before = model[1].running_mean.clone()
    out = encode(model, [torch.randn(3, 3, 6, 6, dtype=torch.float64)])
    assert out.dtype == torch.float32 and not out.requires_grad and out.device.type == "cpu"
    torch.testing.assert_close(model[1].running_mean, before, rtol=0, atol=0)
    assert encode(model, []).shape == (0, 0)


def test_infer_feature_dim_measures_the_output_width_and_keeps_the_mode():
    model = small_net().train()
    assert infer_feature_dim(model, 6) == 4 * 4 * 4
    assert model.training
