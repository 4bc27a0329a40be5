"""A quiet console and a full log: what each run shows and what its directory keeps.

conf/hydra/job_logging/simclr.yaml sends every record to the run's `pretrain.log`
(or `eval.log`), and to the console only warnings, errors and the toolkit's own
lines. Here, at the start of each job: Lightning's loggers are made to use those
handlers (it adds one of its own when imported before logging is configured),
Python warnings are captured into the log, and deprecation notices that the
toolkit's users cannot act on stay out of the console (they are in the file).
`-v` / `--verbose` (or `hydra.verbose`) shows everything on the console.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

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
