"""Feature extraction on training's fast path: bf16 autocast + channels_last gives
float32 features close to float32's, leaves the model alone, and is its own cache entry."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from simclr.config.hardware import HardwareChoice
from simclr.evaluation.features import cached_features
from simclr.models import build_encoder
from simclr.models.inference import encode

BF16_NHWC = HardwareChoice("cpu", "bf16-mixed", "test", True, "test")
FP32 = HardwareChoice("cpu", "32-true", "test", False, "test")


def trained_like_encoder() -> torch.nn.Module:
    """A CIFAR-stem ResNet-18 whose BatchNorm statistics come from data, as after training."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    cfg = SimpleNamespace(
        arch="resnet18",
        stem="cifar",
        timm_name=None,
        zero_init_residual=False,
        sync_batchnorm=False,
    )
    encoder = build_encoder(cfg)
    encoder.train()
    with torch.no_grad():
        for _ in range(3):
            encoder(torch.randn(16, 3, 16, 16))
    return encoder.eval()


def images(n: int = 24) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_bf16_channels_last_features_are_float32_and_close_to_float32_ones():
    encoder, x = trained_like_encoder(), images()
    batches = list(x.split(8))
    reference = encode(encoder, batches)
    fast = encode(encoder, batches, autocast=torch.bfloat16, channels_last=True)
    assert fast.dtype == torch.float32 and fast.shape == reference.shape
    cosine = torch.nn.functional.cosine_similarity(fast, reference, dim=1)
    assert cosine.min() > 0.999, cosine.min()
    relative = (fast - reference).norm(dim=1) / reference.norm(dim=1)
    assert relative.max() < 0.05, relative.max()
    # bf16 really ran: the features are not float32's to the bit.
    assert not torch.equal(fast, reference)


def test_fast_path_leaves_the_model_as_it_was():
    encoder = trained_like_encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    encode(encoder, [images(8)], autocast=torch.bfloat16, channels_last=True)
    assert not encoder.training
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), name
        assert value.is_contiguous(), name


def test_channels_last_alone_changes_nothing_but_the_layout():
    encoder, x = trained_like_encoder(), images(8)
    a = encode(encoder, [x])
    b = encode(encoder, [x], channels_last=True)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_features_get_their_own_cache_entry(tmp_path):
    from types import SimpleNamespace

    encoder = trained_like_encoder()
    x = images(12)
    y = torch.arange(12) % 3
    splits = SimpleNamespace(
        train=TensorDataset(x[:8], y[:8]), test=TensorDataset(x[8:], y[8:]), classes=["a", "b", "c"]
    )
    data_cfg = SimpleNamespace(name="digits", num_workers=0)

    def identity(img):
        return img

    def run(hardware):
        return cached_features(
            encoder,
            "model-id",
            "simclr",
            splits,
            data_cfg,
            identity,
            tmp_path,
            batch_size=4,
            hardware=hardware,
        )

    fp32, bf16 = run(FP32), run(BF16_NHWC)
    assert len(list(tmp_path.glob("simclr-*.npz"))) == 2
    assert fp32.train_x.dtype == np.float32 and bf16.train_x.dtype == np.float32
    assert not np.array_equal(fp32.train_x, bf16.train_x)
    np.testing.assert_array_equal(fp32.train_y, bf16.train_y)
