"""The one error policy of every console script: one line on stderr, exit status 2.

A :class:`~simclr.errors.SimclrError`, or an OSError that means the output
location cannot take our files (full disk, read-only, no permission), is the
user's to fix: it is printed as ``<program>: error: <one line>`` with no traceback,
and the command exits with :data:`EXIT_USER_ERROR`. Anything else is a bug and
keeps its traceback. ``HYDRA_FULL_ERROR=1`` re-raises everything.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Callable

from simclr.errors import OutputError, SimclrError

EXIT_USER_ERROR = 2
# Errors that mean "this output location cannot take our files", not a bug of ours.
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
_WORKER_LAST_LINE = re.compile(r"^[\w.]*?(\w+(Error|Exception)): (.*)$")


def full_error_wanted() -> bool:
    """True when the user asked for full tracebacks (HYDRA_FULL_ERROR=1)."""
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


def user_error(caught: BaseException) -> SimclrError | None:
    """The user-facing error `caught` stands for, or None if it is a bug."""
    if isinstance(caught, SimclrError):
        return caught
    if isinstance(caught, OSError):
        return output_error(caught)
    return None


def run_command(program: str, task: Callable[[], int]) -> int:
    """Run `task` and return its exit status; a user error is one line and status 2.

    For the argparse commands, whose `cli()` returns the status (the console-script
    wrapper passes it to sys.exit).
    """
    try:
        return task()
    except (SimclrError, OSError) as caught:
        err = user_error(caught)
        if err is None or full_error_wanted():
            raise
        report_error(program, err)
        return EXIT_USER_ERROR
