"""Results are never scored from stale data, and never written into a run in progress.

The feature cache is keyed by the data's content: an image replaced by another of
the same name, size and modification time is read again. An evaluation of a run
that a live process holds goes to a directory of its own (or is refused when told
to write inside it), and leaves the run byte-for-byte as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simclr.console import evaluate
from simclr.evaluation.features import file_fingerprint
from simclr.runs.rundir import RunDir
from tests.support.cli_harness import assert_one_line_error, pretrain_quietly, run_cli, tiny_run
from tests.support.snapshot import Snapshot

TINY_EVAL = [
    "eval.evaluators=[knn]",
    "eval.fractions=[1.0]",
    "eval.seeds_full=1",
    "eval.baselines=[]",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, shared_labeled_folder) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    argv = [*tiny_run(), f"data.root={shared_labeled_folder}", f"hydra.run.dir={run}"]
    pretrain_quietly(argv)
    return run


def _bmp_folder(root: Path) -> Path:
    """Two classes of BMP images: every file has the same size, whatever its pixels."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 4)):
        for c, colour in (("red", 0), ("blue", 2)):
            for i in range(count):
                pixels = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
                pixels[..., colour] = 200
                (root / split / c).mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(root / split / c / f"{i}.bmp")
    return root


def test_a_replaced_image_is_never_scored_from_the_cache(finished, tmp_path, capfd):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    images = _bmp_folder(tmp_path / "images")
    argv = [f"checkpoint={run}", *TINY_EVAL, "data=folder", f"data.root={images}"]
    for n in range(2):
        out = tmp_path / f"eval-{n}"
        result = run_cli(evaluate.cli, "simclr-eval", [*argv, f"hydra.run.dir={out}"], capfd)
        assert result.code == 0, result.stderr[-2000:]
    assert len(list(RunDir(run).features.glob("simclr-*.npz"))) == 1  # the same data: reused
    # The blue class's test images become red ones: same names, sizes and mtimes.
    for i in range(4):
        red, blue = images / "test" / "red" / f"{i}.bmp", images / "test" / "blue" / f"{i}.bmp"
        stat = blue.stat()
        assert red.stat().st_size == stat.st_size
        blue.write_bytes(red.read_bytes())
        os.utime(blue, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    out = tmp_path / "eval-changed"
    result = run_cli(evaluate.cli, "simclr-eval", [*argv, f"hydra.run.dir={out}"], capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert len(list(RunDir(run).features.glob("simclr-*.npz"))) == 2  # read again
    before, after = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("eval-0", "eval-changed"))  # fmt: skip
    assert before["results"][0]["mean"] != after["results"][0]["mean"]


def test_the_fingerprint_sees_bytes_behind_the_same_size_and_time(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abcd")
    first = file_fingerprint([path])
    stat = path.stat()
    path.write_bytes(b"abce")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_fingerprint([path]) != first


def _lock_as_live(run: Path) -> None:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": "now", "command": "x"}
    RunDir(run).lock.write_text(json.dumps(holder))


def test_evaluating_a_run_in_progress_writes_nothing_into_it(
    finished, tmp_path, capfd, monkeypatch
):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    _lock_as_live(run)
    monkeypatch.chdir(tmp_path)
    before = Snapshot(run)
    result = run_cli(evaluate.cli, "simclr-eval", [f"checkpoint={run}", *TINY_EVAL], capfd)
    assert result.code == 0, result.stderr[-2000:]
    before.assert_untouched()
    (report,) = (tmp_path / "outputs").rglob("report.json")  # a directory of its own
    assert (report.parent / "features").is_dir()


def test_evaluating_into_a_run_in_progress_is_refused(finished, tmp_path, capfd):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    _lock_as_live(run)
    before = Snapshot(tmp_path)
    for out in (run / "eval" / "mine", run):
        argv = [f"checkpoint={run}", *TINY_EVAL, f"hydra.run.dir={out}"]
        result = run_cli(evaluate.cli, "simclr-eval", argv, capfd)
        assert_one_line_error(result, "simclr-eval", "in progress")
        before.assert_untouched()
