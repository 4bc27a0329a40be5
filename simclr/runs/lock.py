"""One process at a time in a run directory: a lock file that names its holder.

`<run>/.lock` holds the pid, host, start time and command of the process
writing into the run. It is created with O_CREAT|O_EXCL, which is atomic on one
machine: of two commands started together, exactly one creates it. A second
command into the same directory is refused while the holder lives. A lock whose
process is gone (a crash, `kill -9`) is stale: it is explained in the refusal,
and `resume=auto` takes it over (:func:`acquire` with `take_stale`).

Taking the lock is the first write a command makes into a run directory
(:mod:`simclr.runs.output` claims the directory with it); every check of what
the directory holds runs afterwards, under it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from simclr.errors import OutputError
from simclr.runs.rundir import RunDir

TAKEOVER = ".lock.takeover"  # held for the instant a stale lock is replaced


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


def me(command: str) -> LockHolder:
    """This process, as a lock names it."""
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return LockHolder(os.getpid(), socket.gethostname(), now, command)


def read_holder(run: RunDir) -> LockHolder | None:
    """The lock's holder, or None when there is no (readable) lock."""
    try:
        data = json.loads(run.lock.read_text())
        return LockHolder(
            int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _in_use(run: RunDir, holder: LockHolder) -> OutputError:
    return OutputError(
        f"{run.path} is in use by a run in progress ({holder.describe()}; lock {run.lock}); "
        "wait for it or choose another directory"
    )


def check_not_running(run: RunDir) -> LockHolder | None:
    """OutputError if a live process holds `run`; the stale holder (or None) otherwise."""
    holder = read_holder(run)
    if holder is not None and holder.alive():
        raise _in_use(run, holder)
    return holder


def _holder_of_existing(run: RunDir) -> LockHolder:
    """The holder of a lock that exists; its writer may be between create and write."""
    for _ in range(20):
        holder = read_holder(run)
        if holder is not None:
            return holder
        if not run.lock.exists():
            raise FileNotFoundError(run.lock)
        time.sleep(0.05)
    raise OutputError(
        f"{run.lock}: a lock that names no process; if no command is writing into "
        f"{run.path}, remove {run.lock.name}, or choose another directory"
    )


def _take_over(run: RunDir, stale: LockHolder) -> bytes:
    """Remove the lock of `stale` (a dead process), unless someone took it meanwhile.

    Returns the stale lock's bytes (a refusal later puts them back). A second
    file created exclusively makes the read-compare-remove one step among racers.
    """
    mutex = run.path / TAKEOVER
    try:
        os.close(os.open(mutex, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise OutputError(
            f"{run.path} is being taken over by another process ({mutex}); choose another "
            "directory, or remove that file if no command is starting there"
        ) from None
    try:
        old = run.lock.read_bytes()
        if read_holder(run) == stale:
            run.lock.unlink()
        return old
    finally:
        mutex.unlink(missing_ok=True)


def acquire(
    run: RunDir, command: str, *, take_stale: bool, stale_hint: str
) -> tuple[LockHolder, bytes | None]:
    """Create `run`'s lock atomically; (this process's holder, a replaced stale lock's bytes).

    Raises OutputError naming the live holder, or, for a stale lock without
    `take_stale`, naming the dead one and `stale_hint` (what the user can do).
    """
    mine, replaced = me(command), None
    for _ in range(5):
        try:
            fd = os.open(run.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = _holder_of_existing(run)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if holder.alive():
                raise _in_use(run, holder) from None
            if not take_stale:
                raise OutputError(
                    f"{run.path} has a stale lock of {holder.describe()}, which is no longer "
                    f"running (a crash or kill); {stale_hint}"
                ) from None
            replaced = _take_over(run, holder)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(mine), f)
        return mine, replaced
    raise OutputError(f"{run.path}: could not take its lock {run.lock}; choose another directory")


def release(run: RunDir, holder: LockHolder, restore: bytes | None = None) -> None:
    """Remove the lock if `holder` still holds it (or put back the stale lock it replaced)."""
    if read_holder(run) != holder:
        return
    if restore is not None:
        run.lock.write_bytes(restore)
    else:
        run.lock.unlink(missing_ok=True)


@contextlib.contextmanager
def hold(run: RunDir, command: str) -> Iterator[None]:
    """Hold the run directory's lock while the block runs (a stale lock is taken over)."""
    holder, _ = acquire(run, command, take_stale=True, stale_hint="")
    try:
        yield
    finally:
        release(run, holder)
