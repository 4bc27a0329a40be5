"""benchmarks/gpu_session.sh --dry: the device script, run on the CPU at tiny sizes, ends
well and leaves every JSON and log the device run would, readable.

So that the one command a GPU machine gets cannot fail for a reason a CPU shows first
(an import, an argument, a path, a key in a JSON file). About 110 s here (2 shared
cores, load average 3-4), most of it Python start-up in its five processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from tests.conftest import REPO

B5_ARMS = {
    "loader_only",
    "model_only",
    "end_to_end",
    "end_to_end_cpu_views",
    "model_only_compiled",
    "end_to_end_compiled",
    "model_only_gpu_views",
}


def test_the_dry_run_ends_well_and_writes_what_the_device_run_writes(tmp_path):
    out = tmp_path / "out"
    work = tmp_path / "work"
    env = {**os.environ, "OUT": str(out), "GPU_SESSION_WORK": str(work), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_session.sh"), "--dry"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    session = json.loads((out / "gpu_session.json").read_text())
    steps = session["steps"]
    assert session["mode"].startswith("dry")
    assert list(steps) == ["env", "install", "pytest_gpu", "b5", "accuracy", "done"]
    assert all(s["status"] == "ok" for s in steps.values()), steps
    for log in ("env.log", "pytest_gpu.log", "b5.log", "accuracy.log"):
        assert (out / log).stat().st_size > 0, log
    # The gpu tests were collected and each skipped with its reason.
    ET.parse(out / "pytest_gpu.xml")
    tests = steps["pytest_gpu"]["tests"]
    assert tests and all(t["outcome"] == "skipped" for t in tests.values())
    assert all("needs CUDA" in t["reason"] for t in tests.values())
    # Every B5 arm ran, the compiled ones compiled and timed their first step.
    b5 = json.loads((out / "b5_gpu.json").read_text())
    rows = {row["arm"]: row for row in b5["rows"]}
    assert set(rows) == B5_ARMS
    assert rows["end_to_end_compiled"]["compile_seconds"] > 0
    assert rows["model_only_compiled"]["first_step_s"] > 0
    # The time-to-accuracy run wrote a report; its step choice is the CPU's. Its
    # checkpoints stayed in the scratch folder: $OUT holds what should come back.
    report = json.loads((out / "accuracy" / "report.json").read_text())
    assert not list(out.rglob("*.ckpt")) and list(work.rglob("*.ckpt"))
    assert report["results"] and steps["accuracy"]["accuracy"]
    assert steps["accuracy"]["step"]["views"] == "cpu"
