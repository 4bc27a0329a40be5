"""The online linear probe, trained at logging steps, makes the updates of a probe trained
at every step: same batches, same order, unlabeled batches skipped, partly labeled
ones on their labeled rows."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from simclr.training.callbacks.online import OnlineLinearProbe

DIM, CLASSES, ROWS, LR = 6, 3, 5, 0.05


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    labels = [
        [0, 1, 2, 0, 1],
        [-1, -1, -1, -1, -1],  # no labeled row: no step
        [2, -1, 0, -1, 1],  # a step on the three labeled rows
        [1, 1, 0, 2, 2],
        [-1, 0, -1, -1, -1],
        [0, 2, 1, 1, 0],
        [2, 0, -1, 1, 0],
    ]
    return [(torch.randn(ROWS, DIM, generator=g), torch.tensor(y)) for y in labels]


def reference() -> tuple[list[dict[str, torch.Tensor]], list[float]]:
    """A probe stepped batch by batch: its weights after each batch, and its losses."""
    torch.manual_seed(0)
    classifier = nn.Linear(DIM, CLASSES)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=LR)
    after, losses = [], []
    for features, labels in batches():
        keep = labels >= 0
        if keep.any():
            loss = nn.functional.cross_entropy(classifier(features[keep]), labels[keep])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        after.append({k: v.clone() for k, v in classifier.state_dict().items()})
    return after, losses


class Module:
    """What the probe uses of the LightningModule: its device and `log`."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.logged: dict[str, Any] = {}

    def log(self, name: str, value: Any, **_: Any) -> None:
        self.logged[name] = value


def trainer(logs: bool) -> Any:
    return SimpleNamespace(_logger_connector=SimpleNamespace(should_update_logs=logs))


def test_updates_at_logging_steps_equal_step_by_step_updates():
    expected, losses = reference()
    module = Module()
    probe = OnlineLinearProbe(DIM, CLASSES, lr=LR)
    torch.manual_seed(0)
    probe.setup(trainer(False), module, "fit")  # type: ignore[arg-type]
    assert probe.classifier is not None
    first = {k: v.clone() for k, v in probe.classifier.state_dict().items()}
    logging_steps = {2, 5}  # 0-based: after the 3rd and the 6th batch
    for i, (features, labels) in enumerate(batches()):
        outputs = {"loss": torch.tensor(0.0), "features": features, "labels": labels}
        probe.on_train_batch_end(trainer(i in logging_steps), module, outputs, None, i)  # type: ignore[arg-type]
        now = probe.classifier.state_dict()
        caught_up = max([s for s in logging_steps if s <= i], default=None)
        want = first if caught_up is None else expected[caught_up]
        for key, value in want.items():
            torch.testing.assert_close(now[key], value, rtol=0, atol=0, msg=f"batch {i} {key}")
    # A checkpoint holds the probe as of its step: state_dict catches up first.
    state = probe.state_dict()["classifier"]
    for key, value in expected[-1].items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    probe.on_train_epoch_end(trainer(False), module)  # type: ignore[arg-type]
    mean = module.logged["online_probe/train_loss"]
    assert float(mean) == pytest.approx(torch.tensor(losses).mean().item(), rel=1e-6)


def test_the_kept_batches_are_bounded():
    probe = OnlineLinearProbe(DIM, CLASSES, lr=LR, max_pending=2)
    probe.setup(trainer(False), Module(), "fit")  # type: ignore[arg-type]
    for i, (features, labels) in enumerate(batches()[:3]):
        outputs = {"features": features, "labels": labels}
        probe.on_train_batch_end(trainer(False), Module(), outputs, None, i)  # type: ignore[arg-type]
        assert len(probe._pending) == (i + 1) % 2
