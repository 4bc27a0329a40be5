"""`encoder.compile`: the compiled step trains as the eager one does, keeps checkpoint key
names, and its compile time is measured inside `trainer.max_time`.

The compiled runs use `backend="aot_eager"`: the same graph capture (TorchDynamo) and
joint forward-backward graph (AOTAutograd) as inductor, without generating and
compiling C++ kernels, which takes minutes on this 2-core machine and is what
`encoder.compile=auto` avoids on the CPU. Inductor itself is exercised on CUDA by
tests/integration/test_gpu.py and by benchmarks/b5_gpu.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from simclr.training.callbacks.budget import budget_callbacks
from simclr.training.module import SimCLRModule
from tests.conftest import quiet_trainer

BATCH, SIZE, STEPS = 4, 16, 3


class Views(Dataset):
    """Fixed pairs of 3 x SIZE x SIZE views (no random augmentation), label 0."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.v1 = torch.randn(n, 3, SIZE, SIZE, generator=g)
        self.v2 = torch.randn(n, 3, SIZE, SIZE, generator=g)

    def __len__(self) -> int:
        return len(self.v1)

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        return (self.v1[i], self.v2[i]), 0


class Graphs:
    """A torch.compile backend: aot_eager, keeping each graph TorchDynamo captured."""

    def __init__(self) -> None:
        self.captured: list[torch.fx.GraphModule] = []

    def backend(self, gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> object:
        from torch._dynamo.backends.registry import lookup_backend

        self.captured.append(gm)
        return lookup_backend("aot_eager")(gm, example_inputs)


graphs = Graphs()


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[SimCLRModule, list[float], object]]:
    """The same module trained STEPS steps eagerly and compiled (losses, timer)."""
    from hydra import compose, initialize_config_dir

    from simclr.config import register_configs
    from simclr.console.app import CONF_DIR

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "experiment=none",
                "encoder=timm",
                "encoder.timm_name=test_resnet",  # a small ResNet with BatchNorm
                "head.hidden_dim=32",
                f"data.batch_size={BATCH}",
                "optim.name=sgd",
                "optim.lr_scaling=none",
                "optim.warmup_epochs=0",
                "trainer.max_time=1h",
                "trainer.accelerator=cpu",
            ],
        )
    torch.manual_seed(0)
    eager = SimCLRModule(cfg)
    compiled = copy.deepcopy(eager)
    compiled.compile_backend = graphs.backend
    compiled.compile_step()
    out = {}
    for name, module in (("eager", eager), ("compiled", compiled)):
        losses: list[float] = []
        log_loss = module.log_loss
        module.log_loss = lambda loss, n, keep=losses, log=log_loss: (  # type: ignore[method-assign]
            keep.append(float(loss.detach())),
            log(loss, n),
        )[1]
        callbacks = budget_callbacks(cfg)  # the Timer of trainer.max_time=1h
        trainer = quiet_trainer(
            accelerator="cpu", precision="32-true", max_steps=STEPS, callbacks=callbacks
        )
        trainer.fit(module, DataLoader(Views(STEPS * BATCH), batch_size=BATCH))
        out[name] = (module, losses, callbacks[0])
    return out


def test_the_compiled_step_trains_as_the_eager_one(trained):
    eager, eager_losses, _ = trained["eager"]
    compiled, compiled_losses, _ = trained["compiled"]
    # One graph, captured once: encoder, head and loss without a graph break.
    assert len(graphs.captured) == 1
    ops = {str(n.target) for n in graphs.captured[0].graph.nodes if n.op == "call_function"}
    assert any("conv2d" in op for op in ops) and any("cross_entropy" in op for op in ops), ops
    assert len(eager_losses) == len(compiled_losses) == STEPS
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5)
    # Equal weights after STEPS SGD steps: the gradients of every step agreed.
    for (name, a), b in zip(
        eager.state_dict().items(), compiled.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


def test_checkpoints_keep_their_key_names(trained, tmp_path):
    eager, _, _ = trained["eager"]
    compiled, _, _ = trained["compiled"]
    assert list(compiled.state_dict()) == list(eager.state_dict())
    path = tmp_path / "compiled.ckpt"
    compiled.trainer.save_checkpoint(path)
    keys = torch.load(path, map_location="cpu", weights_only=True)["state_dict"].keys()
    assert not [k for k in keys if "_orig_mod" in k]
    assert set(keys) == set(eager.state_dict())


def test_the_compile_time_is_measured_inside_the_budget(trained):
    eager, _, _ = trained["eager"]
    compiled, _, timer = trained["compiled"]
    assert eager.compile_seconds is None
    assert compiled.compile_seconds is not None and compiled.compile_seconds > 0
    # The budget's clock started before the first (compiling) step.
    assert timer.time_elapsed("train") >= compiled.compile_seconds
