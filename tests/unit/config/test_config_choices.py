"""Each choice list is defined once (simclr/config/choices.py); schema, builders and checkpoints agree."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import typing

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from simclr.config import choices
from simclr.config.choices import (
    Choice,
    DataName,
    EncoderArch,
    EncoderStem,
    HeadVersion,
    LoggerName,
    LrScaling,
    OptimName,
    Schedule,
    WandbMode,
)
from simclr.config.schema import HeadConfig, OptimConfig, RunConfig
from simclr.errors import ConfigError

ENUMS = [
    c
    for _, c in inspect.getmembers(choices, inspect.isclass)
    if issubclass(c, Choice) and c is not Choice
]


def test_a_member_reads_as_its_string():
    member = OptimName.lars
    assert member == "lars" and str(member) == "lars" and f"{member}" == "lars"
    assert repr(member) == "'lars'" and json.dumps({"k": member}) == '{"k": "lars"}'
    assert {"lars": 1}[member] == 1


@pytest.mark.parametrize("choice", ENUMS, ids=lambda c: c.__name__)
def test_members_are_named_by_their_values(choice):
    # OmegaConf turns a YAML or command-line string into a member by *name*.
    assert [m.name for m in choice] == [m.value for m in choice]


def test_parse_names_the_key_and_the_choices():
    assert OptimName.parse("sgd", "optim.name") is OptimName.sgd
    with pytest.raises(ConfigError, match=r"^optim\.name='adam' is not one of lars, sgd, adamw$"):
        OptimName.parse("adam", "optim.name")


def test_every_enum_types_a_schema_field():
    used = set()

    def walk(cls):
        for hint in typing.get_type_hints(cls).values():
            for t in (hint, *typing.get_args(hint)):
                if isinstance(t, type) and issubclass(t, Choice):
                    used.add(t)
                elif isinstance(t, type) and dataclasses.is_dataclass(t):
                    walk(t)

    walk(RunConfig)
    # trainer.logger is a name or a list (typed Any) and trainer.wandb_mode a str:
    # validate_config checks both against their enums.
    assert used == set(ENUMS) - {LoggerName, WandbMode}


# --- the builders dispatch on the same members ---------------------------------------------


def test_every_resnet_arch_has_a_torchvision_constructor():
    from simclr.models.encoder import RESNETS

    assert set(RESNETS) == set(EncoderArch) - {EncoderArch.timm}


@pytest.mark.parametrize("stem", list(EncoderStem))
def test_every_stem_builds(stem):
    from simclr.models.encoder import build_resnet

    assert build_resnet("resnet18", stem).feature_dim == 512


def test_a_bad_stem_or_arch_is_refused_by_the_builder():
    from simclr.models.encoder import build_resnet

    with pytest.raises(ConfigError, match=r"encoder\.stem='tiny' is not one of imagenet, cifar"):
        build_resnet("resnet18", "tiny")
    with pytest.raises(ConfigError, match=r"encoder\.arch='resnet19' is not one of resnet18"):
        build_resnet("resnet19")


@pytest.mark.parametrize("version,linears", [(HeadVersion.v1, 2), (HeadVersion.v2, 3)])
def test_every_head_version_builds(version, linears):
    from simclr.models.head import build_head

    head = build_head(OmegaConf.structured(HeadConfig(version=version)), 8)
    assert sum(isinstance(m, nn.Linear) for m in head.modules()) == linears


def test_every_optimizer_scaling_and_schedule_builds():
    from simclr.training.optim import build_optimizer, build_scheduler, scaled_lr

    model = nn.Linear(3, 2)
    for name in OptimName:
        cfg = OmegaConf.structured(OptimConfig(name=name))
        build_scheduler(build_optimizer(model, cfg, 256), cfg, steps_per_epoch=2, max_epochs=2)
    assert {s: scaled_lr(0.5, 1024, s) for s in LrScaling} == {
        "linear": 2.0,
        "sqrt": 16.0,
        "none": 0.5,
    }
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for schedule in Schedule:
        cfg = OmegaConf.structured(OptimConfig(schedule=schedule, warmup_epochs=0))
        assert build_scheduler(opt, cfg, 2, 2)["interval"] == "step"


def test_an_unknown_data_set_is_refused_by_the_builder():
    from simclr.data import build_datasets

    cfg = OmegaConf.create({"name": "imagenet", "download": False})
    with pytest.raises(
        ConfigError, match=f"data.name='imagenet' is not one of {DataName.listed()}"
    ):
        build_datasets(cfg)


# --- checkpoints keep plain strings; the module keeps the typed config ----------------------


def _leaves(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)
    else:
        yield node


def test_module_stores_plain_values_and_keeps_the_typed_config(compose_config):
    from simclr.training.module import SimCLRModule

    cfg = compose_config("encoder.arch=resnet18", "head.output_dim=8")
    module = SimCLRModule(cfg)
    saved = module.hparams["config"]
    assert saved["optim"]["name"] == "lars" and saved["eval"]["evaluators"] == [
        "linear",
        "knn",
        "mlp",
    ]
    assert {type(v) for v in _leaves(saved)} <= {str, int, float, bool, type(None)}
    buffer = io.BytesIO()
    torch.save({"hyper_parameters": dict(module.hparams)}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["hyper_parameters"]["config"] == saved
    assert isinstance(module.cfg, DictConfig)
    assert OmegaConf.get_type(module.cfg.optim) is OptimConfig
    assert module.cfg.optim.name is OptimName.lars
