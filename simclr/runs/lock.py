"""One process at a time in a run directory: a lock file that names its holder.

`<run>/.lock` holds the pid, host, start time and command of the process
training into the run. A second command into the same directory is refused
while the holder lives. A lock whose process is gone (a crash, `kill -9`) is
stale: it is explained in the refusal, and `resume=auto` takes it over.
O_CREAT|O_EXCL makes taking the lock atomic on one machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from simclr.errors import OutputError
from simclr.runs.rundir import RunDir


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run directory."""

    pid: int
    host: str
    started: str
    command: str

    def alive(self) -> bool:
        """True unless the holder is known to be gone (another host's pid cannot be checked)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by someone else
        return True

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"


def read_holder(run: RunDir) -> LockHolder | None:
    """The lock's holder, or None when there is no (readable) lock."""
    try:
        data = json.loads(run.lock.read_text())
        return LockHolder(
            int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_not_running(run: RunDir) -> LockHolder | None:
    """OutputError if a live process holds `run`; the stale holder (or None) otherwise."""
    holder = read_holder(run)
    if holder is not None and holder.alive():
        raise OutputError(
            f"{run.path} is in use by a run in progress ({holder.describe()}; lock {run.lock}); "
            "wait for it or choose another directory"
        )
    return holder


@contextlib.contextmanager
def hold(run: RunDir, command: str) -> Iterator[None]:
    """Hold the run directory's lock while the block runs (a stale lock is taken over)."""
    check_not_running(run)
    run.lock.unlink(missing_ok=True)  # stale: its holder is gone
    me = LockHolder(
        os.getpid(),
        socket.gethostname(),
        dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        command,
    )
    try:
        fd = os.open(run.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        holder = read_holder(run)
        who = holder.describe() if holder else "another process"
        raise OutputError(f"{run.path} was just taken by {who}; choose another directory") from None
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(me), f)
    try:
        yield
    finally:
        if read_holder(run) == me:
            run.lock.unlink(missing_ok=True)
