"""GPU paths: bf16 loss, channels_last + torch.compile + GPU views through a real fit.

Skipped without CUDA. (The GPU view statistics test is in test_augment_gpu.py.)
"""

from __future__ import annotations

import pytest
import torch

from simclr.losses.ntxent import nt_xent
from simclr.models import build_encoder, build_head, feature_dim
from tests.conftest import quiet_trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

SMALL = ["encoder=resnet18", "encoder.stem=cifar", "head.hidden_dim=64"]


def test_bf16_loss_is_finite_and_close_to_float32(compose_config):
    cfg = compose_config(*SMALL)
    torch.manual_seed(0)
    encoder = build_encoder(cfg.encoder).cuda()
    head = build_head(cfg.head, feature_dim(encoder)).cuda()
    views = torch.randn(2, 64, 3, 32, 32, device="cuda")

    def loss(bf16: bool) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            z = head(encoder(views.flatten(0, 1)))
            return nt_xent(*z.chunk(2), temperature=0.1)

    full, mixed = loss(False), loss(True)
    assert mixed.dtype == torch.float32  # the loss itself runs outside autocast
    assert torch.isfinite(mixed)
    assert mixed.item() == pytest.approx(full.item(), rel=0.02)
    mixed.backward()
    grads = [p.grad for p in encoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_channels_last_compile_bf16_and_gpu_views_train(compose_config, labeled_folder):
    from simclr.data.datamodule import SimCLRDataModule
    from simclr.training.module import SimCLRModule

    cfg = compose_config(
        *SMALL,
        "experiment=none",
        "data=folder",
        f"data.root={labeled_folder}",
        "data.image_size=32",
        "data.batch_size=8",
        "data.num_workers=0",
        "encoder.channels_last=true",
        "encoder.compile=true",
        "augment.backend=gpu",
    )
    module = SimCLRModule(cfg)
    trainer = quiet_trainer(accelerator="gpu", devices=1, precision="bf16-mixed", max_steps=3)
    trainer.fit(module, datamodule=SimCLRDataModule(cfg.data, cfg.augment))
    assert trainer.global_step == 3
    # The step's forward was compiled (inductor), timed in the first step.
    assert module.step_choice.compile and module.compile_seconds is not None
    assert not any("_orig_mod" in k for k in module.state_dict())
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    conv = module.encoder.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
