"""Composing the run config the way the console scripts do, with one-line errors.

Hydra reports a bad override (an unknown key, a value of the wrong type, a missing
group option) in several lines and exits 1. :func:`compose_checked` composes with
Hydra's compose API and turns anything Hydra or OmegaConf raise into a
:class:`~simclr.errors.ConfigError` naming the override and what was expected;
the console layer (its preflight) and the Python API (:mod:`simclr.api`) both use it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import re
import types
import typing
from collections.abc import Sequence
from enum import Enum
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from simclr.errors import ConfigError


def _is_choice(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Enum)


def _describe_type(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_choice(hint):  # the schema's choice lists (simclr.config.choices)
        return "one of " + ", ".join(str(m.value) for m in hint)
    if origin in (typing.Union, types.UnionType):
        named = [_describe_type(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if origin in (list, Sequence):
        if args and _is_choice(args[0]):
            return f"a list, each item {_describe_type(args[0])}"
        return f"a list of {_describe_type(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    names = {float: "a float", int: "an integer", bool: "true or false", str: "a string"}
    if hint in names:
        return names[hint]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return f"a {hint.__name__} node (pick a preset with its config group instead)"
    return "a value of another type"


def _field_hint(object_type: Any, key: str) -> Any:
    if not (isinstance(object_type, type) and dataclasses.is_dataclass(object_type)):
        return None
    return typing.get_type_hints(object_type).get(key)


def _suggest(key: str, object_type: Any) -> str:
    if not (isinstance(object_type, type) and dataclasses.is_dataclass(object_type)):
        return ""
    names = [f.name for f in dataclasses.fields(object_type)]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    # A typo appended to a real name (lr_typo) is far from it by ratio; catch it too.
    close = close or sorted((n for n in names if key.startswith(n)), key=len)[-1:]
    return f" (did you mean {close[0]}?)" if close else ""


def _override_for(key: str, overrides: Sequence[str], value: Any = None) -> str:
    """The command-line override that set `key` to `value` (or `key` itself)."""
    base = re.sub(r"\[\d+\]$", "", key)
    matching = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in (key, base)]
    with_value = [o for o in matching if value is not None and o.endswith(f"={value}")]
    return (with_value or matching or [base])[-1]  # the last one wins, as in Hydra


def explain_composition_error(err: Exception, overrides: Sequence[str]) -> str:
    """One line for an exception Hydra or OmegaConf raised while composing."""
    if isinstance(err, MissingConfigException) and err.options is not None:
        group = (err.missing_cfg_file or "").rsplit("/", 1)[0]
        option = _override_for(group, overrides)
        return (
            f"{option}: no such option in config group {group} "
            f"(expected one of {', '.join(sorted(err.options))})"
        )
    if isinstance(err, OverrideParseException):
        culprit = _unparsable(overrides) or " ".join(overrides)
        reason = str(err).strip().splitlines()[0]
        return f"{culprit}: cannot parse this override ({reason}); expected key=value"
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        key, leaf = str(cause.full_key), str(cause.key)
        parent = key.rsplit(".", 1)[0] if "." in key else "the run config"
        kind = type(cause).__name__
        if kind in ("ConfigAttributeError", "ConfigKeyError"):
            return f"{key}: no such key in {parent}{_suggest(leaf, cause.object_type)}"
        if kind == "ValidationError":
            hint = _field_hint(cause.object_type, leaf)
            if hint is None and "[" in key and cause.parent_node is not None:
                # An element of a list: the list's own field says what it holds.
                owner = cause.parent_node._get_parent()
                list_key = re.sub(r"\[\d+\]$", "", key).rsplit(".", 1)[-1]
                hint = _field_hint(OmegaConf.get_type(owner), list_key) if owner else None
            culprit = _override_for(key, overrides, cause.value)
            if _is_choice(hint):  # key='value', as the range checks of validate.py write it
                culprit = f"{key}={cause.value!r}"
            return f"{culprit}: expected {_describe_type(hint)}"
        if kind == "ConfigTypeError":
            return f"{_override_for(key, overrides)}: {key} cannot be removed or retyped"
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if first.startswith("Ambiguous value for argument"):
        arg = first.split("'", 1)[1].rstrip("'")
        return (
            f"{arg}: a comma-separated value is a sweep, which needs -m/--multirun; "
            f"for a list write {arg.split('=', 1)[0]}=[{arg.split('=', 1)[1]}]"
        )
    return f"{' '.join(overrides) or 'the config'}: {first}"


def _unparsable(overrides: Sequence[str]) -> str | None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException:
            return override
    return None


def check_known_keys(cfg: DictConfig, where: str = "") -> None:
    """Refuse keys the schemas do not declare (Hydra lets `+key=value` add any)."""
    object_type = OmegaConf.get_type(cfg)
    declared = (
        {f.name for f in dataclasses.fields(object_type)}
        if isinstance(object_type, type) and dataclasses.is_dataclass(object_type)
        else None
    )
    for name in cfg:
        key = str(name)
        if key == "hydra" and not where:
            continue
        full = f"{where}.{key}" if where else key
        if declared is not None and key not in declared:
            parent = where or "the run config"
            raise ConfigError(f"{full}: no such key in {parent}{_suggest(key, object_type)}")
        if OmegaConf.is_interpolation(cfg, key):
            continue
        child = cfg[key]
        if isinstance(child, DictConfig):
            check_known_keys(child, full)


# Hydra plugins our configs name: (group, option) -> (module, package to install).
_SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
PLUGINS = {
    ("hydra/sweeper", "simclr_optuna"): (
        "hydra_plugins.hydra_optuna_sweeper",
        "hydra-optuna-sweeper",
    ),
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper"),
    ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    ("hydra/launcher", "simclr_slurm"): _SUBMITIT,
    ("hydra/launcher", "submitit_slurm"): _SUBMITIT,
    ("hydra/launcher", "submitit_local"): _SUBMITIT,
}


def check_plugins(overrides: Sequence[str]) -> None:
    """ConfigError naming the override and what to install when its Hydra plugin is missing."""
    for override in overrides:
        group, _, option = override.lstrip("+~").partition("=")
        plugin = PLUGINS.get((group, option))
        if plugin is not None and importlib.util.find_spec(plugin[0]) is None:
            raise ConfigError(
                f"{override}: needs Hydra's {plugin[1]} plugin, which is not installed; "
                f"pip install 'simclr[sweep]' (or pip install {plugin[1]})"
            )


_NULL_GROUP = re.compile(r"^[+~]*[\w/]+=null$")


def check_resolves(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """ConfigError naming the first value (outside `hydra`) whose interpolation fails."""
    for name in cfg:
        if name == "hydra":
            continue
        try:
            node = cfg[name]  # reading a value resolves it
            if isinstance(node, DictConfig | ListConfig):
                OmegaConf.to_container(node, resolve=True)
        except OmegaConfBaseException as err:
            key = str(err.full_key or name)
            reason = str(err).strip().splitlines()[0]
            raise ConfigError(
                f"{_override_for(key, overrides)}: cannot be resolved ({reason}); "
                "give the value itself"
            ) from None


def compose_checked(config_dir: str, config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose like the app will; ConfigError (one line) for any composition problem."""
    check_plugins(overrides)
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(explain_composition_error(err, overrides)) from None
    except yaml.YAMLError as err:  # a config file of the user's (--config-dir)
        mark = getattr(err, "problem_mark", None)
        where = f"{mark.name}, line {mark.line + 1}" if mark else "a config file"
        raise ConfigError(
            f"{where}: not valid YAML ({getattr(err, 'problem', None) or err}); fix or remove it"
        ) from None
    except ValueError as err:  # Hydra's defaults list: `group=null`
        culprit = next((o for o in overrides if _NULL_GROUP.match(o)), " ".join(overrides))
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"{culprit}: a config group takes the name of one of its options ({first})"
        ) from None
    check_known_keys(cfg)
    check_resolves(cfg, overrides)
    return cfg
