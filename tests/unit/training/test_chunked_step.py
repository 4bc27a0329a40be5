"""`loss.chunk_size` through Lightning: the same training as without chunks, in chunks.

For a model without batch statistics, optimizer steps taken with gradient caching
(manual optimization) must give the weights that the automatic loop gives with
one pass over the batch; a tiny run through `simclr-pretrain` must train.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from simclr.config import validate_config
from simclr.console import pretrain
from simclr.errors import ConfigError
from simclr.training.module import NonFiniteLossError, SimCLRModule
from tests.support.cli_harness import run_cli, tiny_run

DIM, BATCH = 6, 5  # 10 views per step


class PairSet(Dataset):
    """Fixed pairs of float64 'views' (the augmentations are not under test here)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.v1 = torch.randn(n, DIM, generator=gen, dtype=torch.float64)
        self.v2 = self.v1 + 0.3 * torch.randn(n, DIM, generator=gen, dtype=torch.float64)

    def __len__(self) -> int:
        return self.v1.shape[0]

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        return (self.v1[i], self.v2[i]), -1


def tiny_module(compose_config, chunk_size: int, *overrides: str) -> SimCLRModule:
    """SimCLRModule whose encoder and head are small MLPs without batch statistics."""
    cfg = compose_config(
        "experiment=none",
        "encoder=timm",
        "encoder.timm_name=test_resnet",
        "encoder.channels_last=false",  # the encoder is swapped for an MLP below
        "head.batch_norm=false",
        "optim.name=sgd",
        "optim.lr=0.5",
        "optim.lr_scaling=none",
        "optim.warmup_epochs=0",
        "optim.schedule=cosine",
        f"data.batch_size={BATCH}",
        "online_probe.enabled=false",
        f"loss.chunk_size={chunk_size}",
        "loss.temperature=0.5",
        *overrides,
    )
    module = SimCLRModule(cfg)
    torch.manual_seed(0)
    module.encoder = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 8))
    module.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    return module


def fit(
    module: SimCLRModule, steps: int, data: Dataset, batch_size: int = BATCH, **trainer_args: object
) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        precision="64-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **{"devices": 1, "max_epochs": -1, **trainer_args},  # type: ignore[arg-type]
    )
    trainer.fit(module, DataLoader(data, batch_size=batch_size, drop_last=True))
    return trainer


def test_chunked_steps_give_the_weights_of_full_batch_steps(compose_config) -> None:
    data = PairSet(3 * BATCH)
    plain = tiny_module(compose_config, 0)
    assert plain.automatic_optimization
    fit(plain, 3, data)
    for chunk in (3, 4):
        chunked = tiny_module(compose_config, chunk)
        assert not chunked.automatic_optimization
        trainer = fit(chunked, 3, data)
        assert trainer.global_step == 3
        for (name, a), b in zip(
            plain.state_dict().items(), chunked.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(b, a, rtol=1e-11, atol=1e-13, msg=name)
        # The schedule was stepped as the automatic loop steps it.
        lr = chunked.optimizers().param_groups[0]["lr"]  # type: ignore[union-attr]
        assert lr == pytest.approx(plain.optimizers().param_groups[0]["lr"])  # type: ignore[union-attr]


def test_chunked_clipping_matches_the_trainers_clipping(compose_config) -> None:
    from simclr.training.chunked_step import ManualGradientClipping

    data = PairSet(2 * BATCH)
    plain = tiny_module(compose_config, 0)
    fit(plain, 2, data, gradient_clip_val=0.01)
    chunked = tiny_module(compose_config, 3)
    fit(chunked, 2, data, callbacks=[ManualGradientClipping(0.01)])
    unclipped = tiny_module(compose_config, 3)
    fit(unclipped, 2, data)
    for name, a in plain.state_dict().items():
        torch.testing.assert_close(chunked.state_dict()[name], a, rtol=1e-11, atol=1e-13)
    assert not torch.allclose(
        unclipped.state_dict()["head.2.weight"], plain.state_dict()["head.2.weight"]
    )


def test_loss_decreases_with_chunks(compose_config) -> None:
    data = PairSet(BATCH)  # the same batch every step
    module = tiny_module(compose_config, 3)
    losses: list[float] = []
    original = module.log_loss
    module.log_loss = lambda loss, n: (losses.append(float(loss)), original(loss, n))[1]  # type: ignore[method-assign]
    fit(module, 15, data)
    assert len(losses) == 15
    assert losses[-1] < 0.9 * losses[0], losses


def test_nonfinite_loss_with_chunks_is_skipped_or_reported(compose_config) -> None:
    data = PairSet(2 * BATCH)
    data.v1[BATCH + 1, 0] = float("nan")  # the second batch's loss is NaN
    skipping = tiny_module(compose_config, 3, "loss.skip_nonfinite=true")
    trainer = fit(skipping, -1, data, max_epochs=1)
    assert (trainer.global_step, skipping.skipped_nonfinite) == (1, 1)
    assert all(torch.isfinite(p).all() for p in skipping.parameters())
    with pytest.raises(NonFiniteLossError, match="at global step 1 "):
        fit(tiny_module(compose_config, 3), -1, data, max_epochs=1)


def test_pretrain_cli_trains_with_chunks(labeled_folder, tmp_path, capfd) -> None:
    run = tmp_path / "run"
    argv = [
        *tiny_run(1, 2),
        f"data.root={labeled_folder}",
        f"hydra.run.dir={run}",
        "loss.chunk_size=5",  # 16 views per step: 4 chunks of 4
        "trainer.gradient_clip_val=1.0",
    ]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2
    assert ckpt["hyper_parameters"]["config"]["loss"]["chunk_size"] == 5


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["loss.chunk_size=-1"], "loss.chunk_size=-1 must be >= 2"),
        (["loss.chunk_size=1"], "loss.chunk_size=1 must be >= 2"),
        (
            ["loss.chunk_size=64", "trainer.accumulate_grad_batches=2"],
            "raise data.batch_size instead",
        ),
    ],
)
def test_bad_chunk_settings_are_refused(compose_config, overrides, named) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        validate_config(compose_config(*overrides))
    validate_config(compose_config("loss.chunk_size=0"))  # 0 is off


class CountAllReduces(pl.Callback):
    """Counts DDP's gradient all-reduces on rank 0 and writes the count to `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import torch.distributed as dist

        # Unannotated: DDP checks annotations, which `from __future__` turns into strings.
        def hook(state, bucket):  # type: ignore[no-untyped-def]
            self.count += 1
            work = dist.all_reduce(bucket.buffer() / dist.get_world_size(), async_op=True)
            return work.get_future().then(lambda fut: fut.value()[0])

        trainer.strategy.model.register_comm_hook(None, hook)  # type: ignore[union-attr]

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0:
            with open(self.path, "w") as f:
                f.write(str(self.count))


@pytest.mark.distributed
@pytest.mark.slow
def test_chunked_ddp_steps_give_the_weights_of_one_process_on_the_whole_batch(
    compose_config, tmp_path
) -> None:
    # Two gloo ranks of BATCH images each, gathering negatives, in chunks of 3 views;
    # against one process on the 2 x BATCH images in one pass. One global batch per
    # epoch: Lightning's distributed sampler splits its images between the ranks, so
    # every step sees the same images in both runs (NT-Xent ignores their order).
    data = PairSet(2 * BATCH)
    reference = tiny_module(compose_config, 0, f"data.batch_size={2 * BATCH}")
    fit(reference, 2, data, batch_size=2 * BATCH)
    # float64 in this process too: ddp_spawn loads rank 0's weights back into it.
    chunked = tiny_module(compose_config, 3).double()
    counted = tmp_path / "allreduces"
    callbacks = [CountAllReduces(str(counted))]
    fit(chunked, 2, data, strategy="ddp_spawn", devices=2, callbacks=callbacks)
    for name, a in reference.state_dict().items():
        torch.testing.assert_close(chunked.state_dict()[name], a, rtol=1e-10, atol=1e-12, msg=name)
    # One all-reduce per step (the tiny model has one bucket), not one per chunk.
    assert counted.read_text() == "2"
