"""Running a console script in this process, and proving earlier files were left alone.

In-process runs take about a second where a subprocess takes several (imports);
`tests/integration/test_pretrain_e2e.py` and the SIGKILL test run real subprocesses.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest


@dataclass
class CliResult:
    """Exit status and standard error of one command."""

    code: int
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """The lines of stderr that report an error."""
        return [line for line in self.stderr.splitlines() if ": error: " in line]


def run_cli(
    main: Callable[[], object], program: str, argv: list[str], capfd: pytest.CaptureFixture[str]
) -> CliResult:
    """Call a console entry point with `argv` as its command line."""
    capfd.readouterr()
    with mock.patch.object(sys, "argv", [program, *argv]):
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return CliResult(code, capfd.readouterr().err)


def snapshot(root: Path) -> dict[Path, str]:
    """sha256 of every file under `root`."""
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_unchanged(before: dict[Path, str]) -> None:
    """Every file of an earlier snapshot still exists with the same content."""
    for path, digest in before.items():
        assert path.is_file(), f"{path} was removed"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} was changed"


def assert_one_line_error(result: CliResult, program: str, *named: str) -> None:
    """Exit 2, exactly one error line naming every string of `named`, no traceback."""
    assert result.code == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.error_lines
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"{program}: error: "), lines[0]
    for text in named:
        assert text in lines[0], (text, lines[0])


def tiny_run(epochs: int = 1, batches: int = 1) -> list[str]:
    """Overrides for a pretraining run of a few seconds on a generated image folder
    (append `data.root=...`): a tiny timm ResNet at 16 px, no evaluation."""
    return [
        "experiment=none",
        "data=folder",
        "data.image_size=16",
        "data.batch_size=8",
        "data.num_workers=0",
        "encoder=timm",
        "encoder.timm_name=test_resnet",
        "head.hidden_dim=32",
        f"trainer.max_epochs={epochs}",
        f"trainer.limit_train_batches={batches}",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        # float32, contiguous: the bit-exact path (resume equality, NaN injection); the
        # hardware's auto choice is tested in tests/unit/config/test_hardware.py.
        "trainer.precision=32-true",
        "encoder.channels_last=false",
        "eval=none",
    ]


def pretrain_quietly(argv: list[str]) -> None:
    """`simclr-pretrain ARGV` in this process, as a fixture's set-up: it must succeed."""
    from simclr.console import pretrain

    with mock.patch.object(sys, "argv", ["simclr-pretrain", *argv]):
        try:
            pretrain.cli()
        except SystemExit as stop:
            assert stop.code in (0, None)
