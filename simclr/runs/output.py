"""Where a command may write and what it may delete: one policy for every command.

`simclr-pretrain`, `-eval`, `-finetune`, `-distill`, `-prepare`, `-export`,
`-report` and the Python API follow these rules, each implemented once here:

1. **The lock is the first write.** :func:`claim` makes the directories missing on
   a run directory's path (recording which), then creates its `.lock` exclusively
   (:mod:`simclr.runs.lock`). Hydra's `.hydra/`, the log and everything else come
   after, and every check of what the directory holds runs under the lock, on the
   contents it had when claimed (:attr:`Made.before`). Of two commands started
   together into one new directory exactly one gets the lock; the other writes
   nothing (a directory it made stays only while the winner's lock is in it).
2. **Delete only what this process made.** :meth:`Made.undo` removes the entries
   that appeared in the directory after it was claimed (they appeared under this
   process's lock, or in a directory it made), then the directories it made,
   innermost first and each only if empty. A tree that existed before is never
   removed and a file that existed before is never touched.
3. **Replace only a recognised artefact of the same command.** `--force` replaces
   a shard set (:func:`shard_set_files`: `index.json` and the chunk files it names,
   per split, and the manifest) or an export file (:func:`check_replaceable`), and
   refuses a destination holding anything else; new files are written beside the
   old ones first (:func:`swap_in`), so a failure leaves the old artefact whole.
4. **Outputs never land inside inputs** (:func:`check_apart`): an output directory
   equal to an input, containing it or inside it is refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from simclr.errors import OutputError
from simclr.runs.lock import TAKEOVER, LockHolder, acquire, release
from simclr.runs.rundir import RunDir

_LOCK_FILES = (".lock", TAKEOVER)


def make_dirs(path: Path, key: str) -> tuple[Path, ...]:
    """Create `path` and its missing parents; the ones this call made, outermost first."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise OutputError(f"{key}={path}: {probe} is a broken link")
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{key}={path}: {probe} is a file, not a directory")
    made: list[Path] = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
            made.append(directory)
        except FileExistsError:
            if not directory.is_dir():
                remove_dirs(made)
                raise OutputError(f"{key}={path}: {directory} is a file, not a directory") from None
        except OSError as err:
            remove_dirs(made)
            if err.errno == errno.ENAMETOOLONG:
                raise OutputError(
                    f"{key}={path}: the name {directory.name[:40]}... is longer than the file "
                    "system allows (255 bytes); choose a shorter name"
                ) from None
            raise
    return tuple(made)


def remove_dirs(made: Iterable[Path]) -> None:
    """Remove directories this process made, innermost first, each only if empty."""
    for directory in reversed(list(made)):
        try:
            directory.rmdir()
        except OSError:
            return  # not empty (another process's files are in it): it and its parents stay


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@dataclass
class Made:
    """A directory this process writes into: the parents it made, the names it held."""

    path: Path
    made: tuple[Path, ...] = ()
    before: frozenset[str] = frozenset()

    @classmethod
    def at(cls, path: Path, key: str) -> Made:
        """Make `path` (recording what was made) and note what it holds now."""
        made = make_dirs(path, key)
        return cls(path, made, frozenset(_names(path)))

    def new_entries(self) -> list[Path]:
        """What appeared in the directory since it was noted (its lock aside)."""
        if not self.path.is_dir():
            return []
        return sorted(self.path / n for n in _names(self.path) if n not in self.before)

    def undo(self) -> None:
        """Remove what this process made here, and nothing else (rule 2)."""
        for entry in self.new_entries():
            _remove(entry)
        remove_dirs(self.made)


def _names(path: Path) -> set[str]:
    try:
        return {p.name for p in path.iterdir()} - set(_LOCK_FILES)
    except FileNotFoundError:
        return set()


@dataclass
class Claim:
    """A run directory this process holds the lock of."""

    run: RunDir
    holder: LockHolder
    made: Made
    restore: bytes | None = None  # a stale lock this claim replaced

    @property
    def before(self) -> frozenset[str]:
        """The directory's entries when it was claimed (the lock aside)."""
        return self.made.before

    def release(self) -> None:
        """Give the lock up (the directory's files stay)."""
        _claims.pop(_key(self.run.path), None)
        release(self.run, self.holder)

    def progress(self) -> bool:
        """Whether this process wrote checkpoints into a `checkpoints/` it made."""
        made = self.run.checkpoints
        return made in self.made.new_entries() and made.is_dir() and any(made.iterdir())

    def fail(self, message: str | None = None) -> None:
        """After a failure: keep what trained (with `message` in error.txt), else undo."""
        if not self.progress():
            self.discard()
            return
        if message and self.run.finished_marker() is None:
            with contextlib.suppress(OSError):  # a full disk must not hide the message
                self.run.error_file.write_text(message + "\n")
        self.release()

    def discard(self) -> None:
        """Undo the claim: what it made goes, a replaced stale lock comes back."""
        _claims.pop(_key(self.run.path), None)
        for entry in self.made.new_entries():
            _remove(entry)
        release(self.run, self.holder, self.restore)
        remove_dirs(self.made.made)


_claims: dict[Path, Claim] = {}


def _key(path: Path) -> Path:
    return Path(os.path.abspath(path))


def claim(
    path: Path,
    command: str,
    *,
    key: str = "hydra.run.dir",
    take_stale: bool = False,
    stale_hint: str = "choose another directory",
) -> Claim:
    """Claim `path` for this process: missing directories made, then the lock (rule 1)."""
    path = Path(path).expanduser()
    made = make_dirs(path, key)
    run = RunDir(path)
    try:
        holder, restore = acquire(run, command, take_stale=take_stale, stale_hint=stale_hint)
    except BaseException:
        remove_dirs(made)
        raise
    taken = Claim(run, holder, Made(path, made, frozenset(_names(path))), restore)
    _claims[_key(path)] = taken
    return taken


def claim_new(path: Path, command: str, *, key: str = "hydra.run.dir") -> Claim:
    """Claim the first of `path`, `path-2`, `path-3`, ... that did not exist.

    Two runs started in the same second would otherwise share Hydra's default
    `outputs/<date>/<time>`; mkdir (not an existence check) makes the choice race-free.
    """
    parents = make_dirs(path.parent, key)
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        made = (*parents, candidate)
        try:
            holder, _ = acquire(RunDir(candidate), command, take_stale=False, stale_hint="")
        except BaseException:
            remove_dirs(made)
            raise
        taken = Claim(RunDir(candidate), holder, Made(candidate, made))
        _claims[_key(candidate)] = taken
        return taken
    remove_dirs(parents)
    raise OutputError(f"{path}: no free directory name after 999 tries")


def claim_of(path: Path) -> Claim | None:
    """This process's claim on `path`, if it holds one."""
    return _claims.get(_key(path))


@contextlib.contextmanager
def holding(path: Path, command: str, *, take_stale: bool = False) -> Iterator[Claim]:
    """This process's claim on `path`; one made here (none was held) is released on leaving."""
    held = claim_of(path)
    if held is not None:
        yield held  # its maker (the command, the API) releases or undoes it
        return
    taken = claim(path, command, take_stale=take_stale)
    try:
        yield taken
    finally:
        taken.release()


def release_all() -> None:
    """Give up every lock this process still holds (at the end of a command)."""
    for taken in list(_claims.values()):
        taken.release()


def check_new_or_empty(
    key: str, directory: Path, what: str, held: Iterable[str] | None = None
) -> None:
    """OutputError if `directory` holds anything (`held`: its entries when claimed)."""
    names = sorted(_names(directory) if held is None else held)
    if names:
        raise OutputError(
            f"{key}={directory}: already holds {', '.join(names[:3])}"
            f"{', ...' if len(names) > 3 else ''}; {what} needs a new or empty directory"
        )


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def check_apart(key: str, out: Path, inputs: Mapping[str, Path | None]) -> None:
    """Rule 4: OutputError if `out` is an input, contains one or lies inside one."""
    target = _resolved(out)
    for name, given in inputs.items():
        if given is None or "://" in str(given):
            continue
        source = _resolved(given)
        if target == source:
            relation = "is"
        elif source in target.parents:
            relation = "lies inside"
        elif target in source.parents:
            relation = "contains"
        else:
            continue
        named = f"{key} {out}" if " " in key else f"{key}={out}"  # a key, or words
        raise OutputError(
            f"{named} {relation} {name}={given}: outputs must be apart from the inputs "
            "(they would be read as input, or deleted with the output); choose a directory "
            f"outside {given}"
        )


def check_outside_live_run(key: str, out: Path, source: Path | None) -> None:
    """OutputError if `out` lies in the run directory `source` while a process trains into it."""
    from simclr.runs.lock import read_holder

    if source is None:
        return
    holder = read_holder(RunDir(source))
    target, run = _resolved(out), _resolved(source)
    if holder is not None and holder.alive() and (target == run or run in target.parents):
        raise OutputError(
            f"{key}={out} lies inside {source}, a run in progress ({holder.describe()}); "
            "evaluate into a directory of its own (leave hydra.run.dir out for a new one)"
        )


def shard_set_files(dest: Path, manifest: str, splits: Iterable[str]) -> list[Path] | None:
    """The files of a shard set at `dest` (rule 3); None if it holds anything else.

    A shard set is `manifest`, and one directory per split holding `index.json` and
    exactly the chunk files that index names (LitData's layout).
    """
    files: list[Path] = []
    for entry in dest.iterdir():
        if entry.name == manifest and entry.is_file() and not entry.is_symlink():
            files.append(entry)
            continue
        if entry.name not in splits or not entry.is_dir() or entry.is_symlink():
            return None
        index = entry / "index.json"
        try:
            chunks = {c["filename"] for c in json.loads(index.read_text())["chunks"]}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        held = {p.name for p in entry.iterdir()}
        if held != chunks | {"index.json"} or any(not (entry / c).is_file() for c in held):
            return None
        files += [entry / name for name in sorted(held)]
    return files


def check_replaceable(key: str, out: Path, recognised: bool, what: str) -> None:
    """OutputError unless `out` is a file `recognised` as this command's `what` (rule 3)."""
    if out.is_dir():
        raise OutputError(f"{key}={out}: a directory; name the {what} file to write")
    if not recognised:
        raise OutputError(
            f"{key}={out}: not a {what} (its content is something else); --force replaces only "
            f"an earlier {what}: choose another name"
        )


def swap_in(dest: Path, staged: Path, old: Iterable[Path]) -> None:
    """Replace the artefact `old` (files under `dest`) with what `staged` holds.

    `staged` was written completely first, so until here `dest` kept the old artefact
    whole; the old files go one by one (directories left empty after them too).
    """
    for path in old:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            if path.parent != dest:
                path.parent.rmdir()
    for entry in sorted(staged.iterdir()):
        os.replace(entry, dest / entry.name)
    staged.rmdir()
