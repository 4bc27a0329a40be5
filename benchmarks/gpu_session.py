"""One GPU session in one command: what the machine lacks, the `gpu` tests, B5, a short
time-to-accuracy run; JSON and logs under $OUT. Started by benchmarks/gpu_session.sh.

    bash benchmarks/gpu_session.sh [--data DIR|TAR] [--budget-s 570]   # on the GPU machine
    bash benchmarks/gpu_session.sh --dry     # (or GPU_SESSION_DRY=1) the same on a CPU

Steps, in order, each in its own process with its own time limit, cut to what is left
of `--budget-s` (570 s: one H100 command may run 600 s) so that a slow step cannot take
the later ones' time; `gpu_session.json` is rewritten after every step, so a session
cut short still brings back what it did. Scratch files (JPEGs, the unpacked data,
checkpoints) go to `$GPU_SESSION_WORK` (default `benchmarks/.work/gpu_session/`), not
to $OUT:

1. `env`: Python and the library versions, nvidia-smi's table (`env.log`).
2. `install`: the modules this toolkit imports that the machine's Python lacks, from
   the wheels in `.whl/` (`benchmarks/gpu_wheels.sh` makes them where there is a
   network; carry `.whl` to the machine) into `.gpu_site/`, first on PYTHONPATH.
3. `pytest_gpu`: the `gpu`-marked tests (`pytest_gpu.log`, `pytest_gpu.xml`).
4. `b5`: benchmarks/b5_gpu.py with `--compile`: loader alone, model only, end to end
   with GPU and with CPU views, eager and compiled (`b5_gpu.json`, `b5.log`).
5. `accuracy`: `simclr-pretrain experiment=small_images` at 32 px on the development
   set (data/README: tinyimagenet10, 4,500 train / 1,000 test images) for a
   `trainer.max_time` budget, then the linear probe at 1% and 10% of the labels, as B4
   measures on the CPU (`accuracy.log`; `accuracy/`: report.json, report.md,
   metrics.csv; the run itself stays in the scratch folder). Without the data
   (`--data`, `$GPU_SESSION_DATA`, else `shared/data/` or `../shared/data/`) it is
   skipped, saying so.

`--dry` runs every step on the CPU at tiny sizes (B5: a timm test ResNet at 32 px,
batch 8, compiled with the `eager` backend: TorchDynamo's graph capture, no code
generation (tests/unit/training/test_compile_step.py checks the compiled step itself);
the accuracy run on a generated folder of 48 images), so that nothing in the script
fails on the GPU machine for a reason a CPU shows first; the `gpu` tests skip there,
each with its reason, and `install` only reports. tests/repo/test_gpu_session_dry.py
runs it: about 110 s on the shared 2-core development machine (load average 3-4),
most of it Python start-up in five processes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Import name -> distribution, for everything simclr, its tests and B5 import.
NEEDED = {
    "torch": "torch", "torchvision": "torchvision", "pytorch_lightning": "pytorch-lightning",
    "hydra": "hydra-core", "omegaconf": "omegaconf", "antlr4": "antlr4-python3-runtime",
    "kornia": "kornia", "timm": "timm", "sklearn": "scikit-learn", "safetensors": "safetensors",
    "matplotlib": "matplotlib", "PIL": "pillow", "tqdm": "tqdm", "numpy": "numpy",
    "yaml": "pyyaml", "scipy": "scipy", "pytest": "pytest",
}  # fmt: skip
GPU_TESTS = [
    "tests/integration/test_gpu.py",
    "tests/integration/test_gpu_syncs.py",
    "tests/integration/test_gpu_decode.py",
    "tests/unit/data/test_gpu_views.py",
]
DATA_CANDIDATES = ("shared/data/tinyimagenet10.tar.gz", "../shared/data/tinyimagenet10.tar.gz")


class Session:
    """The steps' results, written to `out/gpu_session.json` after each one."""

    def __init__(self, out: Path, dry: bool, budget_s: float) -> None:
        self.out, self.dry = out, dry
        # Scratch (generated JPEGs, the unpacked data, checkpoints): not brought back.
        self.work = Path(
            os.environ.get("GPU_SESSION_WORK") or REPO / "benchmarks/.work/gpu_session"
        )
        self.deadline = time.monotonic() + budget_s
        self.env = {**os.environ, "PYTHONPATH": _pythonpath([str(REPO)]), "PYTHONUNBUFFERED": "1"}
        self.record: dict[str, Any] = {
            "mode": "dry (CPU, tiny sizes)" if dry else "device",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "budget_s": budget_s,
            "steps": {},
        }

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self, name: str, result: dict[str, Any]) -> dict[str, Any]:
        self.record["steps"][name] = result
        self.record["seconds"] = round(
            time.monotonic() - self.deadline + self.record["budget_s"], 1
        )
        path = self.out / "gpu_session.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record, indent=1, default=str) + "\n")
        tmp.replace(path)
        print(
            f"[gpu_session] {name}: {result.get('status')} {result.get('reason', '')}", flush=True
        )
        return result

    def run(self, name: str, command: list[str], limit: float, **extra: Any) -> dict[str, Any]:
        """`command` with its output in `out/<name>.log`, for at most `limit` seconds."""
        log = self.out / f"{name}.log"
        started = time.monotonic()
        with log.open("w") as f:
            f.write("$ " + " ".join(command) + "\n")
            f.flush()
            try:
                done = subprocess.run(
                    command, cwd=REPO, env=self.env, stdout=f, stderr=subprocess.STDOUT,
                    timeout=max(1.0, limit),
                )  # fmt: skip
                status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
            except subprocess.TimeoutExpired:
                status = f"timeout after {limit:.0f} s"
        seconds = round(time.monotonic() - started, 1)
        return {
            "status": status,
            "seconds": seconds,
            "limit_s": round(limit),
            "log": log.name,
            **extra,
        }


def _pythonpath(first: list[str]) -> str:
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([*first, *([rest] if rest else [])])


def step_env(s: Session) -> dict[str, Any]:
    """Python, the needed distributions' versions (None: missing) and nvidia-smi's table."""
    import importlib.metadata as metadata
    import platform

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in sorted(set(NEEDED.values())):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    smi = shutil.which("nvidia-smi")
    with (s.out / "env.log").open("w") as f:
        f.write("".join(f"{k} {v}\n" for k, v in versions.items()))
        if smi:
            f.flush()
            subprocess.run([smi], stdout=f, stderr=subprocess.STDOUT, timeout=30)
    return {"status": "ok", "log": "env.log", "versions": versions, "nvidia_smi": bool(smi)}


def step_install(s: Session) -> dict[str, Any]:
    missing = sorted(m for m in NEEDED if importlib.util.find_spec(m) is None)
    wheels = sorted(str(p) for p in (REPO / ".whl").glob("*.whl"))
    if not missing:
        return {"status": "ok", "reason": "nothing missing", "missing": []}
    if s.dry or not wheels:
        why = "dry run: nothing installed" if s.dry else "no wheels in .whl/ (gpu_wheels.sh)"
        return {"status": "skipped", "reason": why, "missing": missing}
    site = REPO / ".gpu_site"
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
               "--no-compile", "--upgrade", "--target", str(site), *wheels]  # fmt: skip
    result = s.run("install", command, min(120, s.left()))
    s.env["PYTHONPATH"] = _pythonpath([str(site), str(REPO)])
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    still = sorted(m for m in NEEDED if importlib.util.find_spec(m) is None)
    return {**result, "missing": missing, "still_missing": still}


def step_pytest(s: Session, limit: float) -> dict[str, Any]:
    xml = s.out / "pytest_gpu.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu", "-p", "no:cacheprovider",
               "-o", "addopts=", f"--junitxml={xml}", *GPU_TESTS]  # fmt: skip
    result = s.run("pytest_gpu", command, limit)
    return {**result, **(junit_summary(xml) if xml.is_file() else {})}


def junit_summary(path: Path) -> dict[str, Any]:
    """Counts and, per test, the outcome (with the reason of a skip or failure) and time."""
    tests: dict[str, Any] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome, reason = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome, reason = tag, (node.get("message") or "")[:300]
        tests[name] = {"outcome": outcome, "reason": reason, "seconds": float(case.get("time", 0))}
    counts = {k: sum(t["outcome"] == k for t in tests.values()) for k in
              ("passed", "failure", "error", "skipped")}  # fmt: skip
    return {"counts": counts, "tests": tests}


def step_b5(s: Session, limit: float) -> dict[str, Any]:
    command = [sys.executable, "benchmarks/b5_gpu.py", "--compile"]
    if s.dry:
        command += ["--quick", "--device", "cpu", "--arch", "timm:test_resnet", "--steps", "2",
                    "--warmup", "1", "--precision", "32-true", "--compile-backend", "eager"]  # fmt: skip
    else:
        command += ["--images", "4096", "--steps", "40", "--warmup", "10"]
    s.env["BENCH_RESULTS"] = str(s.out)
    s.env["BENCH_WORK"] = str(s.work)
    result = s.run("b5", command, limit)
    path = s.out / "b5_gpu.json"
    if path.is_file():
        result["figures"] = json.loads(path.read_text()).get("figures")
    return result


def dev_data(s: Session, given: str | None) -> tuple[Path | None, str]:
    """The development set's folder (train/, test/), unpacked if given as the archive;
    or None and why. A dry run makes a tiny folder instead."""
    if s.dry:
        return tiny_folder(s.work / "tiny"), "dry run: a generated folder of 48 images"
    names = [given] if given else [os.environ.get("GPU_SESSION_DATA"), *DATA_CANDIDATES]
    found = next((REPO / n for n in names if n and (REPO / n).exists()), None)
    if found is None:
        tried = ", ".join(n for n in names if n)
        return None, f"no development data at {tried}: pass --data DIR|TAR (data/README.md)"
    if found.is_dir():
        return found, f"folder {found}"
    target = s.work / "dev"
    if not any(target.glob("*/train")):
        with tarfile.open(found) as tar:
            tar.extractall(target, filter="data")
    root = next(target.glob("*/train")).parent
    return root, f"{found} unpacked to {root}"


def tiny_folder(root: Path) -> Path:
    """3 classes x (12 train + 4 test) random 24-px images, JPEG and PNG (made once)."""
    if (root / ".complete").is_file():
        return root
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("test", 4)):
        for c in ("cat", "dog", "fox"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.{'jpg' if i % 2 else 'png'}")
    (root / ".complete").write_text("48\n")
    return root


def accuracy_overrides(s: Session, root: Path, run: Path, budget_s: int) -> list[str]:
    common = ["experiment=small_images", f"data.root={root}", f"hydra.run.dir={run}",
              "trainer.enable_progress_bar=false", "eval=default"]  # fmt: skip
    if s.dry:
        return [*common, "data.image_size=16", "data.batch_size=8", "data.num_workers=0",
                "trainer.accelerator=cpu", "trainer.max_time=30s", "trainer.max_epochs=1",
                "trainer.limit_train_batches=2", "eval.evaluators=[linear]",
                "eval.fractions=[0.5]", "eval.seeds=2", "eval.baselines=[]",
                "eval.batch_size=16"]  # fmt: skip
    workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    return [*common, "data.image_size=32", f"data.num_workers={workers}",
            "trainer.accelerator=gpu", "trainer.devices=1", f"trainer.max_time={budget_s}s",
            "eval.evaluators=[linear]", "eval.fractions=[0.01,0.1]", "eval.seeds=10"]  # fmt: skip


def step_accuracy(s: Session, limit: float, data: str | None) -> dict[str, Any]:
    root, where = dev_data(s, data)
    if root is None:
        return {"status": "skipped", "reason": where}
    run = s.work / "accuracy"  # checkpoints and feature caches stay here
    shutil.rmtree(run, ignore_errors=True)
    # What is left after start-up (~15 s) and the evaluation (~45 s) is the budget.
    budget = int(max(30, min(90, limit - 80)))
    command = [sys.executable, "-m", "simclr.console.pretrain",
               *accuracy_overrides(s, root, run, budget)]  # fmt: skip
    result = s.run("accuracy", command, limit, data=where, max_time_s=budget)
    kept = s.out / "accuracy"  # what comes back: the report and the training log
    kept.mkdir(exist_ok=True)
    for name in ("report.json", "report.md", "logs/metrics.csv"):
        if (run / name).is_file():
            shutil.copy2(run / name, kept / Path(name).name)
    if (kept / "report.json").is_file():
        result.update(accuracy_summary(json.loads((kept / "report.json").read_text())))
    return result


def accuracy_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The linear-probe accuracies, how long and how the encoder was trained."""
    training = report.get("training") or {}
    return {
        "accuracy": {
            f"{r['representation']} {r['evaluator']} {r['fraction']:g}": [r["mean"], r["std"]]
            for r in report.get("results", [])
        },
        "headline": report.get("headline"),
        "pretrain_seconds": report.get("timing", {}).get("pretrain_seconds"),
        "steps": training.get("steps"),
        "epochs": training.get("epochs"),
        "hardware": training.get("hardware"),
        "step": training.get("step"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dry", action="store_true", default=os.environ.get("GPU_SESSION_DRY") == "1")
    p.add_argument(
        "--data", help="the development set: a folder with train/ and test/, or its .tar.gz"
    )
    p.add_argument("--budget-s", type=float, default=570.0)
    p.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results/gpu_session")
    args = p.parse_args()
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    s = Session(out, args.dry, args.budget_s)
    s.save("env", step_env(s))
    s.save("install", step_install(s))
    # Each step's limit leaves the later steps their least useful time.
    s.save("pytest_gpu", step_pytest(s, min(150, s.left() - 240)))
    s.save("b5", step_b5(s, min(260, s.left() - 120)))
    s.save("accuracy", step_accuracy(s, min(200, s.left() - 5), args.data))
    s.record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    s.save("done", {"status": "ok", "seconds_total": round(args.budget_s - s.left(), 1)})
    bad = [n for n, r in s.record["steps"].items() if r["status"] not in ("ok", "skipped")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
