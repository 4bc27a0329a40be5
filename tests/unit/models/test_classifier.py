"""Fine-tuning from a projection-head layer: the classifier's shapes and pretrained weights,
the frozen/unfrozen phases over the kept layers, and the classifier as a file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from simclr.errors import CheckpointError, ConfigError, OutputError
from simclr.evaluation.finetune import discriminative_groups, train_phase
from simclr.models import ProjectionHead, build_encoder
from simclr.models.classifier import (
    attach_head,
    attached_head,
    build_classifier,
    head_layers,
    resolve_head_layer,
)
from tests.unit.evaluation.test_finetune import Colours, RecordRates, changed, loader, snapshot

FEATURES, HIDDEN, OUT, CLASSES = 12, 10, 6, 3


def _encoder() -> nn.Module:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, FEATURES))
    encoder.feature_dim = FEATURES  # type: ignore[assignment]
    return encoder


def _head(layers: int = 3) -> ProjectionHead:
    torch.manual_seed(1)
    head = ProjectionHead(FEATURES, HIDDEN, OUT, num_layers=layers)
    for m in head.modules():  # non-default BatchNorm statistics and affine weights
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            if m.affine:
                nn.init.uniform_(m.weight, 0.5, 2)
                nn.init.uniform_(m.bias, -1, 1)
    return head.eval()


@pytest.mark.parametrize(
    ("layer", "width", "linears"), [(0, FEATURES, 0), (1, HIDDEN, 1), (2, HIDDEN, 2)]
)
def test_head_layers_give_the_right_shapes_and_pretrained_weights(layer, width, linears):
    encoder, head = _encoder(), _head()
    model = build_classifier(encoder, CLASSES, FEATURES, head, layer).eval()
    assert model.from_head_layer == layer
    assert model.head.in_features == width and model.head.out_features == CLASSES
    kept = [m for m in model.projection if isinstance(m, nn.Linear)]
    assert len(kept) == linears
    # The kept layers are the head's own first layers, their weights and statistics too.
    originals = [m for m in head.net if isinstance(m, nn.Linear)][:linears]
    for mine, theirs in zip(kept, originals, strict=True):
        assert torch.equal(mine.weight, theirs.weight)
    x = torch.randn(5, 3, 8, 8)
    assert model(x).shape == (5, CLASSES)
    with torch.no_grad():
        features = encoder(x)
        # The head's own computation up to the end of layer `layer` (Linear-BN-ReLU blocks).
        expected = head.net[: 3 * layer](features) if layer else features
        torch.testing.assert_close(model.projection(features), expected)


def test_head_layers_split_at_each_linear():
    assert [len(b) for b in head_layers(_head(3))] == [3, 3, 2]  # Linear-BN-ReLU x2, Linear-BN
    assert [len(b) for b in head_layers(_head(2))] == [3, 2]


def test_default_layer_is_one_for_a_v2_head_and_zero_otherwise():
    assert resolve_head_layer(None, _head(3)) == 1
    assert resolve_head_layer(None, _head(2)) == 0
    assert resolve_head_layer(None, None) == 0
    assert resolve_head_layer(2, _head(3)) == 2


@pytest.mark.parametrize(
    ("layer", "head", "named"),
    [(3, _head(3), "not in 0..2"), (2, _head(2), "not in 0..1"), (1, None, "needs the pretrained")],
)
def test_a_layer_the_head_does_not_have_is_refused(layer, head, named):
    with pytest.raises(ConfigError, match=named) as err:
        resolve_head_layer(layer, head)
    assert "eval.finetune.from_head_layer" in str(err.value)


def test_attached_head_stays_out_of_the_encoder_state_and_copies_along():
    import copy

    encoder, head = _encoder(), _head()
    keys = set(encoder.state_dict())
    attach_head(encoder, head)
    assert set(encoder.state_dict()) == keys
    assert attached_head(encoder) is head
    twin = copy.deepcopy(encoder)
    assert attached_head(twin) is not head
    assert torch.equal(attached_head(twin).net[0].weight, head.net[0].weight)  # type: ignore[union-attr]


def test_kept_layers_stay_frozen_first_then_train_between_encoder_and_head():
    torch.manual_seed(0)
    encoder = build_encoder(SimpleNamespace(arch="resnet18", stem="cifar"))
    head = ProjectionHead(512, 32, 8)
    model = build_classifier(encoder, CLASSES, 512, head, 1)
    data = loader(Colours(24, seed=0))
    common = {"lr": 1e-2, "decay": 0.3, "weight_decay": 0.0}
    before = snapshot(model)
    train_phase(model, data, frozen=True, epochs=1, **common)
    assert changed(before, model, "head.")
    assert not changed(before, model, "projection.")  # weights and BatchNorm statistics
    after_frozen = snapshot(model)
    rates = RecordRates()
    train_phase(model, data, frozen=False, epochs=1, callbacks=[rates], **common)
    assert changed(after_frozen, model, "projection.0.")
    groups = discriminative_groups(model, 1.0, 0.5)
    assert [g["lr"] for g in groups] == [0.5**k for k in range(6, -1, -1)]
    assert {id(p) for p in groups[-2]["params"]} == {id(p) for p in model.projection.parameters()}
    assert rates.rates["stage5"] == pytest.approx(1e-2 * 0.3)  # the kept layer, below the head


# --- the classifier as an artefact ----------------------------------------------------------


def _colour_folder(root: Path) -> Path:
    for split, data in (("train", Colours(30, seed=0)), ("test", Colours(15, seed=1))):
        for i in range(len(data)):
            image, label = data[i]
            path = root / split / f"c{label}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
    return root


def _pretrained_checkpoint(tmp_path: Path, images: Path) -> Path:
    """A checkpoint as simclr-pretrain writes it: random weights, a tiny timm encoder."""
    from simclr.config.schema import default_config
    from simclr.models import build_head

    cfg = OmegaConf.merge(
        OmegaConf.create(default_config()),
        {
            "data": {"name": "folder", "root": str(images), "image_size": 8, "num_workers": 0},
            "encoder": {"arch": "resnet18", "stem": "cifar"},
            "head": {"hidden_dim": 32},
            "augment": {"mean": [0.5] * 3, "std": [0.5] * 3, "hflip_p": 0.0},
            "eval": {
                "finetune": {"frozen_epochs": 2, "unfrozen_epochs": 3, "batch_size": 5, "lr": 1e-2}
            },
        },
    )
    torch.manual_seed(0)
    encoder = build_encoder(cfg.encoder)
    head = build_head(cfg.head, encoder.feature_dim)
    # A stand-in for pretraining: random weights, BatchNorm statistics of these images.
    from simclr.data.folder import folder_splits
    from simclr.data.views import build_eval_transform
    from simclr.evaluation.finetune import recalibrate_batchnorm

    train = folder_splits(str(images)).train
    assert train is not None
    transform = build_eval_transform(cfg.augment, 8)
    recalibrate_batchnorm(nn.Sequential(encoder, head), train, transform, seed=0)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state |= {f"head.{k}": v for k, v in head.state_dict().items()}
    path = tmp_path / "pretrained.ckpt"
    config = OmegaConf.to_container(cfg, resolve=True)
    torch.save({"state_dict": state, "hyper_parameters": {"config": config}}, path)
    return path


def test_finetune_checkpoint_writes_a_classifier_that_loads_back(tmp_path):
    from simclr.hub import export_encoder, load_encoder
    from simclr.hub.classifier import load_classifier
    from simclr.jobs.finetune import finetune_checkpoint

    source = _pretrained_checkpoint(tmp_path, _colour_folder(tmp_path / "images"))
    out = tmp_path / "ft"
    path = finetune_checkpoint(source, fraction=0.5, seed=0, out_dir=out)
    assert path == out / "classifier.ckpt"
    info = json.loads((out / "finetune.json").read_text())
    assert info["n_labels"] == 15 and info["fraction"] == 0.5 and info["seed"] == 0
    assert info["chosen"]["from_head_layer"] == 1  # v2 head: SimCLRv2's default
    assert "Test accuracy" in (out / "finetune.md").read_text()
    torch.load(path, weights_only=True)  # no code needed to read it

    model = load_classifier(out)  # the directory, or the file
    assert model.from_head_layer == 1 and model.head.out_features == 3
    assert model.meta["classifier"]["test_accuracy"] == info["test_accuracy"]
    # Its predictions on the test split reproduce the recorded accuracy.
    from simclr.data.folder import folder_splits

    test = folder_splits(str(tmp_path / "images")).test
    assert test is not None
    with torch.no_grad():
        x = torch.stack([model.transform(test[i][0]) for i in range(len(test))])
        pred = model(x).argmax(1).numpy()
    labels = np.array([test[i][1] for i in range(len(test))])
    assert np.mean(pred == labels) == pytest.approx(info["test_accuracy"])

    # load_encoder and simclr-export read the fine-tuned encoder out of it.
    encoder = load_encoder(path)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, model.encoder.state_dict()[key]), key
    pretrained = load_encoder(source)
    assert any(
        not torch.equal(v, pretrained.state_dict()[k]) for k, v in encoder.state_dict().items()
    )
    exported = export_encoder(path, tmp_path / "ft.safetensors")
    for key, value in load_encoder(exported).state_dict().items():
        assert torch.equal(value, encoder.state_dict()[key]), key

    with pytest.raises(OutputError, match="already exists"):
        finetune_checkpoint(source, fraction=0.5, seed=0, out_dir=out)
    with pytest.raises(CheckpointError, match="not a fine-tuned classifier"):
        load_classifier(source)


def test_finetune_command_writes_into_its_run_dir_and_reports_errors_in_one_line(tmp_path, capfd):
    from simclr.console import finetune as finetune_cli
    from tests.support.cli_harness import assert_one_line_error, run_cli

    missing = tmp_path / "nothing.ckpt"
    result = run_cli(
        finetune_cli.cli,
        "simclr-finetune",
        [f"checkpoint={missing}", f"hydra.run.dir={tmp_path / 'r'}"],
        capfd,
    )
    assert_one_line_error(result, "simclr-finetune", str(missing))
    source = _pretrained_checkpoint(tmp_path, _colour_folder(tmp_path / "images"))
    argv = [
        f"checkpoint={source}",
        "eval.finetune.fraction=1.5",
        f"hydra.run.dir={tmp_path / 'r2'}",
    ]
    result = run_cli(finetune_cli.cli, "simclr-finetune", argv, capfd)
    assert_one_line_error(result, "simclr-finetune", "eval.finetune.fraction=1.5")

    run_dir = tmp_path / "r3"
    argv = [
        f"checkpoint={source}",
        "eval.finetune.fraction=0.5",
        "seed=1",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(finetune_cli.cli, "simclr-finetune", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    info = json.loads((run_dir / "finetune.json").read_text())
    assert info["seed"] == 1 and (run_dir / "classifier.ckpt").is_file()
    assert info["command"].startswith("simclr-finetune checkpoint=")


def test_simclr_eval_fine_tunes_from_the_checkpoints_head(tmp_path, capfd):
    from simclr.console import evaluate as eval_cli
    from tests.support.cli_harness import run_cli

    source = _pretrained_checkpoint(tmp_path, _colour_folder(tmp_path / "images"))
    out = tmp_path / "eval"
    argv = [
        f"checkpoint={source}",
        "eval.evaluators=[finetune]",
        "eval.fractions=[0.5]",
        "eval.seeds=1",
        "eval.baselines=[]",
        "eval.headline_evaluator=finetune",
        "eval.headline_fraction=0.5",
        "eval.finetune.fractions=[0.5]",
        "eval.finetune.frozen_epochs=1",
        "eval.finetune.unfrozen_epochs=1",
        "eval.finetune.batch_size=8",
        f"hydra.run.dir={out}",
    ]
    result = run_cli(eval_cli.cli, "simclr-eval", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    runs = json.loads((out / "report.json").read_text())["runs"]
    assert [r["chosen"]["from_head_layer"] for r in runs] == [1]
    result = run_cli(
        eval_cli.cli,
        "simclr-eval",
        [*argv[:-1], "eval.finetune.from_head_layer=0", f"hydra.run.dir={tmp_path / 'e0'}"],
        capfd,
    )
    assert result.code == 0, result.stderr[-3000:]
    runs = json.loads((tmp_path / "e0" / "report.json").read_text())["runs"]
    assert [r["chosen"]["from_head_layer"] for r in runs] == [0]
