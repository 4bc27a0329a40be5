"""SimCLRModule scales the learning rate for the global batch the Trainer runs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from simclr.training.module import SimCLRModule

SMALL = ["encoder=resnet18", "encoder.stem=cifar", "head.hidden_dim=16", "data.batch_size=32"]


def optimizer_lr(cfg, devices: int, nodes: int, accumulate: int) -> float:
    module = SimCLRModule(cfg)
    # Only what configure_optimizers reads from the Trainer.
    module._trainer = SimpleNamespace(  # type: ignore[assignment]
        num_devices=devices,
        num_nodes=nodes,
        accumulate_grad_batches=accumulate,
        estimated_stepping_batches=100,
        max_epochs=10,
        train_dataloader=object(),  # loaded: configure_optimizers reads the batch count
        num_training_batches=10,
    )
    setup = module.configure_optimizers()
    lrs = {g["initial_lr"] for g in setup["optimizer"].param_groups}
    assert len(lrs) == 1
    return lrs.pop()


@pytest.mark.parametrize("devices,nodes,accumulate", [(1, 1, 1), (4, 2, 3), (8, 1, 1)])
def test_linear_scaling_uses_batch_times_devices_nodes_accumulation(
    compose_config, devices, nodes, accumulate
):
    cfg = compose_config(*SMALL, "optim.lr=0.3", "optim.lr_scaling=linear")
    expected = 0.3 * 32 * devices * nodes * accumulate / 256
    assert optimizer_lr(cfg, devices, nodes, accumulate) == pytest.approx(expected)


def test_sqrt_scaling_uses_the_global_batch_too(compose_config):
    cfg = compose_config(*SMALL, "optim.lr=0.075", "optim.lr_scaling=sqrt")
    assert optimizer_lr(cfg, 4, 2, 1) == pytest.approx(0.075 * math.sqrt(32 * 8))
