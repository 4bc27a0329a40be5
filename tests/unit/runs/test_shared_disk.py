"""Files that fit a shared disk: best.ckpt is no second full copy of last.ckpt, written
files get the umask's mode (not a temporary file's 0600), and torch.hub entries
without weights behave like load_encoder (eval mode, .transform, .meta)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.demos.boring_classes import BoringModel

from simclr.runs.checkpoints import (
    AtomicCheckpointIO,
    atomic_torch_save,
    current_umask,
    shared_mode,
)
from simclr.runs.rundir import BEST, LAST, RunDir
from simclr.training.checkpoints import TRAINING_STATE_KEYS, BestCheckpoint, FinalCheckpoint
from tests.conftest import REPO
from tests.support.cli_harness import run_cli, tiny_run


class Scored(BoringModel):
    """BoringModel whose monitored `score` at epoch k is `scores[k]`; keeps the weights
    of every epoch end, to compare with what best.ckpt holds."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self) -> None:
        self.log("score", float(self.scores[self.current_epoch]))
        self.weights[self.current_epoch] = {
            k: v.detach().clone() for k, v in self.state_dict().items()
        }

    def configure_optimizers(self):
        # Momentum: the optimizer has state, so a full checkpoint is visibly bigger.
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def train(tmp_path: Path, scores: list[float]) -> tuple[Scored, RunDir, pl.Trainer]:
    """Lightning training with simclr's two checkpoint callbacks (as in training.py)."""
    run = RunDir(tmp_path)
    last = ModelCheckpoint(
        dirpath=str(run.checkpoints), filename=LAST, monitor=None, save_top_k=1,
        every_n_epochs=1, enable_version_counter=False,
    )  # fmt: skip
    best = BestCheckpoint(
        last, run.last_checkpoint, dirpath=str(run.checkpoints), filename=BEST, monitor="score",
        mode="min", save_top_k=1, every_n_epochs=1, enable_version_counter=False,
    )  # fmt: skip
    model = Scored(scores)
    trainer = pl.Trainer(
        default_root_dir=str(tmp_path),
        max_epochs=len(scores),
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[last, FinalCheckpoint(last, str(run.last_checkpoint)), best],
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(model)
    return model, run, trainer


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_best_at_the_last_step_is_the_same_file_as_last(tmp_path):
    _, run, _ = train(tmp_path, [3.0, 2.0, 1.0])  # improves every epoch
    best, last = run.best_checkpoint, run.last_checkpoint
    assert os.path.samefile(best, last) and last.stat().st_nlink == 2
    assert load(best)["global_step"] == 6 and "optimizer_states" in load(best)
    # No temporary link file is left behind.
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_an_earlier_best_keeps_its_weights_only(tmp_path):
    model, run, trainer = train(tmp_path, [1.0, 2.0, 3.0])  # best is epoch 0
    best, last = load(run.best_checkpoint), load(run.last_checkpoint)
    assert not os.path.samefile(run.best_checkpoint, run.last_checkpoint)
    assert (best["epoch"], best["global_step"]) == (0, 2) and last["global_step"] == 6
    assert not any(k in best for k in TRAINING_STATE_KEYS)
    assert "optimizer_states" in last and "callbacks" in last  # resume=auto reads last
    for key, value in model.weights[0].items():
        assert torch.equal(best["state_dict"][key], value), key
    # The keys of a weights-only checkpoint as Lightning itself writes one.
    trainer.save_checkpoint(tmp_path / "lightning.ckpt", weights_only=True)
    assert set(best) == set(load(tmp_path / "lightning.ckpt"))
    assert run.best_checkpoint.stat().st_size < 0.75 * run.last_checkpoint.stat().st_size


def test_where_hard_links_are_refused_best_is_saved_weights_only(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    _, run, _ = train(tmp_path, [3.0, 2.0, 1.0])
    assert not os.path.samefile(run.best_checkpoint, run.last_checkpoint)
    best = load(run.best_checkpoint)
    assert best["global_step"] == 6 and not any(k in best for k in TRAINING_STATE_KEYS)


def test_a_simclr_run_keeps_one_checkpoint_file_that_loads_and_resumes(
    labeled_folder, tmp_path, capfd
):
    from simclr import load_encoder
    from simclr.console.pretrain import cli

    run = RunDir(tmp_path / "run")
    argv = [*tiny_run(1, 1), f"data.root={labeled_folder}", f"hydra.run.dir={run.path}"]
    assert run_cli(cli, "simclr-pretrain", argv, capfd).code == 0
    assert os.path.samefile(run.best_checkpoint, run.last_checkpoint)
    encoder = load_encoder(run.best_checkpoint)
    assert not encoder.training and callable(encoder.transform)
    # resume=auto continues from last.ckpt (full) to a second epoch; best follows or is
    # kept weights-only, never a second full copy.
    more = [*tiny_run(2, 1), f"data.root={labeled_folder}", f"hydra.run.dir={run.path}"]
    (run.path / "pretrain_done").unlink()  # as if interrupted before finishing
    result = run_cli(cli, "simclr-pretrain", [*more, "resume=auto"], capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert (load(run.last_checkpoint)["epoch"], load(run.last_checkpoint)["global_step"]) == (1, 2)
    if not os.path.samefile(run.best_checkpoint, run.last_checkpoint):
        best = load(run.best_checkpoint)
        assert best["global_step"] == 1 and "optimizer_states" not in best


# --- modes ----------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_is_read_without_changing_it(umask):
    assert current_umask() == umask and current_umask() == umask
    assert shared_mode() == 0o666 & ~umask


def test_checkpoints_get_the_mode_open_would_give(umask, tmp_path):
    atomic_torch_save({"x": torch.zeros(1)}, tmp_path / "a.ckpt")
    (tmp_path / "plain").write_text("x")  # what open() gives under this umask
    assert mode(tmp_path / "a.ckpt") == mode(tmp_path / "plain") == 0o666 & ~umask


def test_exports_get_the_mode_open_would_give(umask, tmp_path):
    from simclr.hub import export_encoder
    from tests.support.hub_helpers import make_checkpoint

    ckpt, _, _ = make_checkpoint(tmp_path / "r18.ckpt", "resnet18", "cifar")
    out = export_encoder(ckpt, tmp_path / "enc.safetensors")
    assert mode(out) == 0o666 & ~umask
    assert not list(tmp_path.glob("*.partial"))


# --- torch.hub ------------------------------------------------------------------------


def hub(entry: str, **kwargs):
    return torch.hub.load(str(REPO), entry, source="local", trust_repo=True, **kwargs)


def test_hub_entries_without_weights_are_ready_like_load_encoder():
    from PIL import Image

    encoder = hub("simclr_resnet18")
    assert not encoder.training
    assert encoder.meta["arch"] == "resnet18" and encoder.meta["origin"] == "random-init"
    x = encoder.transform(Image.new("RGB", (300, 260), "gray"))
    assert tuple(x.shape) == (3, 224, 224)  # torchvision's recipe for the ImageNet stem
    with torch.inference_mode():
        assert tuple(encoder(x.unsqueeze(0)).shape) == (1, 512)
    cifar = hub("simclr_resnet18", stem="cifar")
    assert tuple(cifar.transform(Image.new("RGB", (40, 40))).shape) == (3, 32, 32)
    assert cifar.meta["stem"] == "cifar" and not cifar.training


def test_hub_timm_entry_without_weights_is_ready_like_load_encoder():
    from PIL import Image

    encoder = hub("simclr_timm", name="test_resnet")
    assert not encoder.training and encoder.meta["arch"] == "timm"
    x = encoder.transform(Image.new("RGB", (200, 200)))
    with torch.inference_mode():
        assert encoder(x.unsqueeze(0)).shape[0] == 1


def test_hub_with_head_without_weights_is_one_clear_error():
    from simclr.errors import ConfigError

    with pytest.raises(ConfigError, match="with_head=True needs weights="):
        hub("simclr_resnet18", with_head=True)
