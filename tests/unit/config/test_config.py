"""Configuration: every group composes, typos and bad values fail with the key named."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from simclr.config import register_configs, validate_config
from simclr.config.compose import compose_checked
from simclr.config.schema import RunConfig
from simclr.errors import ConfigError
from tests.conftest import REPO

GROUPS = ["data", "augment", "encoder", "head", "loss", "optim", "trainer", "eval", "experiment"]


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in group_options(g)], ids=lambda x: str(x)
)
def test_every_group_option_composes_and_validates(compose_config, group, option):
    overrides = [f"{group}={option}", "data.root=/data"]
    if group == "encoder" and option == "timm":
        overrides.append("encoder.timm_name=resnet18")
    cfg = compose_config(*overrides)
    if cfg.data.name == "digits":
        cfg.data.root = None
    validate_config(cfg)
    assert OmegaConf.is_struct(cfg)


def test_default_is_digits_preset_with_resnet18_cifar_stem(compose_config):
    cfg = compose_config()
    assert (cfg.data.name, cfg.encoder.arch, cfg.encoder.stem) == ("digits", "resnet18", "cifar")
    plain = compose_config("experiment=none")
    assert plain.encoder.arch == "resnet50" and plain.encoder.stem == "imagenet"


def test_small_images_preset_trains_small_at_32_px_and_digits_builds_on_it(compose_config):
    # data=folder alone is 224 px: a CIFAR-stem ResNet-18 there needs ~23 GB at batch 128.
    cfg = compose_config("experiment=small_images", "data.root=/photos")
    assert (cfg.preset, cfg.data.name, cfg.data.image_size) == ("small_images", "folder", 32)
    assert (cfg.encoder.arch, cfg.encoder.stem, cfg.augment.name) == ("resnet18", "cifar", "cifar")
    digits = compose_config("experiment=digits")
    # The scans' own 8 px: make run within 6 minutes on a CPU without bf16 (issue 27).
    assert (digits.data.name, digits.data.image_size, digits.augment.name) == (
        "digits",
        8,
        "digits",
    )
    assert digits.data.batch_size == cfg.data.batch_size  # inherited, not restated
    assert (digits.optim.name, digits.optim.lr) == (cfg.optim.name, cfg.optim.lr) == ("lars", 1.0)
    # The preset's rate is an optim option's: another optimizer brings its own.
    adamw = compose_config("experiment=small_images", "data.root=/photos", "optim=adamw")
    assert (adamw.optim.name, adamw.optim.lr) == ("adamw", 1e-3)


def test_unknown_key_fails_naming_it(compose_config):
    with pytest.raises(ConfigCompositionException, match="lr_typo"):
        compose_config("optim.lr_typo=1")


def test_wrong_type_fails_naming_the_key(compose_config):
    with pytest.raises(ConfigCompositionException, match=r"optim\.lr"):
        compose_config("optim.lr=abc")


@pytest.mark.parametrize(
    "override,named",
    [
        ("loss.temperature=0", "loss.temperature"),
        ("loss.temperature=-0.1", "loss.temperature"),
        ("data.batch_size=1", "data.batch_size"),
        ("augment.crop_scale=[0.0,1.0]", "augment.crop_scale"),
        ("augment.crop_scale=[0.5,1.5]", "augment.crop_scale"),
        ("augment.crop_scale=[0.9,0.2]", "augment.crop_scale"),
        ("augment.jitter_p=1.5", "augment.jitter_p"),
        ("head.output_dim=0", "head.output_dim"),
        ("eval.fractions=[0.0,0.1]", "eval.fractions"),
        ("eval.fractions=[1.5]", "eval.fractions"),
        ("data.download=true", "data.download"),
        ("data=cifar10", "data.root"),
    ],
)
def test_bad_values_fail_with_the_key_named(compose_config, override, named):
    cfg = compose_config(override) if override != "data=cifar10" else None
    if cfg is None:
        cfg = compose_config("data=cifar10", "data.root=x")
        cfg.data.root = None
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize(
    "override,named,listed",
    [
        ("encoder.arch=resnet19", "encoder.arch", "resnet18, resnet34, resnet50"),
        ("optim.name=adam_typo", "optim.name", "lars, sgd, adamw"),
        ("loss.name=bogus", "loss.name", "ntxent"),
        ("eval.evaluators=[linear,svm]", "eval.evaluators", "linear, mlp, knn, finetune"),
    ],
)
def test_bad_choices_fail_at_composition_with_the_key_named(override, named, listed):
    # Choice fields are enums (simclr/config/choices.py): composing refuses other values.
    register_configs()
    with pytest.raises(ConfigError) as info:
        compose_checked(str(REPO / "conf"), "config", [override])
    message = str(info.value)
    assert named in message and listed in message and "\n" not in message


def test_a_saved_config_becomes_typed_at_one_boundary():
    """A checkpoint's plain dict: enums parsed, new keys defaulted, keys of old schemas dropped."""
    from simclr.config.choices import EncoderStem, Schedule
    from simclr.config.schema import typed_config

    saved = {
        "encoder": {"arch": "resnet18", "stem": "cifar", "removed_long_ago": 1},
        "optim": {"schedule": "constant", "lr": "0.5"},
        "no_such_group": {"x": 1},
    }
    cfg = typed_config(saved)
    assert cfg.encoder.stem is EncoderStem.cifar
    assert cfg.optim.schedule is Schedule.constant
    assert cfg.optim.lr == 0.5 and isinstance(cfg.optim.lr, float)
    assert cfg.data.batch_size == RunConfig().data.batch_size  # a key the dict lacked
    assert "removed_long_ago" not in cfg.encoder and "no_such_group" not in cfg
