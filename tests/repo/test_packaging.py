"""The package works installed from a wheel, outside the checkout, configs included.

The wheel is built with `pip wheel .` and installed (without its dependencies)
into a fresh venv in a temporary directory; the dependencies (torch & co., 5 GB)
come from the test's own environment through a path entry, not a second install.
The checkout is on no path of that venv: `import simclr` must find the wheel's copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
from setuptools import find_packages

from tests.conftest import REPO
from tests.support.cli_harness import tiny_run

SOURCES = ("pyproject.toml", "README.md", "simclr", "conf")
TINY_EVAL = [
    "eval=default",
    "eval.evaluators=[knn]",
    "eval.fractions=[1.0]",
    "eval.seeds_full=1",
    "eval.baselines=[raw_pixels]",
    "eval.batch_size=16",
]


def test_the_wheel_lists_every_package():
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = find_packages(str(REPO), include=["simclr", "simclr.*"])
    assert sorted(listed) == sorted([*found, "simclr.conf"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding only the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what the wheel is made of: an in-tree build would leave
    # build/ in the checkout, whose stale modules a later wheel would pick up.
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(root / "dist")],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    wheels = list((root / "dist").glob("simclr-*.whl"))
    assert len(wheels) == 1
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pure = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # The dependencies of this environment, as a plain path entry (its .pth files,
    # among them an editable install of this checkout, are not processed from there).
    Path(pure, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         str(wheels[0])],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return venv / "bin"


def _run(bin_dir: Path, program: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(bin_dir / program), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_installed_wheel_runs_all_four_commands(installed, labeled_folder, tmp_path):
    where = _run(installed, "python", "-c", "import simclr; print(simclr.__file__)", cwd=tmp_path)
    assert where.returncode == 0 and str(installed.parent) in where.stdout, where

    run = tmp_path / "sweep" / "0"
    args = [*tiny_run(epochs=1, batches=2), *TINY_EVAL, f"data.root={labeled_folder}"]
    result = _run(installed, "simclr-pretrain", *args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert report["results"], report
    assert (run / ".hydra" / "config.yaml").is_file()

    evaluated = _run(
        installed, "simclr-eval", f"checkpoint={run}", *TINY_EVAL,
        f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert (tmp_path / "eval" / "report.json").is_file()

    swept = _run(installed, "simclr-report", str(tmp_path / "sweep"), "--evaluator", "knn",
                 "--fraction", "1.0", cwd=tmp_path)  # fmt: skip
    assert swept.returncode == 0, swept.stderr[-3000:]
    assert (tmp_path / "sweep" / "sweep.md").is_file()

    out = tmp_path / "encoder.safetensors"
    exported = _run(installed, "simclr-export", str(run), str(out), cwd=tmp_path)
    assert exported.returncode == 0 and out.is_file(), exported.stderr[-3000:]

    bad = _run(installed, "simclr-pretrain", "optim.lr_typo=1", cwd=tmp_path)
    assert bad.returncode == 2 and "optim.lr_typo: no such key" in bad.stderr
