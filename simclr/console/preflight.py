"""Before Hydra runs a command: `~` expanded, every job composed and checked, a run dir claimed.

`~` in command-line values: expanded to the home directory before Hydra parses them.

Hydra's override grammar has no `~` among the characters of an unquoted value
(hydra/grammar/OverrideLexer.g4, ``UNQUOTED_CHAR``), so ``data.root=~/data/cifar10``
fails with a lexer error; and the shell leaves that `~` alone, because
``data.root=~/...`` is not a variable assignment. Quoting it (``data.root='~/x'``)
would get past the lexer, but Hydra then takes the `~` literally: a
``hydra.run.dir='~/runs'`` becomes a folder named ``~`` in the working directory.

:func:`expand_home` therefore does what the shell does for ``VAR=~/x``: a value
that is ``~``, or starts with ``~/`` or ``~user/``, unquoted or wholly quoted, and
each such element of an unquoted comma-separated sweep (``data.root=~/a,~/b``),
becomes the absolute path, quoted for Hydra when it holds characters its grammar
does not take unquoted (a space). Any key is treated so: no value of ours starts
with `~` otherwise, and before this such a value was a parse error. A leading
``~key`` (Hydra's "delete this key") is left alone, as are values with brackets,
braces or function calls (``glob(...)``), whose grammar is Hydra's.

Checking a Hydra command line before Hydra writes anything.

:func:`preflight` composes the config of every job the command line asks for
(each value of a sweep at least once) with :func:`~simclr.config.compose.compose_checked`,
so a bad override is one line naming it, and checks that the output directory can
be created. With ``HYDRA_FULL_ERROR=1`` the console layer skips it, so Hydra's own
full report comes through unchanged.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import OmegaConf

from simclr.config.compose import compose_checked, explain_composition_error
from simclr.config.resolvers import launched_as_rank_zero
from simclr.config.schema import RunConfig, as_run_config, node_of, root_path
from simclr.errors import ConfigError, OutputError
from simclr.runs.output import check_apart, check_new_or_empty, claim, claim_new
from simclr.runs.rundir import RunDir

# Characters Hydra accepts in an unquoted value (besides letters and digits).
_UNQUOTED = re.compile(r"[A-Za-z0-9_/\-+.%@:]*")
# A value we may split at commas: no quoting, nesting or interpolation of Hydra's.
_SIMPLE = re.compile(r"[^'\"\[\]{}()\\$\s]*")
_QUOTED = re.compile(r"""(['"])(~[^'"]*)\1""")


def _expanded(part: str, override: str) -> str:
    path = os.path.expanduser(part)
    if path.startswith("~"):
        user = part[1:].split("/", 1)[0]
        raise ConfigError(
            f"{override}: no user {user!r} to expand {part.split('/', 1)[0]}; "
            "write the path without ~"
        )
    return hydra_value(path, override)


def hydra_value(path: str, override: str) -> str:
    """`path` as an override value Hydra parses back to itself: bare, or quoted."""
    if _UNQUOTED.fullmatch(path):
        return path
    # Inside Hydra's quotes a backslash is literal unless it precedes a quote.
    quote = "'" if "'" not in path else '"'
    if quote in path or path.endswith("\\"):
        raise ConfigError(f"{override}: {path} cannot be passed to Hydra; rename it or use a link")
    return f"{quote}{path}{quote}"


def expand_home(overrides: Sequence[str]) -> list[str]:
    """`overrides` with `~` in their values expanded (see the module doc)."""
    out: list[str] = []
    for override in overrides:
        key, equals, value = override.partition("=")
        if override.startswith("-") or not equals or "~" not in value:
            out.append(override)
        elif quoted := _QUOTED.fullmatch(value):
            out.append(f"{key}={_expanded(quoted.group(2), override)}")
        elif _SIMPLE.fullmatch(value):
            parts = value.split(",")
            parts = [_expanded(p, override) if p.startswith("~") else p for p in parts]
            out.append(f"{key}={','.join(parts)}")
        else:
            out.append(override)
    return out


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


NAME_MAX = 255  # bytes in one path component (ext4, XFS, APFS, NTFS)


def check_output_dir(key: str, directory: str) -> None:
    """OutputError unless `directory` exists writable or can be created."""
    path = Path(directory).expanduser().absolute()
    for name in path.parts:
        if len(os.fsencode(name)) > NAME_MAX:
            raise OutputError(
                f"{key}={directory}: the name {name[:24]}... is {len(os.fsencode(name))} bytes, "
                f"more than the {NAME_MAX} a file system allows; choose a shorter name"
            )
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{key}={directory}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{key}={directory}: {existing} is not writable")


_STALE_HINT = (
    "pass resume=auto to continue or restart that run there, or choose another hydra.run.dir"
)
JobCheck = Callable[[RunConfig, RunDir | None], None]


def _given(overrides: Sequence[str], key: str) -> bool:
    return any(o.lstrip("+~").split("=", 1)[0] == key for o in overrides)


def data_roots(cfg: RunConfig) -> dict[str, Path | None]:
    """`key -> folder` of every data root `cfg` names (None where it names none): the
    input folders outputs must lie apart from."""
    return {"data.root": root_path(cfg.data), "eval.data.root": root_path(cfg.eval.data)}


def _check_config_name(name: str, config_dir: str, extra_dir: str | None) -> None:
    """ConfigError unless a primary config `name` exists in the config directories."""
    dirs = [Path(config_dir), *([Path(extra_dir)] if extra_dir else [])]
    file = name if name.endswith(".yaml") else f"{name}.yaml"
    if not any((d / file).is_file() for d in dirs):
        have = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
        raise ConfigError(
            f"--config-name={name}: no such config in {' or '.join(map(str, dirs))} "
            f"(there: {', '.join(have) or 'none'})"
        )


def _check_every_job(
    args: argparse.Namespace, config_dir: str, name: str, check_job: JobCheck | None
) -> RunConfig | None:
    """Compose each job of the command line (each value of a sweep at least once) as
    Hydra will (`--config-dir` added to the search path) and run `check_job(cfg, None)`
    on it; the last job's config (None without a job)."""
    search = (
        [f"hydra.searchpath=[file://{Path(args.config_dir).absolute()}]"] if args.config_dir else []
    )
    cfg: RunConfig | None = None
    for job in _job_overrides(args.overrides, bool(args.multirun)):
        cfg = as_run_config(compose_checked(config_dir, name, [*job, *search]))
        if check_job is not None and not args.cfg:
            check_job(cfg, None)
    return cfg


def preflight(
    argv: Sequence[str],
    config_dir: str,
    config_name: str,
    check_job: JobCheck | None = None,
    default_dir: Callable[[RunConfig], Path | None] | None = None,
    program: str = "simclr",
) -> list[str]:
    """Check every job `argv` asks for, claim the output directory; one-line errors.

    Composes each job's config (each value of a sweep at least once) and runs the
    command's own `check_job(cfg, None)` on it (its values). Then the output
    directory is claimed, its lock the first thing written (:mod:`simclr.runs.output`):
    the one the user named, or the command's `default_dir(cfg)` or Hydra's default
    (`outputs/<date>/<time>`, with a suffix if another run took it this second). Under
    the lock, `check_job(cfg, RunDir)` judges what the directory held (a sweep's must
    be new or empty); a refusal undoes the claim, so nothing is left written. Returns
    the overrides to append to the command line (the directory claimed, pinned).
    """
    from hydra._internal.utils import get_args_parser  # the parser @hydra.main uses

    args = get_args_parser().parse_args(list(argv))
    if any(getattr(args, flag, None) for flag in _NO_COMPOSE_FLAGS):
        return []
    if args.config_path or args.experimental_rerun:
        return []  # another primary config directory: Hydra reports its own errors there
    name = args.config_name or config_name
    _check_config_name(name, config_dir, args.config_dir)
    multirun = bool(args.multirun)
    cfg = _check_every_job(args, config_dir, name, check_job)
    if cfg is None or args.cfg or not launched_as_rank_zero():
        # --cfg writes nothing; DDP children run in rank 0's (already claimed) directory.
        return []
    return _claim_output(cfg, args.overrides, multirun, program, argv, check_job, default_dir)


def _claim_output(
    cfg: RunConfig,
    overrides: Sequence[str],
    multirun: bool,
    program: str,
    argv: Sequence[str],
    check_job: JobCheck | None,
    default_dir: Callable[[RunConfig], Path | None] | None,
) -> list[str]:
    """Claim the job's (or sweep's) output directory and judge it under its lock;
    the overrides that pin a default directory the claim chose."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    directory = str(OmegaConf.select(node_of(cfg), key))
    check_output_dir(key, directory)
    path = Path(directory).expanduser()
    given = _given(overrides, key)
    if not given and not multirun and default_dir is not None:
        path = default_dir(cfg) or path
    check_apart(key, path, data_roots(cfg))  # before anything is made there
    command = " ".join([program, *argv])
    if given:
        resumes = program == "simclr-pretrain" and not multirun  # the one command with resume=
        take = resumes and str(OmegaConf.select(node_of(cfg), "resume", default="")) == "auto"
        hint = _STALE_HINT if resumes else f"choose another {key}"
        taken = claim(path, command, key=key, take_stale=take, stale_hint=hint)
        pinned = []
    else:
        taken = claim_new(path, command, key=key)
        # Pinned on the command line: Hydra resolves `${now:...}` again, maybe a second later.
        where = str(taken.run.path)
        pinned = [f"{key}={hydra_value(where, f'{key}={where}')}"]
    try:
        if multirun:
            check_new_or_empty(key, taken.run.path, "a sweep", taken.before)
        elif check_job is not None:
            check_job(cfg, taken.run)
    except BaseException:
        taken.discard()
        raise
    return pinned
