"""The common runner of the console scripts: logging, the error policy, the closing block.

A quiet console and a full log: what each run shows and what its directory keeps.

conf/hydra/job_logging/simclr.yaml sends every record to the run's `pretrain.log`
(or `eval.log`), and to the console only warnings, errors and the toolkit's own
lines. Here, at the start of each job: Lightning's loggers are made to use those
handlers (it adds one of its own when imported before logging is configured),
Python warnings are captured into the log, and deprecation notices that the
toolkit's users cannot act on stay out of the console (they are in the file).
`-v` / `--verbose` (or `hydra.verbose`) shows everything on the console.

The block a command ends with: what came out, where it is, what to run next.

What the Hydra commands share: the shipped config directory, the run directory, the app.

The configs ship inside the package (`conf/` in the repository is the package
`simclr.conf` in a wheel, see pyproject.toml), so they are found through
importlib.resources from a source checkout and from an installed wheel alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from simclr.config import register_configs
from simclr.config.resolvers import launched_as_rank_zero
from simclr.config.schema import RunConfig
from simclr.console.errors import (
    EXIT_USER_ERROR,
    full_error_wanted,
    report_error,
    user_error,
)
from simclr.console.help import GENERIC, HELP_FLAGS, PAGES
from simclr.console.preflight import JobCheck, expand_home, preflight
from simclr.errors import SimclrError
from simclr.evaluation.report_schema import Report, load_report
from simclr.runs.output import Claim, Made, claim, claim_of, release_all
from simclr.runs.rundir import RunDir

VERBOSE_ENV = "SIMCLR_VERBOSE"  # read by DDP children too, which re-run the command line
VERBOSE_FLAGS = ("-v", "--verbose")
LIBRARY_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric")
# Warnings about library internals the user cannot act on: kept in the log file only.
# (Lightning's warning format drops the category name, hence the plain words too.)
HIDDEN_WORDS = ("DeprecationWarning", "FutureWarning", "is deprecated", "will be removed")


def take_verbose_flag(argv: Sequence[str]) -> list[str]:
    """`argv` without -v/--verbose; the flag, if there, is remembered in the environment."""
    kept = [a for a in argv if a not in VERBOSE_FLAGS]
    if len(kept) != len(argv):
        os.environ[VERBOSE_ENV] = "1"
    return kept


def verbose_wanted(hydra_verbose: object = None) -> bool:
    """True with -v/--verbose, or when `hydra.verbose` names any logger."""
    return os.environ.get(VERBOSE_ENV) == "1" or bool(hydra_verbose)


class _HideDeprecations(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "py.warnings":
            return True
        return not any(w in record.getMessage() for w in HIDDEN_WORDS)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes to whatever ``sys.stderr`` is when a record comes.

    ``logging.StreamHandler(sys.stderr)`` keeps the stream it was given. Hydra
    configures logging once per job, and a later run in the same process (the Python
    API, a notebook, a test under pytest's capture) may have replaced sys.stderr and
    closed the old one: records then fail with "I/O operation on closed file".
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def configure_job_logging(verbose: bool) -> None:
    """Route library output as described above (call once per job, after Hydra's set-up)."""
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    logging.captureWarnings(True)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setLevel(logging.INFO if verbose else logging.WARNING)
            if not verbose and not any(isinstance(f, _HideDeprecations) for f in handler.filters):
                handler.addFilter(_HideDeprecations())


NAMES = {"simclr": "SimCLR", "random_init": "random init", "raw_pixels": "raw pixels"}


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _cell(mean: float, std: float | None, n_seeds: int) -> str:
    # A spread over one seed is no spread: shown only with two seeds or more.
    return f"{100 * mean:.1f} ± {100 * (std or 0):.1f}" if n_seeds > 1 else f"{100 * mean:.1f}"


def headline_lines(report: Report) -> list[str]:
    """The headline cell for SimCLR and each baseline, one line."""
    h = report.headline
    if h.mean is None:
        return ["headline  not evaluated"]
    cells = [f"SimCLR {_cell(h.mean, h.std, h.n_seeds)}"]
    for row in report.results:
        same = (row.evaluator, row.fraction) == (h.evaluator, h.fraction)
        if same and row.representation != "simclr":
            name = NAMES.get(row.representation, row.representation)
            cells.append(f"{name} {_cell(row.mean, row.std, row.n_seeds)}")
    return [f"headline  {h.evaluator} at {h.fraction * 100:g}% labels (%): {', '.join(cells)}"]


def final_block(program: str, run: RunDir, report_md: Path | None, weights: Path) -> str:
    """The lines that end a pretraining or evaluation run."""
    lines = [f"{program} done"]
    if report_md is not None:
        report = load_report(report_md.with_name("report.json"))
        t = report.timing
        lines += [
            f"time      pretraining {_minutes(t.pretrain_seconds)}, "
            f"evaluation {_minutes(t.eval_seconds)}",
            *headline_lines(report),
        ]
    source = run.path if weights.parent == run.checkpoints else weights
    lines += [
        f"weights   {weights}",
        f"next      simclr-eval checkpoint={source}        # evaluate (again, or on other data)",
        f"          simclr-export {source} encoder.onnx    # or .safetensors / .pt",
    ]
    if report_md is not None:
        lines.append(f"report: {report_md}")
    return "\n".join(lines)


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


def hydra_job(program: str, cfg: RunConfig, task: Callable[[RunConfig, RunDir], T]) -> T | None:
    """Run one Hydra job under the error policy, holding its directory's lock.

    A single run's directory was claimed by the preflight (its lock the first thing
    written); a sweep's job directory is claimed here, before the job reads or
    writes anything of its own. A user error is one line on stderr; a sweep job
    then writes it to its `error.txt` (so that `simclr-report` lists it as failed)
    and returns None, and the sweep goes on. A single run exits 2 after
    :meth:`~simclr.runs.output.Claim.fail`: a run that trained keeps its
    checkpoints (and gets `error.txt`), anything else this process made is removed,
    and nothing that was there before is touched.
    """
    run = current_run_dir()
    configure_job_logging(verbose_wanted(HydraConfig.get().verbose))
    taken = claim_of(run.path)
    if taken is None and launched_as_rank_zero():
        # A sweep job: Hydra made its directory for it a moment ago (the sweep's is ours).
        taken = claim(run.path, " ".join([program, *HydraConfig.get().overrides.task]))
        taken.made = Made(run.path)  # everything in it is this job's
    try:
        result = task(cfg, run)
    except (SimclrError, OSError) as caught:
        err = user_error(caught)
        if err is None or full_error_wanted():
            raise
        message = report_error(program, err)
        if in_multirun():
            _failed_jobs.append(run.path.name)
            if taken is not None:
                _mark_failed(taken, message)
            return None
        if taken is not None:
            taken.fail(message)
        sys.exit(EXIT_USER_ERROR)
    if taken is not None:
        taken.release()
    return result


def _mark_failed(taken: Claim, message: str) -> None:
    """A sweep job that failed stays as a row for `simclr-report`, with its error."""
    if taken.run.finished_marker() is None:
        with contextlib.suppress(OSError):  # a full disk must not hide the message
            taken.run.error_file.write_text(message + "\n")
    taken.release()


def run_app(
    program: str,
    app: Callable[[], Any],
    check_job: JobCheck | None = None,
    default_dir: Callable[[RunConfig], Path | None] | None = None,
) -> None:
    """Preflight the command line (one-line errors, exit 2), then run the ``@hydra.main`` app.

    `~` in values is expanded first, in ``sys.argv`` itself, which the app parses
    (see :mod:`simclr.console.preflight`). A sweep any of whose jobs failed exits 2 after
    the last job (the failures are in the jobs' `error.txt`; `simclr-report` lists them).
    """
    if any(flag in sys.argv[1:] for flag in HELP_FLAGS):
        print(PAGES.get(program, GENERIC.format(program=program)), end="")
        sys.exit(0)
    argv = take_verbose_flag(sys.argv[1:])
    if os.environ.get(VERBOSE_ENV) == "1":
        argv.insert(0, "trainer.enable_model_summary=true")  # before any flag, as above
    try:
        sys.argv[1:] = expand_home(argv)
    except SimclrError as err:
        report_error(program, err)
        sys.exit(EXIT_USER_ERROR)
    if not full_error_wanted():
        try:
            pinned = preflight(sys.argv[1:], CONF_DIR, CONFIG_NAME, check_job, default_dir, program)
            sys.argv[1:1] = pinned  # first: after a trailing flag (-m) argparse takes no more
        except SimclrError as err:
            report_error(program, err)
            sys.exit(EXIT_USER_ERROR)
    _failed_jobs.clear()
    try:
        app()
    finally:
        release_all()  # the sweep's directory, or a run a crash left locked
    if _failed_jobs:
        print(
            f"{program}: error: {len(_failed_jobs)} job(s) of the sweep failed: "
            f"{', '.join(_failed_jobs)}",
            file=sys.stderr,
        )
        sys.exit(EXIT_USER_ERROR)
