"""What every console script shares: bad input becomes one line on stderr and exit 2.

Hydra reports a bad override (an unknown key, a value of the wrong type, a missing
group option) in several lines and exits 1. :func:`run_app` first composes the
config once with Hydra's compose API (`preflight`), turns anything Hydra or
OmegaConf raise into a :class:`~simclr.errors.ConfigError` naming the override and
what was expected, checks that the output directory can be created, and only then
hands the command line to the ``@hydra.main`` function. With ``HYDRA_FULL_ERROR=1``
the preflight is skipped, so Hydra's own full report comes through unchanged.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from simclr.errors import ConfigError, OutputError, SimclrError

EXIT_USER_ERROR = 2
# Errors that mean "this output location cannot take our files", not a bug of ours.
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
# Command-line flags after which Hydra composes nothing we could check.
_NO_COMPOSE_FLAGS = ("help", "hydra_help", "version", "shell_completion", "info")
_WORKER_LAST_LINE = re.compile(r"^[\w.]*?(\w+(Error|Exception)): (.*)$")


def full_error_wanted() -> bool:
    """True when the user asked for Hydra's full tracebacks (HYDRA_FULL_ERROR=1)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def one_line(err: BaseException) -> str:
    """The user-facing line of an error, also when a DataLoader worker wrapped it.

    PyTorch re-raises a worker's exception with the worker's traceback folded into
    the message; the original message is its last line.
    """
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1].strip()
        match = _WORKER_LAST_LINE.match(last)
        text = match.group(3) if match else last
    return " ".join(text.split())


def report_error(program: str, err: BaseException) -> str:
    """Print `program: error: <one line>` on stderr and return that line."""
    message = f"{program}: error: {one_line(err)}"
    print(message, file=sys.stderr, flush=True)
    return message


def output_error(err: OSError) -> OutputError | None:
    """An OutputError for a full disk or an unwritable file; None for other OSErrors."""
    if err.errno not in OUTPUT_ERRNOS:
        return None
    where = err.filename or "the output directory"
    return OutputError(f"cannot write {where}: {err.strerror}; files written before are intact")


# --- turning Hydra's composition errors into one line ------------------------------------


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


# --- the preflight ----------------------------------------------------------------------


def _job_overrides(overrides: Sequence[str], multirun: bool) -> Iterator[list[str]]:
    """Command lines of single jobs that, together, use every value a sweep names."""
    if not multirun:
        yield list(overrides)
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as err:
        raise ConfigError(explain_composition_error(err, overrides)) from None
    choices: list[list[str]] = []
    for item in parsed:
        if not item.is_sweep_override():
            choices.append([str(item.input_line)])
            continue
        try:
            values = list(item.sweep_string_iterator())
        except HydraException:
            continue  # an interval sweep (Optuna): its values are drawn later
        choices.append([f"{item.get_key_element()}={v}" for v in values])
    base = [c[0] for c in choices]
    yield base
    for i, options in enumerate(choices):
        for option in options[1:]:
            yield [*base[:i], option, *base[i + 1 :]]


def compose_checked(config_dir: str, config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose like the app will; ConfigError (one line) for any composition problem."""
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(explain_composition_error(err, overrides)) from None
    check_known_keys(cfg)
    return cfg


def check_output_dir(key: str, directory: str) -> None:
    """OutputError unless `directory` exists writable or can be created."""
    path = Path(directory).expanduser().absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{key}={directory}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{key}={directory}: {existing} is not writable")


def preflight(argv: Sequence[str], config_dir: str, config_name: str) -> None:
    """Compose the config of every job `argv` asks for; raise one-line errors."""
    from hydra._internal.utils import get_args_parser  # the parser @hydra.main uses

    args = get_args_parser().parse_args(list(argv))
    if any(getattr(args, flag, None) for flag in _NO_COMPOSE_FLAGS):
        return
    if args.config_dir or args.config_path or args.experimental_rerun:
        return  # another search path: Hydra reports its own errors there
    name = args.config_name or config_name
    cfg: DictConfig | None = None
    for job in _job_overrides(args.overrides, bool(args.multirun)):
        cfg = compose_checked(config_dir, name, job)
    if cfg is not None and not args.cfg:
        key = "hydra.sweep.dir" if args.multirun else "hydra.run.dir"
        check_output_dir(key, str(OmegaConf.select(cfg, key)))


def run_app(
    program: str,
    app: Callable[[], Any],
    config_dir: str,
    config_name: str = "config",
    argv: Sequence[str] | None = None,
) -> None:
    """Preflight the command line, then run the ``@hydra.main`` function `app`."""
    if not full_error_wanted():
        try:
            preflight(sys.argv[1:] if argv is None else argv, config_dir, config_name)
        except SimclrError as err:
            report_error(program, err)
            sys.exit(EXIT_USER_ERROR)
    app()
