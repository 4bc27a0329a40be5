"""Checking a Hydra command line before Hydra writes anything.

:func:`preflight` composes the config of every job the command line asks for
(each value of a sweep at least once) with :func:`~simclr.config.compose.compose_checked`,
so a bad override is one line naming it, and checks that the output directory can
be created. With ``HYDRA_FULL_ERROR=1`` the console layer skips it, so Hydra's own
full report comes through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from simclr.config.compose import compose_checked, explain_composition_error
from simclr.errors import ConfigError, OutputError

# Command-line flags after which Hydra composes nothing we could check.
_NO_COMPOSE_FLAGS = ("help", "hydra_help", "version", "shell_completion", "info")


def _job_overrides(overrides: Sequence[str], multirun: bool) -> Iterator[list[str]]:
    """Command lines of single jobs that, together, use every value a sweep names."""
    if not multirun:
        yield list(overrides)
        return
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
