"""Defaults live in the schemas only: no YAML file under conf/ restates a value it would get anyway.

Over every file of conf/ (group options, `eval/data` options, experiment presets,
config.yaml):

- no value equals the schema default for its key;
- no option restates a value of the option of its group it extends (`optim/lars_sqrt`
  over `optim/lars`, `experiment/cifar10_resnet50` over `experiment/cifar10_resnet18`);
- no value is `???`: merged onto a default it leaves the default, so it marks nothing.

(An experiment may restate a value of a group it picks, e.g. `data.image_size: 224`
with `data: folder`: that pins it when the user picks another option of the group. It
may also set a schema default where an option it picks or a preset it extends sets
another value: `small_images` picks `data: folder` (224 px) and sets
`data.image_size: 32`.)

The plugin configs under conf/hydra/ are left out: their schemas are the plugins'.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from simclr.config.schema import DataConfig, RunConfig
from tests.conftest import REPO

CONF = REPO / "conf"
# The composed node each kind of file is merged into (`@package _global_`: the root).
SCHEMA_NODES = {
    "data": "data",
    "augment": "augment",
    "encoder": "encoder",
    "head": "head",
    "loss": "loss",
    "optim": "optim",
    "trainer": "trainer",
    "eval": "eval",
    "eval/data": "eval.data",
    "experiment": "",
    "": "",  # config.yaml
}
NOT_OURS = ("hydra",)  # plugin configs (launcher, sweeper)
SKIPPED_KEYS = ("defaults", "hydra")  # the defaults list; Hydra's own settings in config.yaml
ABSENT = object()


def yaml_files() -> list[Path]:
    return sorted(p for p in CONF.rglob("*.yaml") if p.relative_to(CONF).parts[0] not in NOT_OURS)


def group_of(path: Path) -> str:
    return path.parent.relative_to(CONF).as_posix().replace(".", "")


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf the file sets, the defaults list left out."""
    for key, value in node.items():
        if not prefix and key in SKIPPED_KEYS:
            continue
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from leaves(value, full)
        else:
            yield full, value


def file_values(path: Path) -> dict[str, Any]:
    raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
    assert isinstance(raw, dict)
    return dict(leaves(raw))


def schema_defaults() -> DictConfig:
    root = OmegaConf.structured(RunConfig)
    root.eval.data = OmegaConf.structured(DataConfig)
    return root


def plain(value: Any) -> Any:
    return OmegaConf.to_container(value, enum_to_str=True) if OmegaConf.is_config(value) else value


def test_every_file_is_mapped_to_a_schema_node():
    unmapped = [str(p.relative_to(CONF)) for p in yaml_files() if group_of(p) not in SCHEMA_NODES]
    assert not unmapped, f"tell this test which schema node these files fill: {unmapped}"


def picked_options(path: Path) -> dict[str, Any]:
    """`group.key -> value` set by the group options an experiment picks (`override /g: o`)."""
    raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
    assert isinstance(raw, dict)
    values: dict[str, Any] = {}
    for entry in raw.get("defaults", []):
        for key, option in entry.items() if isinstance(entry, dict) else []:
            group = str(key).removeprefix("override ").lstrip("/")
            option_file = CONF / group / f"{option}.yaml"
            if group in SCHEMA_NODES and option_file.is_file():
                node = SCHEMA_NODES[group]
                values |= {f"{node}.{k}": v for k, v in file_values(option_file).items()}
    return values


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(CONF)))
def test_no_value_equals_its_schema_default(path: Path):
    defaults = schema_defaults()
    node = SCHEMA_NODES[group_of(path)]
    # In a preset, a schema default may undo what a picked option or a parent preset sets.
    picked = picked_options(path) | inherited(path) if group_of(path) == "experiment" else {}
    restated = []
    for key, value in file_values(path).items():
        default = OmegaConf.select(defaults, f"{node}.{key}" if node else key, default=ABSENT)
        overridden = picked.get(key, value) != value  # a picked option sets another value
        if default is not ABSENT and plain(default) == value and not overridden:
            restated.append(f"{key}: {value}")
    assert not restated, f"{path.relative_to(CONF)} restates schema defaults: {restated}"


# --- nor a value the option a file extends already sets -------------------------------------


def parents(path: Path) -> list[Path]:
    """The options of the same group that `path` extends (its defaults list), in order."""
    raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
    assert isinstance(raw, dict)
    names = [d for d in raw.get("defaults", []) if isinstance(d, str) and d != "_self_"]
    return [path.parent / f"{name}.yaml" for name in names]


def inherited(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for parent in parents(path):
        values.update(inherited(parent))
        values.update(file_values(parent))
    return values


OPTIONS = [p for p in yaml_files() if group_of(p) != ""]  # all but config.yaml


@pytest.mark.parametrize("path", OPTIONS, ids=lambda p: str(p.relative_to(CONF)))
def test_no_value_restates_the_option_it_extends(path: Path):
    above = inherited(path)
    restated = [k for k, v in file_values(path).items() if k in above and above[k] == v]
    assert not restated, f"{path.relative_to(CONF)}: {restated} change nothing"


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(CONF)))
def test_no_missing_marker(path: Path):
    # `???` merged onto a value leaves that value (for `data.root`, the schema's null):
    # it marks nothing as required. validate_config names a required key left unset.
    marked = [k for k, v in file_values(path).items() if v == "???"]
    assert not marked, f"{path.relative_to(CONF)}: {marked} set to ??? change nothing"
