"""An md5 snapshot of directory trees: proof that a command left earlier files alone.

before = Snapshot(run_dir, source)          # every file and directory under both
... run the command ...
before.assert_unchanged()                   # each file still there, same md5
before.assert_nothing_added()               # and no path appeared beside them
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _paths(root: Path) -> set[Path]:
    return {root, *root.rglob("*")} if root.exists() else set()


class Snapshot:
    """The md5 of every file, and the set of paths, under some roots (files or directories)."""

    def __init__(self, *roots: Path) -> None:
        self.roots = [Path(r) for r in roots]
        self.paths = set().union(*(_paths(r) for r in self.roots))
        self.files = {p: _md5(p) for p in sorted(self.paths) if p.is_file()}

    def now(self) -> set[Path]:
        """The paths under the roots now."""
        return set().union(*(_paths(r) for r in self.roots))

    def assert_unchanged(self) -> None:
        """Every file of the snapshot exists with the same md5, every directory still exists."""
        for path, digest in self.files.items():
            assert path.is_file(), f"{path} was removed"
            assert _md5(path) == digest, f"{path} was changed"
        gone = sorted(str(p) for p in self.paths if not p.exists())
        assert not gone, f"removed: {gone[:5]}"

    def assert_nothing_added(self) -> None:
        """No path appeared under the roots (nor a root that did not exist)."""
        added = sorted(str(p) for p in self.now() - self.paths)
        assert not added, f"added: {added[:5]}"

    def assert_untouched(self) -> None:
        """Both: as it was, byte for byte and path for path."""
        self.assert_unchanged()
        self.assert_nothing_added()
