"""What the Hydra commands share: the shipped config directory, the run directory, the app.

The configs ship inside the package (`conf/` in the repository is the package
`simclr.conf` in a wheel, see pyproject.toml), so they are found through
importlib.resources from a source checkout and from an installed wheel alike.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from simclr.config import register_configs
from simclr.console.errors import (
    EXIT_USER_ERROR,
    full_error_wanted,
    report_error,
    user_error,
)
from simclr.console.help import HELP_FLAGS, PAGES
from simclr.console.home import expand_home
from simclr.console.logs import (
    VERBOSE_ENV,
    configure_job_logging,
    take_verbose_flag,
    verbose_wanted,
)
from simclr.console.preflight import JobCheck, preflight
from simclr.errors import SimclrError
from simclr.rundir import RunDir

CONFIG_NAME = "config"
T = TypeVar("T")
# Jobs of the current sweep that stopped on a user error (basic launcher: same process).
_failed_jobs: list[str] = []


def config_dir() -> str:
    """The directory of the shipped Hydra configs (conf/, installed as simclr.conf)."""
    return str(resources.files("simclr.conf"))


CONF_DIR = config_dir()
# At import: the SLURM tasks of hydra-submitit unpickle a command's `_main` and
# resolve the config (its ${simclr_rank_zero:...}) without calling its cli().
register_configs()


def current_run_dir() -> RunDir:
    """This job's output directory (Hydra's), or the working directory outside Hydra."""
    if HydraConfig.initialized():
        return RunDir(Path(HydraConfig.get().runtime.output_dir))
    return RunDir(Path.cwd())


def in_multirun() -> bool:
    """True inside a job of a Hydra sweep (`-m`)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def hydra_job(program: str, cfg: DictConfig, task: Callable[[DictConfig, RunDir], T]) -> T | None:
    """Run one Hydra job under the error policy.

    A user error is one line on stderr and in the run's `error.txt` (so that
    `simclr-report` lists the job as failed); a single run then exits 2, a sweep
    job returns None and the sweep goes on.
    """
    run = current_run_dir()
    configure_job_logging(verbose_wanted(HydraConfig.get().verbose))
    try:
        return task(cfg, run)
    except (SimclrError, OSError) as caught:
        err = user_error(caught)
        if err is None or full_error_wanted():
            raise
        message = report_error(program, err)
        # Marks the directory as a failed run, unless it is one that finished earlier.
        if run.path.is_dir() and not run.error_file.exists() and not run.finished_marker():
            with contextlib.suppress(OSError):  # a full disk must not hide the message
                run.error_file.write_text(message + "\n")
        if in_multirun():
            _failed_jobs.append(run.path.name)
            return None
        discard_unstarted(run)
        sys.exit(EXIT_USER_ERROR)


def discard_unstarted(run: RunDir) -> None:
    """Remove a single run's directory that holds nothing but this failed job's own files.

    Its checks passed only for a new or empty directory (or resume=auto), and nothing
    was trained into it: what is left (.hydra/, the log, error.txt) would look like a
    run. The one line on stderr says what went wrong.
    """
    cfg = HydraConfig.get()
    resumed = any(o.split("=", 1)[0].lstrip("+~") == "resume" for o in cfg.overrides.task)
    if resumed or run.checkpoints.exists() or run.finished_marker():
        return
    with contextlib.suppress(OSError):
        shutil.rmtree(run.path)


def run_app(
    program: str,
    app: Callable[[], Any],
    check_job: JobCheck | None = None,
    default_dir: Callable[[DictConfig], Path | None] | None = None,
) -> None:
    """Preflight the command line (one-line errors, exit 2), then run the ``@hydra.main`` app.

    `~` in values is expanded first, in ``sys.argv`` itself, which the app parses
    (see :mod:`simclr.console.home`). A sweep any of whose jobs failed exits 2 after
    the last job (the failures are in the jobs' `error.txt`; `simclr-report` lists them).
    """
    if any(flag in sys.argv[1:] for flag in HELP_FLAGS):
        print(PAGES[program], end="")
        sys.exit(0)
    argv = take_verbose_flag(sys.argv[1:])
    if os.environ.get(VERBOSE_ENV) == "1":
        argv.append("trainer.enable_model_summary=true")
    try:
        sys.argv[1:] = expand_home(argv)
    except SimclrError as err:
        report_error(program, err)
        sys.exit(EXIT_USER_ERROR)
    if not full_error_wanted():
        try:
            sys.argv += preflight(sys.argv[1:], CONF_DIR, CONFIG_NAME, check_job, default_dir)
        except SimclrError as err:
            report_error(program, err)
            sys.exit(EXIT_USER_ERROR)
    _failed_jobs.clear()
    app()
    if _failed_jobs:
        print(
            f"{program}: error: {len(_failed_jobs)} job(s) of the sweep failed: "
            f"{', '.join(_failed_jobs)}",
            file=sys.stderr,
        )
        sys.exit(EXIT_USER_ERROR)
